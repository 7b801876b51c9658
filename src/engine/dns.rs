//! Relay discovery (RFC 4976 §6.2) with hickory-resolver: SRV
//! `_msrps._tcp.<domain>` or `_msrp._tcp.<domain>` in priority order, with
//! weighted random order inside a priority (RFC 2782), falling back to the
//! domain's own A/AAAA records on port 2855. Addresses are resolved here,
//! with the same resolver, so a test can serve everything from loopback.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{ResolveError, TokioResolver};

use super::error::{Error, ErrorKind};

/// The port of MSRP relays found without SRV (RFC 4976 §6.2).
pub const RELAY_PORT: u16 = 2855;

/// Where discovery found a relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayAddress {
    /// The host name or address (checked against the certificate in TLS).
    pub host: String,
    /// The port.
    pub port: u16,
    /// Its addresses, when discovery resolved them (else the system resolves `host`).
    pub addrs: Vec<IpAddr>,
}

fn resolver(nameserver: Option<SocketAddr>) -> Result<TokioResolver, Error> {
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 2;
    let b = match nameserver {
        Some(ns) => {
            let cfg = ResolverConfig::from_parts(
                None,
                vec![],
                NameServerConfigGroup::from_ips_clear(&[ns.ip()], ns.port(), true),
            );
            TokioResolver::builder_with_config(cfg, TokioConnectionProvider::default())
        }
        None => TokioResolver::builder_tokio().map_err(|e| {
            Error::new(
                ErrorKind::DnsFailed,
                format!("cannot read the system's resolver configuration: {e}"),
            )
        })?,
    };
    let mut b = b;
    *b.options_mut() = opts;
    Ok(b.build())
}

fn dns_error(what: &str, e: &ResolveError) -> Error {
    Error::new(ErrorKind::DnsFailed, format!("{what}: {e}"))
}

/// A random number below `n` (n > 0).
fn random_below(n: u32) -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b) % n
}

/// Orders SRV records: lower priority first; inside a priority, a weighted
/// random order (RFC 2782: weight 0 records come last unless chosen by luck).
pub fn order_srv(mut recs: Vec<(u16, u16, u16, String)>) -> Vec<(u16, String)> {
    recs.sort_by_key(|r| r.0);
    let mut out = Vec::new();
    let mut i = 0;
    while i < recs.len() {
        let prio = recs[i].0;
        let mut group: Vec<_> = recs[i..]
            .iter()
            .take_while(|r| r.0 == prio)
            .cloned()
            .collect();
        i += group.len();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| r.1 as u32 + 1).sum();
            let mut pick = random_below(total);
            let mut k = 0;
            for (j, r) in group.iter().enumerate() {
                let w = r.1 as u32 + 1;
                if pick < w {
                    k = j;
                    break;
                }
                pick -= w;
            }
            let r = group.remove(k);
            out.push((r.2, r.3));
        }
    }
    out
}

async fn addresses(r: &TokioResolver, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    Ok(r.lookup_ip(format!("{host}.")).await?.iter().collect())
}

/// The relays of `domain`, best first, each with its resolved addresses.
/// `port` applies to the fallback on the domain's own addresses (SRV
/// records carry their own ports).
pub async fn relay_targets(
    domain: &str,
    tls: bool,
    port: Option<u16>,
    nameserver: Option<SocketAddr>,
) -> Result<Vec<RelayAddress>, Error> {
    let r = resolver(nameserver)?;
    let domain = domain.trim_end_matches('.');
    let service = format!("_{}._tcp.{domain}.", if tls { "msrps" } else { "msrp" });
    let mut out = Vec::new();
    match r.srv_lookup(service.as_str()).await {
        Ok(srv) => {
            let recs = srv
                .iter()
                .map(|s| {
                    (
                        s.priority(),
                        s.weight(),
                        s.port(),
                        s.target().to_utf8().trim_end_matches('.').to_owned(),
                    )
                })
                // A target of "." says the service is not offered.
                .filter(|r| !r.3.is_empty())
                .collect::<Vec<_>>();
            if recs.is_empty() {
                return Err(Error::new(
                    ErrorKind::DnsFailed,
                    format!("{service} says there is no MSRP relay for {domain}"),
                ));
            }
            for (p, host) in order_srv(recs) {
                match addresses(&r, &host).await {
                    Ok(addrs) if !addrs.is_empty() => out.push(RelayAddress {
                        host,
                        port: p,
                        addrs,
                    }),
                    Ok(_) | Err(_) => {}
                }
            }
            if out.is_empty() {
                return Err(Error::new(
                    ErrorKind::DnsFailed,
                    format!("no address for any target of {service}"),
                ));
            }
        }
        Err(e) if e.is_no_records_found() => {
            let addrs = addresses(&r, domain).await.map_err(|e2| {
                dns_error(
                    &format!("no {service} records and no address for {domain}"),
                    &e2,
                )
            })?;
            if addrs.is_empty() {
                return Err(Error::new(
                    ErrorKind::DnsFailed,
                    format!("no {service} records and no address for {domain}"),
                ));
            }
            out.push(RelayAddress {
                host: domain.to_owned(),
                port: port.unwrap_or(RELAY_PORT),
                addrs,
            });
        }
        Err(e) => return Err(dns_error(&format!("looking up {service} failed"), &e)),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srv_order_is_by_priority_then_weight() {
        let recs = vec![
            (20, 0, 1, "c".to_owned()),
            (10, 0, 2, "b".to_owned()),
            (10, 65535, 3, "a".to_owned()),
        ];
        let mut a_first = 0;
        for _ in 0..200 {
            let o = order_srv(recs.clone());
            assert_eq!(o.len(), 3);
            assert_eq!(o[2].1, "c", "lower priority first");
            if o[0].1 == "a" {
                a_first += 1;
            }
        }
        // Weight 65535 against 0 wins nearly always.
        assert!(a_first > 190, "{a_first}");
    }
}
