//! One model instance: a `Store` holding an instantiated runtime and the model it loaded.

use super::bindings::{Runtime, types};
use super::convert;
use super::engine::RuntimeComponent;

use super::guest_log::GuestLog;
use super::state::{InstanceState, NativeContext, TickVerdict};
use super::stream::StreamSink;
use crate::codec::{InferenceRequest, ModelMetadata, Tensor};
use crate::stats::CallTimings;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceAny;
use wasmtime::{Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx};

/// Where the guest finds its model folder.
pub(crate) const GUEST_MODEL_DIR: &str = "/model";

/// The longest a runtime may take to load its model.
const LOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// The bounds every instance of a model runs within.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstanceLimits {
    /// Linear memory, in bytes.
    pub memory_bytes: u64,
    /// The longest one call may run.
    pub timeout: Duration,
    /// The most output data one call may return, in bytes.
    pub max_output_bytes: u64,
    /// What the guest may write to stdout and stderr per call, in bytes.
    pub log_budget: usize,
}

/// What an instance is created from: the same for every instance of a model.
#[derive(Debug, Clone)]
pub struct ModelContext {
    /// The model's name, for logs.
    pub name: String,
    /// The host folder preopened read-only at [`GUEST_MODEL_DIR`].
    pub host_dir: PathBuf,
    /// The settings given to the runtime's `load`.
    pub settings: convert::GuestSettings,
    /// Memory, time and output bounds.
    pub limits: InstanceLimits,
    /// What the model may use of the native backends.
    pub native: crate::native::NativeOptions,
}

/// Why an instance could not be created.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("cannot open the model folder {}: {source}", dir.display())]
    ModelDir {
        dir: PathBuf,
        source: wasmtime::Error,
    },
    #[error("cannot instantiate the runtime: {0:#}")]
    Instantiate(wasmtime::Error),
    #[error("the runtime rejected the model: {0}")]
    Rejected(String),
    #[error("the runtime trapped while loading the model: {0:#}")]
    Trap(wasmtime::Error),
    #[error("the runtime's metadata is invalid: {0}")]
    Metadata(String),
}

/// What one successful call produced, and where its time went.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    pub outputs: Vec<Tensor>,
    /// The response's parameters.
    pub parameters: crate::codec::Parameters,
    pub timings: CallTimings,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The runtime says the request does not fit the model.
    #[error("{0}")]
    InvalidInput(String),
    /// The runtime reported a failure of its own.
    #[error("{0}")]
    Failed(String),
    /// The runtime returned outputs that are not valid tensors.
    #[error("the runtime returned an invalid output: {0}")]
    InvalidOutput(String),
    /// The guest trapped: its Store is unusable and must be replaced. Clients read the trap's
    /// cause; the whole trap, wasm backtrace included, is the error's source (for the log).
    #[error("the runtime trapped: {}", .0.0.root_cause())]
    Trap(#[source] TrapDetail),
    /// The host's own code panicked on this request (a bug): the instance, whose state is now
    /// unknown, is replaced. The panic's message is the source (for the log).
    #[error("the worker failed on this request")]
    Panicked(#[source] Panic),
    /// The request's deadline passed while it waited in the queue: the runtime never saw it.
    #[error("the request ran past its deadline of {0:?} before it could start")]
    ExpiredInQueue(Duration),
    /// The call ran past its deadline and was stopped.
    #[error("the request ran past its deadline of {0:?} and was stopped")]
    DeadlineExceeded(Duration),
    /// A streaming call's client did not read its responses: the runtime waited to send until
    /// the call's deadline, and the stream was ended.
    #[error(
        "the client did not read the stream's responses: the stream was ended at its deadline of {0:?}"
    )]
    StreamStalled(Duration),
    /// A native backend's run passed the call's deadline and was stopped; the runtime itself
    /// was not interrupted, so its instance stays usable.
    #[error("the request ran past its deadline of {0:?} and was stopped")]
    NativeDeadline(Duration),
    /// The request's caller cancelled it (its client went away) and the call was stopped.
    #[error("the request was cancelled by its client and its call was stopped")]
    Cancelled,
    /// The guest tried to grow its memory past its limit and was stopped.
    #[error("the runtime exceeded its memory limit of {} MiB and was stopped", .0 / (1024 * 1024))]
    MemoryLimit(u64),
    /// The guest returned more output than allowed.
    #[error("{0}")]
    OutputTooLarge(String),
}

/// A trap with everything known of it: its message, its causes and the wasm backtrace.
#[derive(Debug)]
pub struct TrapDetail(pub wasmtime::Error);

impl std::fmt::Display for TrapDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for TrapDetail {}

