//! Adaptive concurrency for Graph calls: at most `limit` requests in flight, the limit halved
//! when Graph throttles and grown back by one after a run of successes (additive increase,
//! multiplicative decrease, as TCP does), and every request held back while a `Retry-After`
//! runs, since Graph throttles per application and tenant: any request sent during the wait
//! would be refused too and would only extend the lock-out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The limit's arithmetic, without clocks or locks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// Requests allowed in flight now.
    pub limit: usize,
    /// The most ever allowed (the `--concurrency` asked for).
    pub max: usize,
    /// Successes since the last change of `limit`.
    successes: usize,
}

impl Window {
    /// A window starting (and capped) at `max` (at least 1).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Window { limit: max, max, successes: 0 }
    }
    /// Graph throttled: halve the limit (never below 1).
    pub fn throttled(&mut self) {
        self.limit = (self.limit / 2).max(1);
        self.successes = 0;
    }
    /// A request succeeded: after `limit` successes in a row, allow one more in flight.
    pub fn succeeded(&mut self) {
        self.successes += 1;
        if self.successes >= self.limit && self.limit < self.max {
            self.limit += 1;
            self.successes = 0;
        }
    }
}

struct State {
    window: Window,
    in_flight: usize,
    paused_until: Option<Instant>,
}

/// Shared by every request of a run.
pub struct Limiter {
    state: Mutex<State>,
    changed: Notify,
    throttled: AtomicU64,
    waited_ms: AtomicU64,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").field("limit", &self.limit()).field("throttled", &self.throttled_count()).finish()
    }
}

/// A slot for one request in flight; released on drop.
pub struct Permit<'a>(&'a Limiter);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.state.lock() {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        self.0.changed.notify_waiters();
    }
}

impl Limiter {
    /// At most `max` requests in flight.
    pub fn new(max: usize) -> Self {
        Limiter {
            state: Mutex::new(State { window: Window::new(max), in_flight: 0, paused_until: None }),
            changed: Notify::new(),
            throttled: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
        }
    }

    /// Waits for a slot (and for any `Retry-After` pause to end).
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pause = {
                let mut s = self.state.lock().expect("limiter lock");
                match s.paused_until {
                    Some(t) if t > Instant::now() => Some(t),
                    _ if s.in_flight < s.window.limit => {
                        s.in_flight += 1;
                        return Permit(self);
                    }
                    _ => None,
                }
            };
            match pause {
                Some(t) => tokio::time::sleep_until(t).await,
                None => notified.await,
            }
        }
    }

    /// Waits until no `Retry-After` pause is in force (for a request that keeps its slot while
    /// it waits to be retried).
    pub async fn pause_over(&self) {
        loop {
            let until = self.state.lock().expect("limiter lock").paused_until.filter(|t| *t > Instant::now());
            match until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => return,
            }
        }
    }

    /// Graph throttled a request: lower the limit and hold every request back for `wait`.
    pub fn throttled(&self, wait: Duration) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.waited_ms.fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
        let mut s = self.state.lock().expect("limiter lock");
        s.window.throttled();
        let until = Instant::now() + wait;
        if s.paused_until.is_none_or(|t| t < until) {
            s.paused_until = Some(until);
        }
    }

    /// A request succeeded.
    pub fn succeeded(&self) {
        let grew = {
            let mut s = self.state.lock().expect("limiter lock");
            let before = s.window.limit;
            s.window.succeeded();
            s.window.limit > before
        };
        if grew {
            self.changed.notify_waiters();
        }
    }

    /// Requests allowed in flight now.
    pub fn limit(&self) -> usize {
        self.state.lock().map(|s| s.window.limit).unwrap_or(1)
    }
    /// How many answers were 429/503 so far.
    pub fn throttled_count(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
    /// Total time asked to wait, milliseconds.
    pub fn waited_ms(&self) -> u64 {
        self.waited_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_halves_on_throttling_and_grows_back_one_at_a_time() {
        let mut w = Window::new(8);
        w.throttled();
        assert_eq!(w.limit, 4);
        w.throttled();
        w.throttled();
        w.throttled();
        assert_eq!(w.limit, 1, "never below one");
        w.succeeded();
        assert_eq!(w.limit, 2, "one success at limit 1");
        w.succeeded();
        assert_eq!(w.limit, 2);
        w.succeeded();
        assert_eq!(w.limit, 3);
        for _ in 0..100 {
            w.succeeded();
        }
        assert_eq!(w.limit, 8, "capped at the concurrency asked for");
        assert_eq!(Window::new(0).limit, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_wait_out_a_retry_after_and_respect_the_limit() {
        let l = Limiter::new(2);
        let a = l.acquire().await;
        let _b = l.acquire().await;
        // A third waits until one is released.
        let third = tokio::time::timeout(Duration::from_millis(10), l.acquire()).await;
        assert!(third.is_err());
        drop(a);
        let c = l.acquire().await;
        drop(c);
        // Throttled: the limit drops to 1 and nobody gets a slot before the wait is over.
        l.throttled(Duration::from_secs(5));
        assert_eq!(l.limit(), 1);
        let start = Instant::now();
        drop(_b);
        let _d = l.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(5));
        assert_eq!(l.throttled_count(), 1);
        assert_eq!(l.waited_ms(), 5000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_kept_through_a_pause_goes_before_those_queued_behind_it() {
        let l = std::sync::Arc::new(Limiter::new(1));
        let held = l.acquire().await;
        // Throttled: it keeps its slot, and another request queues behind the pause.
        l.throttled(Duration::from_secs(2));
        let start = Instant::now();
        let queued = {
            let l = l.clone();
            tokio::spawn(async move {
                let _p = l.acquire().await;
                Instant::now()
            })
        };
        // A longer pause asked meanwhile holds for the kept request too.
        tokio::time::sleep(Duration::from_millis(500)).await;
        l.throttled(Duration::from_secs(3));
        l.pause_over().await;
        let retried = Instant::now();
        assert!(retried - start >= Duration::from_millis(3500), "{:?}", retried - start);
        assert!(!queued.is_finished(), "the queued request went first");
        drop(held);
        assert!(queued.await.unwrap() >= retried);
    }
}
