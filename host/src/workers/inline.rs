//! Which of a model's calls run inline, on the async thread that decoded the request, instead of
//! crossing to a worker thread and back (two thread wake-ups, which cost a small model more
//! than its own compute).
//!
//! A model earns inline calls by its record: [`SHORT_STREAK`] calls on its workers first, and
//! then long calls — over the server's `inline_call_max_us`, or running a native backend
//! session (which the epoch cannot interrupt) — rare: their share of the recent calls (a
//! moving average over about [`WINDOW`] calls) under [`LONG_SHARE_LIMIT`]. A lone long call, as
//! a thread preempted during a short call measures, sends the next call or two to the workers;
//! a model whose calls are often long keeps its calls there. An inline call that runs past its
//! budget (see [`crate::wasm::CallMode::Inline`]) hands the async thread's other work to
//! another thread, finishes, and bars the model from inline calls for as long as it stays
//! loaded: a runtime that turns slow costs the async runtime one budget at most.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How many calls a model runs on its workers before it may run any inline.
pub(super) const SHORT_STREAK: u32 = 32;

/// The moving average's window, in calls: each call moves the share of long calls by
/// 1/`WINDOW` of the way to 1 (a long call) or 0 (a short one).
const WINDOW: u32 = 32;

/// The share of long calls (in 1/65536) from which calls stay on the workers: one long call
/// in a window of short ones reaches it.
const LONG_SHARE_LIMIT: u32 = ONE / WINDOW;

/// A share of 1, in 1/65536.
const ONE: u32 = 1 << 16;

/// A call count that never becomes eligible again.
const BARRED: u32 = u32::MAX;

/// One model's record of short and long calls.
#[derive(Debug, Default)]
pub(super) struct InlinePolicy {
    /// Calls seen on the workers (up to [`SHORT_STREAK`]), or [`BARRED`].
    calls: AtomicU32,
    /// The recent share of long calls, in 1/65536.
    long_share: AtomicU32,
    /// The longest call that counts as short; `None`: no inline calls for this model.
    short_call: Option<Duration>,
}

impl InlinePolicy {
    /// A policy where calls up to `short_call` count as short; with `None`, no call ever runs
    /// inline.
    pub(super) fn new(short_call: Option<Duration>) -> Self {
        InlinePolicy {
            calls: AtomicU32::new(0),
            long_share: AtomicU32::new(0),
            short_call,
        }
    }

    /// Whether the next call may run inline.
    pub(super) fn allows_inline(&self) -> bool {
        let calls = self.calls.load(Ordering::Relaxed);
        self.short_call.is_some()
            && (SHORT_STREAK..BARRED).contains(&calls)
            && self.long_share.load(Ordering::Relaxed) < LONG_SHARE_LIMIT
    }

    /// Records a call that ran on a worker: `took` long, and whether it ran a native session.
    pub(super) fn record_worker_call(&self, took: Duration, native: bool) {
        let Some(short_call) = self.short_call else {
            return;
        };
        let _ = self
            .calls
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |calls| {
                (calls != BARRED).then(|| calls.saturating_add(1).min(SHORT_STREAK))
            });
        self.record_length(took >= short_call || native);
    }

    /// Records an inline call: one that overran its budget bars the model; a long one counts
    /// as a worker's does.
    pub(super) fn record_inline_call(&self, took: Duration, overran: bool) {
        if overran {
            self.calls.store(BARRED, Ordering::Relaxed);
        } else if let Some(short_call) = self.short_call {
            self.record_length(took >= short_call);
        }
    }

    /// Moves the share of long calls toward 1 for a `long` call, toward 0 for a short one (a
    /// share already 0 is not written: short inline calls, the common case, write nothing).
    fn record_length(&self, long: bool) {
        if !long && self.long_share.load(Ordering::Relaxed) == 0 {
            return;
        }
        let _ = self
            .long_share
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |share| {
                Some(if long {
                    share + (ONE - share).div_ceil(WINDOW)
                } else {
                    share - share.div_ceil(WINDOW)
                })
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_micros(20);
    const SHORT_CALL: Duration = Duration::from_micros(200);

    fn earned() -> InlinePolicy {
        let policy = InlinePolicy::new(Some(SHORT_CALL));
        for _ in 0..SHORT_STREAK {
            policy.record_worker_call(QUICK, false);
        }
        policy
    }

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
    fn a_lone_long_call_costs_a_call_on_the_workers_not_a_new_streak() {
        let policy = earned();
        policy.record_inline_call(SHORT_CALL * 10, false);
        assert!(!policy.allows_inline());
        policy.record_worker_call(QUICK, false);
        assert!(policy.allows_inline());
        policy.record_inline_call(QUICK, false);
        assert!(policy.allows_inline());
    }

    #[test]
    fn frequent_long_calls_keep_calls_on_the_workers() {
        let policy = earned();
        // One call in ten long: the share stays over the limit.
        for call in 0..1000 {
            let took = if call % 10 == 0 {
                SHORT_CALL * 2
            } else {
                QUICK
            };
            if policy.allows_inline() {
                policy.record_inline_call(took, false);
            } else {
                policy.record_worker_call(took, false);
            }
        }
        let inline = (0..100)
            .filter(|call| {
                let allowed = policy.allows_inline();
                let took = if call % 10 == 0 {
                    SHORT_CALL * 2
                } else {
                    QUICK
                };
                policy.record_worker_call(took, false);
                allowed
            })
            .count();
        assert!(inline < 50, "{inline} of 100 calls inline");
        // Native sessions never run inline.
        let native = earned();
        native.record_worker_call(QUICK, true);
        for _ in 0..WINDOW {
            assert!(!native.allows_inline());
            native.record_worker_call(QUICK, true);
        }
    }

    #[test]
    fn an_overrun_bars_the_model_for_good() {
        let policy = earned();
        policy.record_inline_call(QUICK, false);
        assert!(policy.allows_inline());
        policy.record_inline_call(QUICK, true);
        for _ in 0..SHORT_STREAK * 4 {
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
