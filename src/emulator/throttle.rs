//! `--throttle RATE`: a token bucket per client, so that clients are tested against Graph's
//! throttling (429 with `Retry-After`) without a real tenant.
//!
//! Each client (the application a Graph token was issued to) gets a bucket holding up to RATE
//! requests, refilled at RATE per second: a burst of one second's worth passes, then requests are
//! answered 429 until the bucket refills. `Retry-After` says, in whole seconds rounded up, when the
//! next request will pass, as Graph's does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets by client.
#[derive(Debug)]
pub struct Throttle {
    rate: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Throttle {
    /// `rate` requests per second per client (finite and positive; checked by the caller).
    pub fn new(rate: f64) -> Self {
        Throttle { rate, buckets: Mutex::new(HashMap::new()) }
    }

    fn capacity(&self) -> f64 {
        self.rate.max(1.0)
    }

    /// Takes one request from `client`'s bucket at `now`; `Err(wait)` when it is empty, with the
    /// time until the next request would pass.
    pub fn take_at(&self, client: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let cap = self.capacity();
        let b = buckets.entry(client.to_ascii_lowercase()).or_insert(Bucket { tokens: cap, at: now });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }

    /// [`Throttle::take_at`] now.
    pub fn take(&self, client: &str) -> Result<(), Duration> {
        self.take_at(client, Instant::now())
    }
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_rate_passes_then_waits_are_told() {
        let t = Throttle::new(2.0);
        let t0 = Instant::now();
        assert!(t.take_at("a", t0).is_ok());
        assert!(t.take_at("a", t0).is_ok());
        let wait = t.take_at("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(retry_after_secs(wait), 1);
        // Another client has its own bucket.
        assert!(t.take_at("b", t0).is_ok());
        // Half a second later one request passes again.
        assert!(t.take_at("a", t0 + Duration::from_millis(500)).is_ok());
        assert!(t.take_at("a", t0 + Duration::from_millis(500)).is_err());
        let slow = Throttle::new(0.1);
        assert!(slow.take_at("a", t0).is_ok());
        assert_eq!(retry_after_secs(slow.take_at("a", t0).unwrap_err()), 10);
    }
}
