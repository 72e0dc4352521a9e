//! The emulator's connections are bounded: a client that sends part of a request, or nothing,
//! is disconnected after the read timeout, and shutdown does not wait for idle or slow clients.

use crate::emulator_support;

use emulator_support::*;
use std::io::{Read, Write};
use std::time::Duration;

fn connect(f: &Fixture) -> std::net::TcpStream {
    let url = url::Url::parse(f.emu.info().base_url()).unwrap();
    let s = std::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).unwrap();
    // Bounds the test, far above the emulator's 1 s read timeout set below.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// Reads until the server closes the connection; what it sent. Panics if it never closes.
fn read_until_closed(mut s: std::net::TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the emulator did not close the connection: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A client that sends five bytes and waits, or announces a body it never sends, or
/// sends nothing at all, is disconnected after the read timeout.
#[tokio::test]
async fn slow_clients_are_disconnected() {
    let f = fixture_with(|c| c.read_timeout = Duration::from_secs(1)).await;
    let path = url::Url::parse(&f.v2()).unwrap().path().to_string();
    // What each client sends is written as soon as it connects, here: the timeout runs from the
    // accept, so b's head must be complete well within its second for b to get its 408. Only
    // the reads, which wait for the emulator, go to a blocking thread, whenever it starts.
    let mut a = connect(&f);
    a.write_all(b"POST ").unwrap();
    let mut b = connect(&f);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant"
    );
    b.write_all(head.as_bytes()).unwrap();
    let c = connect(&f);
    let answers =
        tokio::task::spawn_blocking(move || (read_until_closed(a), read_until_closed(b), read_until_closed(c)))
            .await
            .unwrap();
    assert!(!answers.0.starts_with("HTTP/1.1 200"), "{}", answers.0);
    assert!(answers.1.starts_with("HTTP/1.1 408"), "{}", answers.1);
    assert!(!answers.2.starts_with("HTTP/1.1 200"), "{}", answers.2);
    // The emulator still serves.
    assert_eq!(f.post_v2_assertion(&f.assertion(&f.v2())).await.0, 200);
}

/// Shutdown is bounded. A connected client that never completes its request no longer
/// holds the emulator open (the 60 s bound here only keeps a regression from hanging the suite).
#[tokio::test]
async fn shutdown_does_not_wait_for_idle_or_slow_clients() {
    // Read timeouts far beyond the test's bound: only the shutdown grace can end these clients.
    let f = fixture_with(|c| c.read_timeout = Duration::from_secs(600)).await;
    let mut slow = connect(&f);
    slow.write_all(b"POST ").unwrap();
    let idle: Vec<_> = (0..20).map(|_| connect(&f)).collect();
    // Let the server accept them before stopping.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let Fixture { emu, dir, .. } = f;
    let stopped = tokio::time::timeout(Duration::from_secs(60), emu.shutdown()).await;
    assert!(stopped.is_ok(), "the emulator's shutdown waited on clients that never finish a request");
    drop((slow, idle, dir));
}
