//! Starts a real Kamailio MSRP relay (Debian's `kamailio` package) on a free
//! loopback port with `tests/relay/kamailio.cfg`, and stops it when dropped.
//! Its log is printed when the test panics, or always with MSRP_SHOW_RELAY_LOG.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Kamailio {
    pub port: u16,
    /// The TLS (msrps) port, when started with a certificate.
    pub tls_port: Option<u16>,
    child: Option<Child>,
    dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn binary() -> PathBuf {
    for p in ["/usr/sbin/kamailio", "/usr/local/sbin/kamailio"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("kamailio is not installed: the relay tests need it (apt-get install -y kamailio)");
}

impl Kamailio {
    /// A relay accepting Expires between `min` and `max` seconds.
    pub fn start(min_expires: u64, max_expires: u64) -> Kamailio {
        Self::start_with(min_expires, max_expires, None)
    }

    /// Also listens with TLS, with this certificate chain and key (PEM).
    pub fn start_tls(min_expires: u64, max_expires: u64, cert: &str, key: &str) -> Kamailio {
        Self::start_with(min_expires, max_expires, Some((cert, key)))
    }

    fn start_with(min_expires: u64, max_expires: u64, tls: Option<(&str, &str)>) -> Kamailio {
        let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/relay/kamailio.cfg");
        for _ in 0..5 {
            let port = free_port();
            let dir =
                std::env::temp_dir().join(format!("msrp-kamailio-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("run")).unwrap();
            let log = std::fs::File::create(dir.join("log")).unwrap();
            let tls_port = tls.map(|_| free_port());
            let mut tls_args: Vec<String> = Vec::new();
            if let (Some((cert, key)), Some(tp)) = (tls, tls_port) {
                std::fs::write(dir.join("cert.pem"), cert).unwrap();
                std::fs::write(dir.join("key.pem"), key).unwrap();
                for d in [
                    "WITH_TLS".to_owned(),
                    format!("TLS_PORT={tp}"),
                    format!("TLS_CERT=\"{}\"", dir.join("cert.pem").display()),
                    format!("TLS_KEY=\"{}\"", dir.join("key.pem").display()),
                ] {
                    tls_args.push("-A".into());
                    tls_args.push(d);
                }
            }
            let child = Command::new(binary())
                .args(["-DD", "-E", "-f"])
                .arg(&cfg)
                .arg("-P")
                .arg(dir.join("kamailio.pid"))
                .arg("-Y")
                .arg(dir.join("run"))
                .arg("-w")
                .arg(&dir)
                .args(["-A", &format!("RELAY_PORT={port}")])
                .args(["-A", &format!("MIN_EXPIRES={min_expires}")])
                .args(["-A", &format!("MAX_EXPIRES={max_expires}")])
                .args(&tls_args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start kamailio");
            let mut k = Kamailio {
                port,
                tls_port,
                child: Some(child),
                dir,
            };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if let Some(c) = k.child.as_mut() {
                    if let Ok(Some(_)) = c.try_wait() {
                        break;
                    }
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok()
                    && tls_port.is_none_or(|p| TcpStream::connect(("127.0.0.1", p)).is_ok())
                {
                    return k;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("kamailio did not come up on port {port}; log:\n{}", k.log());
            // The port may have been taken meanwhile: try another.
        }
        panic!("kamailio could not be started (see the logs above)");
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM lets it clean up its children.
            // SAFETY: kill(2) on the pid of the child we spawned.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() || std::env::var_os("MSRP_SHOW_RELAY_LOG").is_some() {
            eprintln!(
                "---- kamailio log (port {}) ----\n{}",
                self.port,
                self.log()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
