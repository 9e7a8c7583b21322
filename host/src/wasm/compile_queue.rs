//! Compilations one at a time, smallest component first.
//!
//! Cranelift spreads one compilation over every core, so components compiled side by side all
//! finish together, at the end: on a first start, a tiny model would wait seconds for a large
//! one. Taken one at a time, smallest first, a small component is ready in a fraction of a
//! second and the whole takes as long as before.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a compilation that finds the queue idle waits for others to arrive, so that the
/// models loaded together at start are ordered by size (each compilation takes far longer).
const GATHER: Duration = Duration::from_millis(50);

/// The compilations waiting for their turn, and whether one runs.
#[derive(Default)]
pub(super) struct CompileQueue {
    state: Mutex<State>,
    turn: Condvar,
}

#[derive(Default)]
struct State {
    running: bool,
    /// `(size in bytes, arrival number)` of each compilation waiting.
    waiting: BTreeSet<(usize, u64)>,
    arrivals: u64,
}

impl CompileQueue {
    /// Runs `compile` (of a component of `size` bytes) when no other compilation runs and no
    /// smaller one waits.
    pub(super) fn run<T>(&self, size: usize, compile: impl FnOnce() -> T) -> T {
        let mut state = self.lock();
        let ticket = (size, state.arrivals);
        state.arrivals += 1;
        state.waiting.insert(ticket);
        if !state.running && state.waiting.len() == 1 {
            state = self
                .turn
                .wait_timeout(state, GATHER)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        while state.running || state.waiting.first() != Some(&ticket) {
            state = self.turn.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.waiting.remove(&ticket);
        state.running = true;
        drop(state);
        let _turn = Turn(self);
        compile()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A compilation's turn: ends when dropped (also when the compilation panics).
struct Turn<'a>(&'a CompileQueue);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.lock().running = false;
        self.0.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn compilations_run_one_at_a_time_smallest_first() {
        let queue = Arc::new(CompileQueue::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        // A first compilation holds the turn until the four others wait (however slowly their
        // threads start on a busy machine).
        let (running, started) = std::sync::mpsc::channel();
        let blocker = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                queue.clone().run(0, || {
                    running.send(()).unwrap();
                    while queue.lock().waiting.len() < 4 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
            })
        };
        started.recv().unwrap();
        let threads: Vec<_> = [300, 10, 200, 20]
            .into_iter()
            .map(|size| {
                let (queue, order) = (queue.clone(), order.clone());
                std::thread::spawn(move || {
                    queue.run(size, || {
                        order.lock().unwrap().push(size);
                        std::thread::sleep(Duration::from_millis(5));
                    })
                })
            })
            .collect();
        blocker.join().unwrap();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [10, 20, 200, 300]);
    }

    #[test]
    fn a_panicking_compilation_ends_its_turn() {
        let queue = CompileQueue::default();
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            queue.run(1, || panic!("the compiler failed"))
        }));
        assert!(failed.is_err());
        assert_eq!(queue.run(2, || 7), 7);
    }
}
