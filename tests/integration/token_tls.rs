//! TLS to a loopback endpoint served by `openssl s_server` with a leaf certificate issued by a
//! test CA: refused without `--ca-file` (a TLS failure, exit 3), trusted with it.

use crate::token_support;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use token_support::*;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ca_file_makes_the_emulator_certificate_trusted() {
    let dir = TempDir::new("tls");
    let p = |n: &str| dir.path(n).to_str().unwrap().to_string();
    openssl_self_signed(&dir.path("ca.key"), &dir.path("ca.pem"), "/CN=keycred test CA");
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p("leaf.key"),
        "-out",
        &p("leaf.csr"),
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.path("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("leaf.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-out",
        &p("leaf.pem"),
        "-days",
        "2",
        "-extfile",
        &p("ext.cnf"),
    ]);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Server(
        Command::new(OPENSSL)
            .args([
                "s_server",
                "-quiet",
                "-www",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                &p("leaf.pem"),
                "-key",
                &p("leaf.key"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let authority = format!("https://127.0.0.1:{port}");
    let run = |extra: &[&str]| {
        let mut a =
            vec!["token", "--secret-env", "KC_S", "--client-id", "c", "--tenant", "t", "--authority", &authority];
        a.extend_from_slice(&["--scope", "https://x/.default"]);
        a.extend_from_slice(extra);
        keycred(&a, &[("KC_S", "s3cret")])
    };
    // The default timeout: a handshake slowed by a loaded machine must still end in the TLS error.
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(e.contains("TLS failure") && e.contains("UnknownIssuer") && e.contains("--ca-file"), "{e}");

    // With the CA the handshake succeeds; s_server's -www mode serves only GET, so the POST ends
    // in a timeout (or a non-HTTP answer), never in a TLS failure.
    let o = run(&["--ca-file", &p("ca.pem"), "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(!e.contains("TLS failure"), "{e}");
    assert!(e.contains("no answer from the token endpoint") || e.contains("not JSON"), "{e}");
}