/// A panic of the host's own code, with its message.
#[derive(Debug, thiserror::Error)]
#[error("panicked: {0}")]
pub struct Panic(pub String);

impl CallError {
    /// Whether the call left the instance's Store unusable (every trap does).
    pub fn poisons_instance(&self) -> bool {
        matches!(
            self,
            CallError::Trap(_)
                | CallError::Cancelled
                | CallError::Panicked(_)
                | CallError::DeadlineExceeded(_)
                | CallError::MemoryLimit(_)
        )
    }
}

/// Where a call runs: on a worker thread, or inline on the async thread that decoded its request
/// (for a model whose calls are known to be short; see `crate::workers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMode {
    /// On a worker thread: the call may run until its deadline.
    Worker,
    /// On an async thread: at its [`INLINE_BUDGET_TICKS`]th epoch tick, the async thread's other
    /// work is moved to another thread, the call goes on until its deadline, and
    /// [`ModelInstance::overran_inline`] says so.
    Inline,
}

/// The epoch ticks an inline call may run before it counts as overrun (5-10 ms).
pub(crate) const INLINE_BUDGET_TICKS: u64 = 2;

/// The time of [`INLINE_BUDGET_TICKS`] epoch ticks: how long an overrun inline call ran at most
/// before its budget was up.
pub(crate) const INLINE_BUDGET: std::time::Duration =
    super::epoch::EPOCH_TICK.saturating_mul(INLINE_BUDGET_TICKS as u32);

/// How long an overrun inline call waits for the async runtime to hand its other work to
/// another thread.
const HANDOFF_WAIT: Duration = Duration::from_millis(1);

/// A live model instance, used by one thread at a time; dropped (with its whole Store) after a
/// trap.
pub struct ModelInstance {
    store: Store<InstanceState>,
    runtime: Runtime,
    model: ResourceAny,
    max_output_bytes: u64,
}

impl ModelInstance {
    /// Instantiates the runtime in a fresh Store and loads the model; returns the instance and
    /// the model's own metadata.
    pub fn new(
        component: &RuntimeComponent,
        context: &ModelContext,
    ) -> Result<(Self, ModelMetadata), InstanceError> {
        let mut store = Store::new(component.pre.engine(), instance_state(context)?);
        store.limiter(|state| state.limiter());
        store.epoch_deadline_callback(at_epoch_deadline);
        store.set_epoch_deadline(1);
        let runtime = component
            .pre
            .instantiate(&mut store)
            .map_err(InstanceError::Instantiate)?;
        let guest = runtime.mlhost_runtime_model().model();
        let settings = context.settings.to_wit();
        let model = guest
            .call_load(&mut store, &settings)
            .map_err(InstanceError::Trap)?
            .map_err(|error| InstanceError::Rejected(convert::error_message(error)))?;
        store.set_epoch_deadline(1);
        store
            .data_mut()
            .set_deadline(Instant::now() + context.limits.timeout);
        store.data_mut().answer().begin_describe();
        let described = guest.call_metadata(&mut store, model);
        store.data().end_call();
        let collected = store.data_mut().answer().finish_describe();
        described
            .map_err(InstanceError::Trap)?
            .map_err(|error| InstanceError::Metadata(convert::error_message(error)))?;
        let metadata = collected.map_err(InstanceError::Metadata)?;
        Ok((
            ModelInstance {
                store,
                runtime,
                model,
                max_output_bytes: context.limits.max_output_bytes,
            },
            metadata,
        ))
    }

