//! A real DNS server on loopback (dnsmasq, Debian's `dnsmasq-base`) serving
//! the records a test gives it, authoritative for `.test`, stopped on drop.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Dnsmasq {
    pub addr: SocketAddr,
    child: Child,
}

fn binary() -> &'static str {
    for p in ["/usr/sbin/dnsmasq", "/usr/local/sbin/dnsmasq"] {
        if std::path::Path::new(p).exists() {
            return p;
        }
    }
    panic!(
        "dnsmasq is not installed: the discovery tests need it (apt-get install -y dnsmasq-base)"
    );
}

impl Dnsmasq {
    /// `records` are dnsmasq options such as
    /// `--srv-host=_msrp._tcp.relay.test,r1.relay.test,2855,10,5` or
    /// `--host-record=r1.relay.test,127.0.0.1`.
    pub fn start(records: &[String]) -> Dnsmasq {
        for _ in 0..5 {
            let port = UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new(binary())
                .args([
                    "--keep-in-foreground",
                    "--no-daemon",
                    "--no-resolv",
                    "--no-hosts",
                    "--user=root",
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--local=/test/",
                    &format!("--port={port}"),
                ])
                .args(records)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start dnsmasq");
            // Ready when it answers a query.
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let query = [
                0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1,
            ];
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                let _ = sock.send_to(&query, ("127.0.0.1", port));
                let mut buf = [0u8; 512];
                if sock.recv(&mut buf).is_ok() {
                    return Dnsmasq {
                        addr: ([127, 0, 0, 1], port).into(),
                        child,
                    };
                }
            }
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            eprintln!(
                "dnsmasq did not come up on port {port}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        panic!("dnsmasq could not be started (see above)");
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
