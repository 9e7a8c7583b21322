//! OpenTelemetry traces of requests, and the run-time log settings.
//!
//! With `tracing_server` set, each request a front end observes is recorded as it goes — a few
//! timestamps in a task-local [`Recording`]: when its body was in, when it was decoded, what its
//! run on a worker took ([`crate::stats::CallTimings`], batching included) — and, when the
//! sampling settings ([`sampling`]) choose it, becomes a trace: the request's span (the child of
//! the W3C `traceparent` it carried, if any) with a span per stage, made afterwards with their
//! recorded start and end times and sent over OTLP/gRPC ([`export`]). Without `tracing_server`
//! (or with tracing set `OFF`), nothing is recorded: each hook is one atomic load.

pub(crate) mod export;
pub(crate) mod grpc;
pub(crate) mod logging;
pub(crate) mod request_log;
pub(crate) mod rest;
pub(crate) mod sampling;
mod spans;
pub(crate) mod triton;

use crate::stats::CallTimings;
use opentelemetry::trace::SpanContext;
use std::cell::RefCell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

/// The trace settings, and the exporter when there is a `tracing_server`.
struct Tracing {
    sampling: sampling::Sampling,
    export: Option<export::SpanQueue>,
    /// `tracing_server` as a URL (empty without one).
    endpoint: String,
}

static TRACING: OnceLock<Tracing> = OnceLock::new();
/// Whether requests are recorded: there is an exporter and some setting traces.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether requests are being recorded (the hooks' first and, when off, only check).
#[inline]
pub(crate) fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

fn refresh_active() {
    let active = TRACING
        .get()
        .is_some_and(|tracing| tracing.export.is_some() && tracing.sampling.any_on());
    ACTIVE.store(active, Ordering::Relaxed);
}

/// Starts tracing as the settings say (needs a tokio runtime): the exporter to `server`, if
/// any, and the sampling settings. Call once, before the servers start.
pub(crate) fn start(
    server: Option<&str>,
    sample_ratio: f64,
    service_name: &str,
    service_version: &str,
) -> Result<Option<tokio::task::JoinHandle<()>>, export::ExporterError> {
    let server = server.map(str::trim).filter(|server| !server.is_empty());
    let (export, task) = match server {
        Some(server) => {
            let (queue, task) = export::start(server, service_name, service_version)?;
            tracing::info!(
                tracing_server = server,
                sample_ratio,
                "exporting traces over OTLP/gRPC"
            );
            (Some(queue), Some(task))
        }
        None => (None, None),
    };
    // Without a collector, nothing is traced (and the settings say so).
    let ratio = if export.is_some() { sample_ratio } else { 0.0 };
    let _ = TRACING.set(Tracing {
        sampling: sampling::Sampling::new(ratio),
        export,
        endpoint: server.map(export::endpoint_url).unwrap_or_default(),
    });
    refresh_active();
    Ok(task)
}

/// Sends the traces still queued, waiting for them at most `timeout` (at shutdown).
pub(crate) async fn flush(timeout: std::time::Duration) {
    if let Some(queue) = TRACING.get().and_then(|tracing| tracing.export.as_ref()) {
        let _ = tokio::time::timeout(timeout, queue.flush()).await;
    }
}

/// Why a change of the trace settings was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
}

/// The trace settings in force for `model` (the server's for `None`), in Triton's fields.
pub(crate) fn trace_settings(model: Option<&str>) -> Vec<(&'static str, Vec<String>)> {
    let (effective, endpoint) = match TRACING.get() {
        Some(tracing) => (tracing.sampling.effective(model), tracing.endpoint.as_str()),
        None => (
            sampling::Effective {
                on: false,
                rate: 1.0,
                count: -1,
            },
            "",
        ),
    };
    let level = if effective.on { "TIMESTAMPS" } else { "OFF" };
    vec![
        ("trace_level", vec![level.to_string()]),
        (
            "trace_rate",
            vec![format!("{}", effective.rate.round() as u64)],
        ),
        ("trace_count", vec![effective.count.to_string()]),
        ("trace_mode", vec!["opentelemetry".to_string()]),
        ("url", vec![endpoint.to_string()]),
    ]
}

/// Applies a change of the trace settings of the server (`None`) or of `model`.
pub(crate) fn update_trace_settings(
    model: Option<&str>,
    update: &sampling::Update,
) -> Result<(), SettingsError> {
    let tracing = TRACING
        .get()
        .ok_or_else(|| SettingsError::Unsupported("tracing is not started".to_string()))?;
    if tracing.export.is_none() && update.on == Some(Some(true)) {
        return Err(SettingsError::Unsupported(
            "tracing needs an OpenTelemetry collector: set tracing_server (MLHOST_TRACING_SERVER) \
             to its host:port"
                .to_string(),
        ));
    }
    tracing.sampling.update(model, update);
    refresh_active();
    Ok(())
}

