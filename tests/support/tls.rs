//! TLS fronts for the peers: a throwaway CA made by `openssl` for each test, and Debian's
//! `stunnel4` terminating TLS in front of a plain-text peer (anvil, the facilitator, the SMSC).
//! Nothing here is ours on the server side of the handshake.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A CA made for one test, in its own temporary directory.
pub struct TestCa {
    dir: tempfile::TempDir,
    pub cert: PathBuf,
    key: PathBuf,
}

/// A server certificate and key signed by a [`TestCa`].
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let subject = format!("/CN={name}");
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &subject,
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            dir.path(),
        );
        let cert = dir.path().join("ca.pem");
        let key = dir.path().join("ca.key");
        Self { dir, cert, key }
    }

    /// A server certificate for `names` (`IP:127.0.0.1`, `DNS:localhost`, …).
    pub fn issue(&self, file: &str, names: &[&str]) -> ServerCert {
        let d = self.dir.path();
        let (key, csr, cert, ext) =
            (format!("{file}.key"), format!("{file}.csr"), format!("{file}.pem"), format!("{file}.ext"));
        let san = names.join(",");
        std::fs::write(
            d.join(&ext),
            format!("subjectAltName={san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"),
        )
        .expect("ext file");
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=test server",
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
            d,
        );
        let ca_cert = self.cert.to_str().expect("utf-8");
        let ca_key = self.key.to_str().expect("utf-8");
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                ca_cert,
                "-CAkey",
                ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
            d,
        );
        ServerCert { cert: d.join(cert), key: d.join(key) }
    }
}

/// The stunnel binary Debian installs (`stunnel4` package: `stunnel4`, with `stunnel` as an
/// alternative name on some releases).
fn stunnel_bin() -> &'static str {
    if Path::new("/usr/bin/stunnel4").exists() { "stunnel4" } else { "stunnel" }
}

/// stunnel in server mode: TLS on `127.0.0.1:port`, plain TCP to `target`. Killed on drop.
pub struct Stunnel {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Stunnel {
    pub fn start(target: SocketAddr, cert: &ServerCert) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // A free port: bound and released; stunnel takes it a moment later.
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let conf = dir.path().join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\ndebug = 4\n\n[front]\naccept = 127.0.0.1:{port}\nconnect = {target}\n\
                 cert = {}\nkey = {}\n",
                cert.cert.display(),
                cert.key.display()
            ),
        )
        .expect("stunnel.conf");
        let log = std::fs::File::create(dir.path().join("stunnel.log")).expect("log");
        let child = Command::new(stunnel_bin())
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("stunnel starts (tests/peers/setup.sh installs stunnel4)");
        let front = Self { port, child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "stunnel did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        front
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
