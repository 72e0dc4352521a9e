//! HTTP plumbing shared by the token client (`token`) and the Graph client (`graph`), below both
//! of them (it imports neither): the exchange as plain values ([`Request`],
//! [`Response`]), the [`Transport`] seam the clients send through, the words a transport failure
//! is told in ([`Failure`]), and when to send again ([`retry`]).
//!
//! The seam follows oauth2-rs's HTTP client trait: the clients build requests and read answers
//! without knowing how bytes travel, so their retry and throttling rules are unit-tested with a
//! scripted transport on tokio's paused clock, and production sends through
//! [`ReqwestTransport`] (rustls, proxies from the environment, bounded answer bodies).

mod exchange;
pub mod retry;
mod transport;

#[cfg(test)]
pub(crate) mod fake;

pub use crate::error::chain;
pub use exchange::{
    excerpt, Failure, FailureKind, HeaderMap, Method, Request, Response, SendFuture, SharedTransport, Transport,
    BODY_EXCERPT_CHARS, MAX_ANSWER,
};
pub use transport::{ReqwestTransport, TransportOptions};
