//! A connected loopback socket pair, plain or wrapped in TLS (self-signed
//! server, client without verification), for tests that start transports
//! on connections they shape themselves. Included with `#[path]` by the test
//! binaries that use it (it needs no relay or DNS server).

use msrp::engine::stream::{Conn, accept, connect};
use msrp::engine::tls::{PeerSlot, TlsSettings};

/// (client, server) over 127.0.0.1.
pub async fn conn_pair(tls: bool) -> (Conn, Conn) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (c, s) = tokio::join!(tokio::net::TcpStream::connect(addr), async {
        listener.accept().await.unwrap().0
    });
    let c = c.unwrap();
    if !tls {
        return (Conn::Tcp(c), Conn::Tcp(s));
    }
    let mut server = TlsSettings::default();
    server.generate_self_signed("server.invalid").unwrap();
    let mut client = TlsSettings::default();
    client.set_insecure(true);
    let cfg = server.server_config(PeerSlot::default()).unwrap();
    let (c, s) = tokio::join!(
        connect(c, &client, "server.invalid", Vec::new()),
        accept(s, cfg)
    );
    (c.unwrap(), s.unwrap())
}
