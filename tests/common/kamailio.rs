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
        let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/relay/kamailio.cfg");
        for _ in 0..5 {
            let port = free_port();
            let dir =
                std::env::temp_dir().join(format!("msrp-kamailio-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("run")).unwrap();
            let log = std::fs::File::create(dir.join("log")).unwrap();
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
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start kamailio");
            let mut k = Kamailio {
                port,
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
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
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
