//! Waits a runtime may make are cut at its call's deadline.
//!
//! Epoch interruption stops wasm code, not the host calls it makes: a runtime that sleeps (a
//! `wasi:clocks/monotonic-clock` subscription, then a blocking poll) would hold its worker past
//! any deadline. mlhost shadows the two subscription functions of WASI's monotonic clock with
//! ones whose timers end at the call's deadline at the latest; when the wait returns, the next
//! epoch check stops the runtime.

use super::epoch::EPOCH_TICK;
use super::state::InstanceState;
use std::time::{Duration, Instant};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

/// The WASI monotonic clock interface, at the version wasmtime-wasi provides (older 0.2
/// imports of guests resolve to it).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// A timer that ends at a tokio instant.
struct CappedTimer(tokio::time::Instant);

#[wasmtime_wasi::async_trait]
impl Pollable for CappedTimer {
    async fn ready(&mut self) {
        tokio::time::sleep_until(self.0).await;
    }
}

/// Replaces `subscribe-duration` and `subscribe-instant` in `linker` (which already holds WASI).
pub(super) fn cap_waits_at_deadlines(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, InstanceState>, (nanos,): (u64,)| {
            Ok((timer(store.data_mut(), Duration::from_nanos(nanos))?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, InstanceState>, (when,): (u64,)| {
            let state = store.data_mut();
            let now = state.monotonic_now();
            Ok((timer(
                state,
                Duration::from_nanos(when.saturating_sub(now)),
            )?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn timer(state: &mut InstanceState, wait: Duration) -> wasmtime::Result<Resource<DynPollable>> {
    // End just past the deadline, so that the epoch has passed it when the runtime resumes.
    let left = state.deadline().saturating_duration_since(Instant::now()) + 3 * EPOCH_TICK;
    let wait = wait.min(left);
    let end = tokio::time::Instant::now()
        .checked_add(wait)
        .unwrap_or_else(tokio::time::Instant::now);
    let table = state.table();
    let timer = table.push(CappedTimer(end))?;
    subscribe(table, timer)
}
