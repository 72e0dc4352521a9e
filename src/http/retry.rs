//! When to send a request again, as a pure function: [`decide`] takes an answer's status, the
//! attempts so far and `Retry-After`, and says [`Decision::Retry`] after a wait,
//! [`Decision::Renew`] the token first, or [`Decision::Done`]. Each client has its
//! [`Policy`]: the token client retries 429 and 5xx a few times with short waits (a person is
//! waiting); the Graph client waits out throttling (429, 503) longer, with jitter so that many
//! workers throttled at once do not come back in step, and renews an expired token once.

use std::time::Duration;

/// What to do after an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then send the request again.
    Retry(Duration),
    /// Get a new token, then send the request again at once.
    Renew,
    /// Keep this answer: it is final (a success, a refusal, or the attempts are used up).
    Done,
}

/// Which statuses are worth another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retryable {
    /// 429 and 503: throttling and brief unavailability (Graph's guidance).
    Throttling,
    /// 429 and every 5xx (token endpoints).
    ThrottlingAndServerErrors,
}

impl Retryable {
    /// Whether `status` is retried.
    pub fn covers(self, status: u16) -> bool {
        match self {
            Retryable::Throttling => status == 429 || status == 503,
            Retryable::ThrottlingAndServerErrors => status == 429 || (500..600).contains(&status),
        }
    }
}

/// A client's retry rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Which answers are retried.
    pub retryable: Retryable,
    /// Attempts of one request in all, the first one included (token renewals not counted).
    pub max_attempts: u32,
    /// First backoff step when the server says nothing about how long to wait.
    pub backoff_base: Duration,
    /// Cap of one backoff step.
    pub backoff_cap: Duration,
    /// Longest wait honoured from one `Retry-After`; a longer one is capped.
    pub max_retry_after: Duration,
    /// Whether waits are jittered ("equal jitter" for backoff, up to a tenth more for
    /// `Retry-After`), so that many workers throttled at once spread out.
    pub jitter: bool,
    /// Whether a 401 is answered by renewing the token, once per request.
    pub renew_on_401: bool,
}

/// Where a request stands: what [`decide`] needs besides the answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Retries so far (after 429/5xx answers).
    pub retried: u32,
    /// Whether the token was renewed already.
    pub renewed: bool,
}

impl Attempts {
    /// Records `d` (to call after acting on it).
    pub fn record(&mut self, d: Decision) {
        match d {
            Decision::Retry(_) => self.retried += 1,
            Decision::Renew => self.renewed = true,
            Decision::Done => {}
        }
    }
}

/// What to do after an answer with `status` and `retry_after` (the header as sent), given the
/// attempts so far. `jitter` is a random number in `[0, 1)`, used only when the policy jitters.
/// No clock, no I/O: the same inputs always give the same decision.
pub fn decide(p: &Policy, status: u16, attempts: Attempts, retry_after: Option<&str>, jitter: f64) -> Decision {
    if status == 401 && p.renew_on_401 && !attempts.renewed {
        return Decision::Renew;
    }
    if !p.retryable.covers(status) || attempts.retried + 1 >= p.max_attempts {
        return Decision::Done;
    }
    let asked = parse_retry_after(retry_after).map(|w| w.min(p.max_retry_after));
    Decision::Retry(wait(p, attempts.retried, asked, jitter))
}

