//! The engine's epoch: the clock every call's deadline is measured in.
//!
//! A thread advances the epoch every [`EPOCH_TICK`]. A Store's epoch deadline is always the
//! next tick: at each tick its callback checks the call (its deadline, its caller's cancel, an
//! inline call's budget) and stops it or lets it go on (see `instance::at_epoch_deadline`).

use std::time::{Duration, Instant};
use wasmtime::Engine;

/// How often the epoch advances: the granularity of call deadlines.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Advances the engine's epoch every [`EPOCH_TICK`] on a thread of its own, until the engine is
/// dropped.
pub(super) fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("mlhost-epoch".into())
        .spawn(move || {
            // Count ticks against the wall clock (catching up after a late wake-up), so that
            // epochs keep pace with the clock deadlines are set in.
            let start = Instant::now();
            let mut ticks: u128 = 0;
            while let Some(engine) = weak.upgrade() {
                let due = start.elapsed().as_nanos() / EPOCH_TICK.as_nanos();
                while ticks < due {
                    engine.increment_epoch();
                    ticks += 1;
                }
                drop(engine);
                let next = Duration::from_nanos(((ticks + 1) * EPOCH_TICK.as_nanos()) as u64);
                std::thread::sleep(next.saturating_sub(start.elapsed()));
            }
        })
        .expect("spawn the epoch ticker");
}
