//! The emulator's connection layer: accepting, HTTP/1.1 per connection with read timeouts, and a
//! graceful shutdown that is bounded in time.
//!
//! `axum::serve` reads request headers without a deadline and waits for every connection to end
//! before it returns: a client that sends five bytes and waits kept the emulator from stopping
//! for as long as it stayed connected, and idle clients were never closed. Here a connection
//! must deliver its request headers within the read timeout (also between keep-alive requests),
//! and a body within the same time ([`super::body_deadline`]); on shutdown, connections get
//! [`SHUTDOWN_GRACE`] to finish their request, then are closed.

use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpStream;

/// Default time a client has to send its request headers, and then its body.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may run on after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What every accepted TCP connection gets before it is served: `TCP_NODELAY`, since answers
/// are small writes that Nagle's algorithm would hold back until the client's delayed ACK.
pub(super) fn prepare(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
}

/// A plain TCP listener whose connections go through [`prepare`].
pub(super) struct TcpAcceptor(pub tokio::net::TcpListener);

impl Listener for TcpAcceptor {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (TcpStream, std::net::SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    prepare(&stream);
                    return (stream, addr);
                }
                // Out of file descriptors and the like: wait, as axum does, rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }
}

/// Serves `app` on `listener` until `stop` completes, then closes the listener, lets each
/// connection finish its current request for up to [`SHUTDOWN_GRACE`], and closes the rest.
pub(super) async fn serve<L: Listener>(mut listener: L, app: Router, read_timeout: Duration, stop: impl Future) {
    let mut conns = tokio::task::JoinSet::new();
    let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            (io, _) = listener.accept() => {
                let service = TowerToHyperService::new(app.clone());
                let mut closing = closing_rx.clone();
                conns.spawn(async move {
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder.timer(TokioTimer::new()).header_read_timeout(read_timeout);
                    let conn = builder.serve_connection(TokioIo::new(io), service);
                    let mut conn = std::pin::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => return,
                        _ = closing.changed() => conn.as_mut().graceful_shutdown(),
                    }
                    let _ = conn.await;
                });
            }
            // Reap finished connections so the set does not grow with every client.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        // Dropping the set aborts the connections still open.
        conns.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12: every accepted connection has TCP_NODELAY.
    #[tokio::test]
    async fn accepted_connections_have_nodelay() {
        let mut l = TcpAcceptor(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = l.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
        let (server_side, _) = l.accept().await;
        assert!(server_side.nodelay().unwrap());
        drop(client.await.unwrap());
    }
}