tokio::task_local! {
    static RECORDING: RefCell<Option<Recording>>;
}

/// What is known of one request while it runs: its timestamps, and what its spans will say.
#[derive(Debug)]
pub(crate) struct Recording {
    started: Instant,
    started_at: SystemTime,
    /// Whether it was chosen to be traced when it began (else it is decided when it ends,
    /// once its model is known).
    decided: bool,
    /// The remote parent from `traceparent`, when valid.
    parent: Option<SpanContext>,
    /// The request's span name, e.g. `POST /v2/models/{model_name}/infer`.
    name: String,
    /// Its attributes: protocol, route or method, request id.
    attributes: Vec<opentelemetry::KeyValue>,
    received: Option<Instant>,
    decoded: Option<Instant>,
    model: Option<(String, Option<String>)>,
    call: Option<(Instant, CallTimings)>,
    /// When the request's batch went to the workers, and how many requests it held.
    batched: Option<(Instant, usize)>,
}

impl Recording {
    /// A request that arrived now: its parent from `headers` (HTTP headers or gRPC metadata);
    /// `None` when requests are not being recorded.
    pub(crate) fn begin(
        headers: &http::HeaderMap,
        name: impl FnOnce() -> String,
        attributes: impl FnOnce() -> Vec<opentelemetry::KeyValue>,
    ) -> Option<Recording> {
        if !active() {
            return None;
        }
        let parent = spans::parent(headers);
        let sampling = &TRACING.get()?.sampling;
        // Decided now when no model has settings of its own: a request that is not traced is
        // not recorded either.
        let decided = !sampling.per_model();
        if decided && !sampling.decide(None, parent.as_ref().map(SpanContext::is_sampled)) {
            return None;
        }
        Some(Recording {
            started: Instant::now(),
            started_at: SystemTime::now(),
            decided,
            parent,
            name: name(),
            attributes: attributes(),
            received: None,
            decoded: None,
            model: None,
            call: None,
            batched: None,
        })
    }

    /// Runs `future` (the request's handling) with this recording as the one its hooks fill,
    /// and gives it back with the output.
    pub(crate) async fn record<F: std::future::Future>(
        recording: Option<Recording>,
        future: F,
    ) -> (F::Output, Option<Recording>) {
        match recording {
            None => (future.await, None),
            Some(recording) => {
                RECORDING
                    .scope(RefCell::new(Some(recording)), async move {
                        let output = future.await;
                        let recording = RECORDING.with(|cell| cell.borrow_mut().take());
                        (output, recording)
                    })
                    .await
            }
        }
    }

    /// The request has been answered now with `attributes` (its status): sends its trace if the
    /// sampling settings choose it.
    pub(crate) fn finish(self, attributes: Vec<opentelemetry::KeyValue>, failed: bool) {
        let Some(tracing) = TRACING.get() else { return };
        let Some(queue) = &tracing.export else { return };
        let model = self.model.as_ref().map(|(name, _)| name.as_str());
        let parent_sampled = self.parent.as_ref().map(SpanContext::is_sampled);
        if self.decided || tracing.sampling.decide(model, parent_sampled) {
            queue.send(spans::build(self, Instant::now(), attributes, failed));
        }
    }
}

/// Updates the request's recording, if it has one.
fn with_recording(update: impl FnOnce(&mut Recording)) {
    if !active() {
        return;
    }
    let _ = RECORDING.try_with(|cell| {
        if let Some(recording) = cell.borrow_mut().as_mut() {
            update(recording);
        }
    });
}

/// The request's body has been read: decoding starts.
pub(crate) fn mark_received() {
    with_recording(|recording| recording.received = Some(Instant::now()));
}

/// The request has been decoded; it is for `model` (`version`).
pub(crate) fn mark_decoded(model: &str, version: Option<&str>) {
    with_recording(|recording| {
        recording.decoded = Some(Instant::now());
        recording.model = Some((model.to_string(), version.map(str::to_string)));
    });
}

/// The request's run has been answered now, having taken `timings` on its worker.
pub(crate) fn record_call(timings: &CallTimings) {
    with_recording(|recording| recording.call = Some((Instant::now(), *timings)));
}

/// The request's batch (of `requests` requests) went to the workers at `dispatched`.
pub(crate) fn mark_batched(dispatched: Instant, requests: usize) {
    with_recording(|recording| recording.batched = Some((dispatched, requests)));
}
