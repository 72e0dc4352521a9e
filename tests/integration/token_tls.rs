//! TLS to a loopback endpoint served by `openssl s_server` with a leaf certificate issued by a
//! test CA: refused without `--ca-file` (a TLS failure, exit 3), trusted with it.

use crate::token_support;

use std::io::{BufRead, BufReader};
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

    // s_server picks its own port (0) and prints "ACCEPT 127.0.0.1:PORT" once it listens: no
    // other process can take the port between our choosing it and s_server binding it. Its
    // later output is read on another thread, so that it never blocks on a full pipe.
    let mut server = Server(
        Command::new(OPENSSL)
            .args(["s_server", "-www", "-accept", "127.0.0.1:0", "-cert", &p("leaf.pem"), "-key", &p("leaf.key")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = server.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let port: u16 = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => match line.strip_prefix("ACCEPT 127.0.0.1:").and_then(|p| p.trim().parse().ok()) {
                Some(port) => break port,
                None => seen.push(line),
            },
            Err(e) => panic!("openssl s_server did not say where it listens ({e}): {seen:?}"),
        }
    };
    assert!(server.0.try_wait().unwrap().is_none(), "openssl s_server exited");
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
