//! Which of a model's calls run inline, on the async thread that decoded the request, instead of
//! crossing to a worker thread and back (two thread wake-ups, which cost a small model more
//! than its own compute).
//!
//! A model earns inline calls by its record: [`SHORT_STREAK`] calls in a row, on its workers,
//! each shorter than the server's `inline_call_max_us`, none running a native backend session (which the epoch
//! cannot interrupt). A longer call starts the count again. An inline call that runs past its
//! budget (see [`crate::wasm::CallMode::Inline`]) hands the async thread's other work to
//! another thread, finishes, and bars the model from inline calls for as long as it stays
//! loaded: a runtime that turns slow costs the async runtime one budget at most.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How many short calls in a row earn a model inline calls.
pub(super) const SHORT_STREAK: u32 = 32;

/// A streak value that never becomes eligible again.
const BARRED: u32 = u32::MAX;

/// One model's record of short calls.
#[derive(Debug, Default)]
pub(super) struct InlinePolicy {
    /// Short calls in a row, or [`BARRED`].
    streak: AtomicU32,
    /// The longest call that counts as short; `None`: no inline calls for this model.
    short_call: Option<Duration>,
}

impl InlinePolicy {
    /// A policy where calls up to `short_call` count as short; with `None`, no call ever runs
    /// inline.
    pub(super) fn new(short_call: Option<Duration>) -> Self {
        InlinePolicy {
            streak: AtomicU32::new(0),
            short_call,
        }
    }

    /// Whether the next call may run inline.
    pub(super) fn allows_inline(&self) -> bool {
        let streak = self.streak.load(Ordering::Relaxed);
        self.short_call.is_some() && (SHORT_STREAK..BARRED).contains(&streak)
    }

    /// Records a call that ran on a worker: `took` long, and whether it ran a native session.
    pub(super) fn record_worker_call(&self, took: Duration, native: bool) {
        let Some(short_call) = self.short_call else {
            return;
        };
        let short = took < short_call && !native;
        let _ = self.streak.fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |streak| match streak {
                BARRED => None,
                _ if !short => Some(0),
                streak => Some(streak.saturating_add(1).min(SHORT_STREAK)),
            },
        );
    }

    /// Records an inline call: one that overran its budget bars the model; one that was not
    /// short sends its calls back to the workers until a new streak.
    pub(super) fn record_inline_call(&self, took: Duration, overran: bool) {
        if overran {
            self.streak.store(BARRED, Ordering::Relaxed);
        } else if self.short_call.is_some_and(|short_call| took >= short_call) {
            let _ = self
                .streak
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |streak| {
                    (streak != BARRED).then_some(0)
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_micros(20);
    const SHORT_CALL: Duration = Duration::from_micros(200);

    #[test]
    fn a_streak_of_short_calls_earns_inline_calls() {
        let policy = InlinePolicy::new(Some(SHORT_CALL));
        for _ in 0..SHORT_STREAK - 1 {
            policy.record_worker_call(QUICK, false);
        }
        assert!(!policy.allows_inline());
        policy.record_worker_call(QUICK, false);
        assert!(policy.allows_inline());
    }

    #[test]
    fn a_long_or_native_call_starts_the_count_again() {
        let policy = InlinePolicy::new(Some(SHORT_CALL));
        for _ in 0..SHORT_STREAK {
            policy.record_worker_call(QUICK, false);
        }
        policy.record_worker_call(SHORT_CALL * 2, false);
        assert!(!policy.allows_inline());
        for _ in 0..SHORT_STREAK {
            policy.record_worker_call(QUICK, false);
        }
        assert!(policy.allows_inline());
        policy.record_worker_call(QUICK, true);
        assert!(!policy.allows_inline());
    }

    #[test]
    fn an_overrun_bars_the_model_for_good() {
        let policy = InlinePolicy::new(Some(SHORT_CALL));
        for _ in 0..SHORT_STREAK {
            policy.record_worker_call(QUICK, false);
        }
        policy.record_inline_call(QUICK, false);
        assert!(policy.allows_inline());
        policy.record_inline_call(SHORT_CALL, false);
        assert!(!policy.allows_inline());
        for _ in 0..SHORT_STREAK {
            policy.record_worker_call(QUICK, false);
        }
        policy.record_inline_call(QUICK, true);
        for _ in 0..SHORT_STREAK {
            policy.record_worker_call(QUICK, false);
        }
        assert!(!policy.allows_inline());
    }

    #[test]
    fn disabled_never_allows_inline() {
        let policy = InlinePolicy::new(None);
        for _ in 0..SHORT_STREAK {
            policy.record_worker_call(QUICK, false);
        }
        assert!(!policy.allows_inline());
    }
}