/// `Retry-After` in seconds (what Entra and Graph send). An HTTP date, a negative number or
/// garbage gives `None`: the caller then backs off on its own.
pub fn parse_retry_after(v: Option<&str>) -> Option<Duration> {
    let secs: f64 = v?.trim().parse().ok()?;
    // Beyond a day is no wait anyone honours (and would overflow a Duration at the extreme).
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// How long to wait before retry number `retry` (0-based): `asked` (the server's `Retry-After`)
/// when given, never less; otherwise exponential backoff from the policy's base, capped.
fn wait(p: &Policy, retry: u32, asked: Option<Duration>, jitter: f64) -> Duration {
    let jitter = if p.jitter { jitter.clamp(0.0, 1.0) } else { 1.0 };
    if let Some(w) = asked {
        // Up to a tenth more than asked, so that workers told the same wait spread out.
        return if p.jitter { w + w.mul_f64(0.1 * jitter) } else { w };
    }
    let step = p.backoff_base.saturating_mul(1u32 << retry.min(16)).min(p.backoff_cap);
    step / 2 + (step / 2).mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAPH: Policy = Policy {
        retryable: Retryable::Throttling,
        max_attempts: 8,
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(30),
        max_retry_after: Duration::from_secs(300),
        jitter: true,
        renew_on_401: true,
    };

    fn after(retried: u32) -> Attempts {
        Attempts { retried, renewed: false }
    }

    #[test]
    fn throttling_is_waited_out_for_what_the_server_asked_never_less() {
        assert_eq!(decide(&GRAPH, 429, after(0), Some("7"), 0.0), Decision::Retry(Duration::from_secs(7)));
        assert_eq!(decide(&GRAPH, 503, after(3), Some("4"), 1.0), Decision::Retry(Duration::from_millis(4400)));
        assert_eq!(decide(&GRAPH, 429, after(0), Some("0.5"), 0.0), Decision::Retry(Duration::from_millis(500)));
        // An absurd Retry-After is capped by the policy.
        assert_eq!(decide(&GRAPH, 429, after(0), Some("100000"), 0.0), Decision::Retry(Duration::from_secs(300)));
    }

    #[test]
    fn without_retry_after_the_backoff_grows_is_capped_and_jittered() {
        let w = |retried, ra, j| decide(&GRAPH, 429, after(retried), ra, j);
        assert_eq!(w(0, None, 0.0), Decision::Retry(Duration::from_millis(250)));
        assert_eq!(w(0, None, 1.0), Decision::Retry(Duration::from_millis(500)));
        assert_eq!(w(3, None, 0.0), Decision::Retry(Duration::from_secs(2)));
        assert_eq!(w(6, None, 1.0), Decision::Retry(Duration::from_secs(30)));
        // An HTTP date or garbage is no Retry-After: backoff.
        assert_eq!(w(0, Some("Wed, 21 Oct 2015 07:28:00 GMT"), 0.0), Decision::Retry(Duration::from_millis(250)));
        assert_eq!(w(0, Some("-1"), 1.0), Decision::Retry(Duration::from_millis(500)));
        let unjittered = Policy { jitter: false, ..GRAPH };
        assert_eq!(decide(&unjittered, 429, after(1), None, 0.0), Decision::Retry(Duration::from_secs(1)));
    }

    #[test]
    fn only_the_policy_s_statuses_are_retried_and_only_so_many_times() {
        for s in [200, 204, 400, 403, 404, 500, 502] {
            assert_eq!(decide(&GRAPH, s, after(0), Some("1"), 0.0), Decision::Done, "{s}");
        }
        let token = Policy { retryable: Retryable::ThrottlingAndServerErrors, renew_on_401: false, ..GRAPH };
        assert!(matches!(decide(&token, 500, after(0), None, 0.0), Decision::Retry(_)));
        assert_eq!(decide(&token, 401, after(0), None, 0.0), Decision::Done);
        // Eight attempts in all: the seventh retry is the last.
        assert!(matches!(decide(&GRAPH, 429, after(6), None, 0.0), Decision::Retry(_)));
        assert_eq!(decide(&GRAPH, 429, after(7), None, 0.0), Decision::Done);
    }

    #[test]
    fn an_expired_token_is_renewed_once() {
        let mut a = Attempts::default();
        let d = decide(&GRAPH, 401, a, None, 0.0);
        assert_eq!(d, Decision::Renew);
        a.record(d);
        assert_eq!(decide(&GRAPH, 401, a, None, 0.0), Decision::Done);
        assert_eq!(a, Attempts { retried: 0, renewed: true });
    }

    #[test]
    fn retry_after_is_seconds_or_nothing() {
        assert_eq!(parse_retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(Some("1.5")), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(parse_retry_after(Some("NaN")), None);
        assert_eq!(parse_retry_after(Some("1e300")), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_retry_after(None), None);
    }
}
