//! A scripted [`Transport`] for unit tests: answers come from a function of the request (or a
//! list, in order), and every request is logged with the time it was sent on tokio's clock, so
//! tests on a paused clock check waits exactly, without a network and without sleeping.

use super::exchange::{Failure, Request, Response, SendFuture, Transport};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

type Answer = Box<dyn Fn(&Request) -> Result<Response, Failure> + Send + Sync>;

/// A request as the fake received it.
#[derive(Clone, Debug)]
pub struct Sent {
    /// When, on tokio's clock.
    pub at: Instant,
    /// The request.
    pub request: Request,
    /// What the fake answered (`None`: a transport failure).
    pub answer: Option<Response>,
}

impl Sent {
    /// The status answered, if any.
    pub fn status(&self) -> Option<u16> {
        self.answer.as_ref().map(|a| a.status)
    }
}

/// The scripted transport.
pub struct Fake {
    answer: Answer,
    log: Mutex<Vec<Sent>>,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fake").finish_non_exhaustive()
    }
}

impl Fake {
    /// Answers each request with `answer(request)`.
    pub fn new(answer: impl Fn(&Request) -> Result<Response, Failure> + Send + Sync + 'static) -> Arc<Fake> {
        Arc::new(Fake { answer: Box::new(answer), log: Mutex::new(Vec::new()) })
    }
    /// Answers the requests with `script`, in order; a request past its end panics.
    pub fn script(script: Vec<Result<Response, Failure>>) -> Arc<Fake> {
        let script = Mutex::new(VecDeque::from(script));
        Fake::new(move |r| script.lock().unwrap().pop_front().unwrap_or_else(|| panic!("unscripted request {r:?}")))
    }
    /// The requests sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.log.lock().unwrap().clone()
    }
}

impl Transport for Fake {
    fn send(&self, req: Request) -> SendFuture<'_> {
        let answer = (self.answer)(&req);
        let logged = Sent { at: Instant::now(), request: req, answer: answer.as_ref().ok().cloned() };
        self.log.lock().unwrap().push(logged);
        Box::pin(async move { answer })
    }
}

/// An answer with `status`, JSON `body` and the given headers.
pub fn reply(status: u16, body: &str, headers: &[(&'static str, &str)]) -> Result<Response, Failure> {
    let mut r = Response::new(status, body);
    for (n, v) in headers {
        r.headers.insert(*n, v.parse().expect("header value"));
    }
    Ok(r)
}
