//! The state of one model instance's Store: what the host interfaces (WASI, the guest's clock
//! and logs, mlhost's `host` interface) read and write while the runtime runs.
//!
//! This module depends on none of the modules that implement those interfaces: they depend on
//! it (as wasmtime-wasi's host implementations depend on its `WasiCtx`).

use super::answer::Answer;
use super::epoch::EPOCH_TICK;
use super::guest_log::GuestLog;
use crate::native::NativeOptions;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The most elements a guest's table may grow to.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Per-store state: the guest's WASI context (what it may see of the host), its resources, its
/// memory limiter and its output streams.
pub(super) struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    logs: [GuestLog; 2],
    answer: Answer,
    /// When the call in progress must end (the guest's waits are cut there too).
    deadline: Instant,
    /// The origin of the guest's monotonic clock.
    clock_origin: Instant,
    /// What the guest may use of the native backends (see [`super::onnx`]).
    native: NativeContext,
    /// The inline call in progress, if the call runs on an async thread.
    inline: Option<InlineCall>,
    /// Set by the caller of the call in progress when it no longer wants the answer.
    cancel: Option<Arc<AtomicBool>>,
    /// Set when the call in progress was stopped because its caller cancelled it.
    cancelled: bool,
}

/// A call running on an async thread (see [`super::instance::CallMode::Inline`]).
#[derive(Debug, Clone, Copy)]
struct InlineCall {
    /// Epoch ticks seen during the call.
    ticks: u64,
    /// Set when the call ran past its budget.
    overran: bool,
}

/// What the epoch check decides for the call in progress (see [`InstanceState::at_tick`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TickVerdict {
    /// Go on until the next tick.
    Continue,
    /// An inline call ran past its budget: move the async thread's other work elsewhere,
    /// then go on.
    HandOff,
    /// Stop the call: its deadline passed, or its caller cancelled it.
    Stop,
}

/// What an instance's native sessions are bound by.
#[derive(Debug, Clone)]
pub(super) struct NativeContext {
    /// The model's backend settings.
    pub options: NativeOptions,
    /// The host folder the guest sees at `/model`.
    pub model_dir: PathBuf,
    /// The most output one run may return, in bytes.
    pub max_output_bytes: u64,
    /// Set when a native run of the call in progress was stopped at the deadline.
    pub deadline_hit: bool,
    /// Set once the instance has run a native session (its calls then never run inline: a
    /// native run cannot be interrupted by the epoch).
    pub used: bool,
}

impl InstanceState {
    /// The state of a new instance: `wasi` (with what the guest may see) completed with the
    /// guest's `logs` (stdout, stderr) and monotonic clock, linear memory capped at
    /// `memory_limit` bytes, and the first call ending at `deadline`.
    pub(super) fn new(
        mut wasi: WasiCtxBuilder,
        logs: [GuestLog; 2],
        memory_limit: usize,
        deadline: Instant,
        native: NativeContext,
    ) -> Self {
        let clock_origin = Instant::now();
        wasi.stdout(logs[0].clone())
            .stderr(logs[1].clone())
            .monotonic_clock(GuestClock(clock_origin));
        InstanceState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: memory_limit,
                exceeded: false,
            },
            logs,
            answer: Answer::default(),
            deadline,
            clock_origin,
            native,
            inline: None,
            cancel: None,
            cancelled: false,
        }
    }

    /// Prepares the call about to begin: inline (on an async thread) or not, and the flag its
    /// caller sets to cancel it.
    pub(super) fn begin_call(&mut self, inline: bool, cancel: Option<Arc<AtomicBool>>) {
        self.inline = inline.then_some(InlineCall {
            ticks: 0,
            overran: false,
        });
        self.cancel = cancel;
        self.cancelled = false;
    }

    /// At each epoch tick during a call: stop it at its deadline or when its caller cancelled
    /// it; an inline call's second tick ends its budget.
    pub(super) fn at_tick(&mut self, inline_budget_ticks: u64) -> TickVerdict {
        let now = Instant::now();
        if now >= self.deadline {
            return TickVerdict::Stop;
        }
        if self
            .cancel
            .as_ref()
            .is_some_and(|cancel| cancel.load(Ordering::Relaxed))
        {
            // A caller that gives up within a tick of the deadline gave up at the deadline (a
            // gRPC client's `grpc-timeout`, say): the call ran out of time, it was not cancelled.
            self.cancelled = self.deadline.saturating_duration_since(now) > EPOCH_TICK;
            return TickVerdict::Stop;
        }
        match self.inline.as_mut() {
            Some(call) if !call.overran => {
                call.ticks += 1;
                if call.ticks >= inline_budget_ticks {
                    call.overran = true;
                    return TickVerdict::HandOff;
                }
                TickVerdict::Continue
            }
            _ => TickVerdict::Continue,
        }
    }

    /// Whether the last call was stopped because its caller cancelled it.
    pub(super) fn was_cancelled(&self) -> bool {
        self.cancelled
    }

    /// Whether the last call ran inline past its budget.
    pub(super) fn overran_inline(&self) -> bool {
        self.inline.is_some_and(|call| call.overran)
    }

    /// The instance's native backend context.
    pub(super) fn native(&mut self) -> &mut NativeContext {
        &mut self.native
    }

    /// Whether a native run was stopped at the deadline since the last call (and forgets it).
    pub(super) fn take_native_deadline_hit(&mut self) -> bool {
        std::mem::take(&mut self.native.deadline_hit)
    }

    /// When the call in progress must end.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Sets when the call about to begin must end.
    pub(super) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// The guest's resources.
    pub(super) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The guest's monotonic clock reading, in nanoseconds.
    pub(super) fn monotonic_now(&self) -> u64 {
        wasmtime_wasi::HostMonotonicClock::now(&GuestClock(self.clock_origin))
    }

    /// The answer being collected from the runtime (see [`super::answer`]).
    pub(super) fn answer(&mut self) -> &mut Answer {
        &mut self.answer
    }

    /// The limiter the Store consults before growing the guest's memories and tables.
    pub(super) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limiter
    }

    /// The memory limit in bytes, when the guest tried to grow its memory past it.
    pub(super) fn memory_limit_exceeded(&self) -> Option<u64> {
        self.limiter.exceeded.then_some(self.limiter.limit as u64)
    }

    /// Ends a call: flushes the guest's logs and renews their budget.
    pub(super) fn end_call(&self) {
        for log in &self.logs {
            log.end_call();
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The guest's monotonic clock: nanoseconds since its instance was made (readable by the host,
/// unlike WASI's default clock, so that `subscribe-instant` can be capped).
struct GuestClock(Instant);

impl wasmtime_wasi::HostMonotonicClock for GuestClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Caps an instance's linear memory, and remembers that a growth was refused so that the trap
/// that follows is reported as what it is.
struct MemoryLimiter {
    limit: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} bytes exceeded (asked for {desired})",
                self.limit
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
