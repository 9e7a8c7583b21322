//! Stops native runs at their deadline: one thread for the process watches every run in
//! progress and terminates, through ONNX Runtime's run options, those whose deadline passes.
//!
//! A run registers with [`watch`] and unregisters when its [`Watch`] is dropped; registering
//! and unregistering take one uncontended lock, and the thread sleeps until the earliest
//! deadline (or a new registration).

use ort::session::RunOptions;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

/// One run being watched.
struct Entry {
    id: u64,
    deadline: Instant,
    options: Arc<RunOptions>,
    fired: Arc<AtomicBool>,
}

/// The runs in progress, and the condition the watching thread waits on.
#[derive(Default)]
struct Watchdog {
    runs: Mutex<Vec<Entry>>,
    changed: Condvar,
    next_id: AtomicU64,
}

/// A registration: the run is terminated if it is still registered at its deadline.
pub(super) struct Watch {
    id: u64,
    fired: Arc<AtomicBool>,
}

impl Watch {
    /// Whether the deadline passed and the run was told to stop.
    pub(super) fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let watchdog = watchdog();
        let mut runs = watchdog.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.retain(|entry| entry.id != self.id);
    }
}

/// Watches a run with `options` until the returned [`Watch`] is dropped.
pub(super) fn watch(deadline: Instant, options: Arc<RunOptions>) -> Watch {
    let watchdog = watchdog();
    let id = watchdog.next_id.fetch_add(1, Ordering::Relaxed);
    let fired = Arc::new(AtomicBool::new(false));
    watchdog
        .runs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Entry {
            id,
            deadline,
            options,
            fired: fired.clone(),
        });
    watchdog.changed.notify_one();
    Watch { id, fired }
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
    /// Terminates runs as their deadlines pass; sleeps until the next one.
    fn run(&self) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            runs.retain(|entry| {
                if entry.deadline > now {
                    return true;
                }
                entry.fired.store(true, Ordering::Release);
                if let Err(error) = entry.options.terminate() {
                    tracing::warn!(%error, "cannot stop a native run at its deadline");
                }
                false
            });
            runs = match runs.iter().map(|entry| entry.deadline).min() {
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