    /// Runs one request through the model, stopping it at `deadline` (set by `timeout`, which
    /// the error names); returns its outputs, response parameters and timings. After an error
    /// that [poisons](CallError::poisons_instance) the instance, drop it.
    ///
    /// With a `stream`, the runtime may send responses before it returns (see the WIT
    /// `send-response`); the call's own result is then its last response, possibly empty.
    pub fn predict(
        &mut self,
        request: InferenceRequest,
        deadline: Instant,
        timeout: Duration,
        stream: Option<StreamSink>,
        mode: CallMode,
        cancel: Option<Arc<AtomicBool>>,
    ) -> Result<CallOutput, CallError> {
        let started = Instant::now();
        let remaining = deadline.saturating_duration_since(started);
        if remaining.is_zero() {
            return Err(CallError::ExpiredInQueue(timeout));
        }
        let request = convert::request_to_wit(request);
        let lowered = Instant::now();
        // Checked at every epoch tick: the deadline, the caller's cancel, an inline budget.
        self.store.set_epoch_deadline(1);
        let guest = self.runtime.mlhost_runtime_model().model();
        let state = self.store.data_mut();
        state.begin_call(mode == CallMode::Inline, cancel);
        state.answer().begin_predict(self.max_output_bytes, stream);
        state.set_deadline(deadline);
        // Only this call's native runs count (one stopped while loading must not fail it).
        state.take_native_deadline_hit();
        let result = guest.call_predict(&mut self.store, self.model, &request);
        let returned = Instant::now();
        self.store.data().end_call();
        let collected = self.store.data_mut().answer().finish_predict();
        if self.store.data_mut().take_native_deadline_hit() && result.is_ok() {
            // A native run was stopped at the deadline: whatever the runtime made of it, the
            // call ran out of time (and the instance, never interrupted, stays usable).
            return Err(CallError::NativeDeadline(timeout));
        }
        result
            .map_err(|error| self.classify(error, timeout))?
            .map_err(|error| match (error, &collected) {
                // The runtime failing because the host refused its output: say so.
                (_, Err(refused)) => CallError::OutputTooLarge(refused.clone()),
                (types::Error::InvalidInput(message), _) => CallError::InvalidInput(message),
                (other, _) => CallError::Failed(convert::error_message(other)),
            })?;
        let (outputs, parameters) = collected.map_err(CallError::OutputTooLarge)?;
        convert::check_outputs(&outputs).map_err(CallError::InvalidOutput)?;
        Ok(CallOutput {
            outputs,
            parameters,
            timings: CallTimings {
                input: lowered - started,
                infer: returned - lowered,
                output: returned.elapsed(),
            },
        })
    }

    /// Whether the last call ran inline past its budget (see [`CallMode::Inline`]).
    pub fn overran_inline(&self) -> bool {
        self.store.data().overran_inline()
    }

    /// Whether the runtime has run a native backend's session (a run the epoch cannot stop).
    pub fn uses_native(&mut self) -> bool {
        self.store.data_mut().native().used
    }

    /// Names a failed call: deadline (the epoch's interrupt, or a stream that stayed full until
    /// the deadline: see [`super::host`]), memory limit, or another trap.
    fn classify(&self, error: wasmtime::Error, timeout: Duration) -> CallError {
        if let Some(limit) = self.store.data().memory_limit_exceeded() {
            CallError::MemoryLimit(limit)
        } else if self.store.data().was_cancelled() {
            CallError::Cancelled
        } else if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            CallError::DeadlineExceeded(timeout)
        } else {
            CallError::Trap(TrapDetail(error))
        }
    }
}

/// The state of a new instance of `context`'s model: WASI (the model folder read-only, no
/// network), its logs and its limits.
/// At each epoch tick during a call (the Store's deadline is always the next tick): the call
/// stops at its deadline or when its caller cancels it ([`Trap::Interrupt`]); an inline call
/// past its budget moves the async thread's other work elsewhere and goes on.
fn at_epoch_deadline(
    mut store: wasmtime::StoreContextMut<'_, InstanceState>,
) -> wasmtime::Result<wasmtime::UpdateDeadline> {
    match store.data_mut().at_tick(INLINE_BUDGET_TICKS) {
        TickVerdict::Continue => Ok(wasmtime::UpdateDeadline::Continue(1)),
        TickVerdict::HandOff => {
            hand_off_async_work();
            Ok(wasmtime::UpdateDeadline::Continue(1))
        }
        TickVerdict::Stop => Err(Trap::Interrupt.into()),
    }
}

/// On a thread of tokio's multi-threaded runtime, hands that thread's scheduler to another
/// thread (`block_in_place`), so that what else it was running goes on while this call runs.
fn hand_off_async_work() {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread)
    {
        tokio::task::block_in_place(|| std::thread::sleep(HANDOFF_WAIT));
    }
}

fn instance_state(context: &ModelContext) -> Result<InstanceState, InstanceError> {
    let mut wasi = WasiCtx::builder();
    // Workers are plain threads: let file operations block them instead of hopping to a
    // blocking pool for each call.
    wasi.allow_blocking_current_thread(true)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .preopened_dir(&context.host_dir, GUEST_MODEL_DIR, FsPerms::ReadOnly)
        .map_err(|source| InstanceError::ModelDir {
            dir: context.host_dir.clone(),
            source,
        })?;
    let logs = [
        GuestLog::new(&context.name, "stdout", context.limits.log_budget),
        GuestLog::new(&context.name, "stderr", context.limits.log_budget),
    ];
    let native = NativeContext {
        options: context.native,
        model_dir: context.host_dir.clone(),
        max_output_bytes: context.limits.max_output_bytes,
        deadline_hit: false,
        used: false,
    };
    Ok(InstanceState::new(
        wasi,
        logs,
        usize::try_from(context.limits.memory_bytes).unwrap_or(usize::MAX),
        Instant::now() + LOAD_TIMEOUT,
        native,
    ))
}
