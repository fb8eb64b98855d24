//! How long an invocation has left, and whether that covers an effect.
//!
//! Lambda ends an invocation at its deadline whatever it is doing. A
//! function that claims an effect (a status to post, a message to send, a
//! delivery to publish) and is killed before carrying it out leaves the
//! claim behind; so a function claims only when the time left covers the
//! effect's worst case, and every claim carries the deadline, after which
//! another invocation may take it over (see `aws::records`).

use std::time::Duration;

use crate::events::now_ms;

/// The moment an invocation ends, in milliseconds since the Unix epoch (as
/// Lambda's context gives it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    epoch_ms: u64,
}

impl Deadline {
    pub const fn at_epoch_ms(epoch_ms: u64) -> Self {
        Deadline { epoch_ms }
    }

    /// `timeout` from now: what a local driver (`gantry dev`, the tests)
    /// gives a handler, as Lambda would with the function's `Timeout`.
    pub fn after(timeout: Duration) -> Self {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        Deadline::at_epoch_ms(now_ms().saturating_add(ms))
    }

    pub const fn epoch_ms(&self) -> u64 {
        self.epoch_ms
    }

    /// The time left at `now_ms`; zero once passed.
    pub fn remaining_at(&self, now_ms: u64) -> Duration {
        Duration::from_millis(self.epoch_ms.saturating_sub(now_ms))
    }

    pub fn remaining(&self) -> Duration {
        self.remaining_at(now_ms())
    }

    /// Does the time left cover `budget`?
    pub fn covers(&self, budget: Duration) -> bool {
        self.remaining() >= budget
    }
}

/// An effect not claimed because the invocation could not finish it: the
/// invocation fails instead, and its retry (with a fresh deadline) claims it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{left_ms} ms left, {needed_ms} ms needed to {effect}; not claimed, the retry will")]
pub struct OutOfTime {
    pub effect: String,
    pub left_ms: u64,
    pub needed_ms: u64,
}

impl Deadline {
    /// `Ok` if the time left covers `budget` for `effect`, else the error
    /// that says so.
    pub fn require(&self, budget: Duration, effect: &str) -> Result<(), OutOfTime> {
        let left = self.remaining();
        if left >= budget {
            return Ok(());
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Err(OutOfTime {
            effect: effect.to_owned(),
            left_ms: ms(left),
            needed_ms: ms(budget),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_never_goes_below_zero() {
        let d = Deadline::at_epoch_ms(10_000);
        assert_eq!(d.remaining_at(4_000), Duration::from_secs(6));
        assert_eq!(d.remaining_at(12_000), Duration::ZERO);
    }

    #[test]
    fn an_effect_is_refused_when_the_time_left_does_not_cover_it() {
        let soon = Deadline::after(Duration::from_millis(200));
        let err = soon
            .require(Duration::from_secs(10), "post a commit status")
            .expect_err("200 ms cannot cover 10 s");
        assert_eq!(err.needed_ms, 10_000);
        assert!(err.to_string().contains("post a commit status"), "{err}");
        assert!(
            Deadline::after(Duration::from_secs(60))
                .require(Duration::from_secs(10), "x")
                .is_ok()
        );
    }
}
