//! Stops native runs at their deadline: one thread for the process watches every run in
//! progress and terminates, through ONNX Runtime's run options, those whose deadline passes.
//!
//! A run registers with [`watch`] and unregisters with [`Watch::finish`] (or by dropping its
//! [`Watch`]); each takes one uncontended lock. The thread sleeps until the earliest deadline and
//! is woken only by a registration with an earlier one, so a run costs it no wake-up when
//! deadlines are alike (every model's timeout is the same for each of its calls).

use ort::session::RunOptions;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

/// One run being watched.
struct Entry {
    id: u64,
    deadline: Instant,
    options: Arc<RunOptions>,
}

/// What the lock guards: the runs in progress and when the thread will next look at them.
#[derive(Default)]
struct Runs {
    entries: Vec<Entry>,
    /// The deadline the thread sleeps until (`None`: until woken).
    wakes_at: Option<Instant>,
}

/// The runs in progress, and the condition the watching thread waits on.
#[derive(Default)]
struct Watchdog {
    runs: Mutex<Runs>,
    changed: Condvar,
    next_id: AtomicU64,
}

/// A registration: the run is terminated if it is still registered at its deadline.
pub(super) struct Watch {
    id: u64,
}

impl Watch {
    /// Unregisters the run; returns whether its deadline passed and it was told to stop.
    pub(super) fn finish(self) -> bool {
        let fired = !unregister(self.id);
        std::mem::forget(self);
        fired
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        unregister(self.id);
    }
}

/// Removes run `id`; returns whether it was still registered (not yet terminated).
fn unregister(id: u64) -> bool {
    let mut runs = watchdog().lock();
    let before = runs.entries.len();
    runs.entries.retain(|entry| entry.id != id);
    runs.entries.len() != before
}

/// Watches a run with `options` until the returned [`Watch`] is finished or dropped.
pub(super) fn watch(deadline: Instant, options: Arc<RunOptions>) -> Watch {
    let watchdog = watchdog();
    let id = watchdog.next_id.fetch_add(1, Ordering::Relaxed);
    let mut runs = watchdog.lock();
    runs.entries.push(Entry {
        id,
        deadline,
        options,
    });
    if runs.wakes_at.is_none_or(|wakes_at| deadline < wakes_at) {
        watchdog.changed.notify_one();
    }
    Watch { id }
}

/// The process's watchdog, its thread started on first use.
fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let watchdog: &'static Watchdog = Box::leak(Box::default());
        std::thread::Builder::new()
            .name("mlhost-native-deadlines".into())
            .spawn(move || watchdog.run())
            .expect("spawn the native backends' deadline thread");
        watchdog
    })
}

impl Watchdog {
    fn lock(&self) -> MutexGuard<'_, Runs> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Terminates runs as their deadlines pass; sleeps until the next one.
    fn run(&self) {
        let mut runs = self.lock();
        loop {
            let now = Instant::now();
            runs.entries.retain(|entry| {
                if entry.deadline > now {
                    return true;
                }
                if let Err(error) = entry.options.terminate() {
                    tracing::warn!(%error, "cannot stop a native run at its deadline");
                }
                false
            });
            runs.wakes_at = runs.entries.iter().map(|entry| entry.deadline).min();
            runs = match runs.wakes_at {
                Some(next) => {
                    let wait = next.saturating_duration_since(Instant::now());
                    self.changed
                        .wait_timeout(runs, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.changed.wait(runs).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}
