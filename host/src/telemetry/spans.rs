//! A recorded request made into spans: the request's, and one per stage, each with the start
//! and end times recorded; and the parent a request names in its W3C `traceparent`.

use super::Recording;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanLinks};
use std::borrow::Cow;
use std::time::{Duration, Instant, SystemTime};

/// Reads a `traceparent` (and `tracestate`) from HTTP headers or gRPC metadata.
struct Headers<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The remote parent a request names in its `traceparent`, if it names a valid one.
pub(super) fn parent(headers: &http::HeaderMap) -> Option<SpanContext> {
    if !headers.contains_key("traceparent") {
        return None;
    }
    let propagator = opentelemetry_sdk::propagation::TraceContextPropagator::new();
    let context =
        opentelemetry::propagation::TextMapPropagator::extract(&propagator, &Headers(headers));
    let parent = context.span().span_context().clone();
    parent.is_valid().then_some(parent)
}

/// Turns instants of one request into wall-clock times.
struct Clock {
    started: Instant,
    started_at: SystemTime,
}

impl Clock {
    fn at(&self, instant: Instant) -> SystemTime {
        self.started_at + instant.saturating_duration_since(self.started)
    }
}

/// What the spans of one trace share.
struct Trace {
    trace_id: TraceId,
    state: TraceState,
    ids: RandomIdGenerator,
    scope: InstrumentationScope,
}

impl Trace {
    /// A span of this trace, child of `parent`, from `start` to `end`.
    fn span(
        &self,
        id: SpanId,
        parent: SpanId,
        name: impl Into<Cow<'static, str>>,
        (start, end): (SystemTime, SystemTime),
        attributes: Vec<KeyValue>,
    ) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                self.trace_id,
                id,
                TraceFlags::SAMPLED,
                false,
                self.state.clone(),
            ),
            parent_span_id: parent,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: name.into(),
            start_time: start,
            end_time: end.max(start),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: self.scope.clone(),
        }
    }
}

/// The spans of a request answered at `ended`: the request's (a server span, child of the
/// `traceparent`'s, with `attributes` added) and, as its children, `receive`, `decode`,
/// `queue` (with `batch` inside it when the request waited to be batched), `compute` (with
/// `compute_input`, `compute_infer`, `compute_output`) and `encode`, for the stages it reached.
pub(super) fn build(
    recording: Recording,
    ended: Instant,
    attributes: Vec<KeyValue>,
    failed: bool,
) -> Vec<SpanData> {
    let ids = RandomIdGenerator::default();
    let (trace_id, state, parent_id) = match &recording.parent {
        Some(parent) => (
            parent.trace_id(),
            parent.trace_state().clone(),
            parent.span_id(),
        ),
        None => (ids.new_trace_id(), TraceState::default(), SpanId::INVALID),
    };
    let trace = Trace {
        trace_id,
        state,
        ids,
        scope: InstrumentationScope::builder("mlhost")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    };
    let clock = Clock {
        started: recording.started,
        started_at: recording.started_at,
    };
    let at = |instant: Instant| clock.at(instant);
    let root_id = trace.ids.new_span_id();
    let mut spans = Vec::with_capacity(10);
    let child = |spans: &mut Vec<SpanData>, parent, name: &'static str, from, to| {
        let id = trace.ids.new_span_id();
        spans.push(trace.span(id, parent, name, (at(from), at(to)), Vec::new()));
        id
    };

    let received = recording.received.unwrap_or(recording.started);
    if recording.received.is_some() {
        child(&mut spans, root_id, "receive", recording.started, received);
    }
    if let Some(decoded) = recording.decoded {
        child(&mut spans, root_id, "decode", received, decoded);
    }
    let mut answered = None;
    if let (Some(decoded), Some((returned, timings))) = (recording.decoded, recording.call) {
        let batched = recording.batched.map(|(dispatched, _)| dispatched);
        stage_spans(
            &mut spans,
            &child,
            root_id,
            decoded,
            (returned, batched),
            &timings,
        );
        answered = Some(returned);
    }
    if let Some(answered) = answered {
        child(&mut spans, root_id, "encode", answered, ended);
    }

    let mut root_attributes = recording.attributes;
    if let Some((model, version)) = recording.model {
        root_attributes.push(KeyValue::new("model.name", model));
        if let Some(version) = version {
            root_attributes.push(KeyValue::new("model.version", version));
        }
    }
    if let Some((_, requests)) = recording.batched {
        root_attributes.push(KeyValue::new("batch.requests", requests as i64));
    }
    root_attributes.extend(attributes);
    let mut root = trace.span(
        root_id,
        parent_id,
        recording.name,
        (at(recording.started), at(ended)),
        root_attributes,
    );
    root.span_kind = SpanKind::Server;
    root.parent_span_is_remote = recording.parent.is_some();
    if failed {
        root.status = Status::error("");
    }
    spans.push(root);
    spans
}

/// The spans of the run: `queue` from `decoded` until the worker started (holding `batch`,
/// the wait in the batcher until the batch was `batched` to the workers, when it was), then
/// `compute` and its three parts, ending when the answer came back (`returned`).
fn stage_spans(
    spans: &mut Vec<SpanData>,
    child: &impl Fn(&mut Vec<SpanData>, SpanId, &'static str, Instant, Instant) -> SpanId,
    root: SpanId,
    decoded: Instant,
    (returned, batched): (Instant, Option<Instant>),
    timings: &crate::stats::CallTimings,
) {
    let computed = returned
        .checked_sub(timings.total())
        .unwrap_or(decoded)
        .max(decoded);
    let queue = child(spans, root, "queue", decoded, computed);
    if let Some(dispatched) = batched {
        child(
            spans,
            queue,
            "batch",
            decoded,
            dispatched.clamp(decoded, computed),
        );
    }
    let compute = child(spans, root, "compute", computed, returned);
    let parts: [(&'static str, Duration); 3] = [
        ("compute_input", timings.input),
        ("compute_infer", timings.infer),
        ("compute_output", timings.output),
    ];
    let mut from = computed;
    for (name, took) in parts {
        let to = (from + took).min(returned);
        child(spans, compute, name, from, to);
        from = to;
    }
}
