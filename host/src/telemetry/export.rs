//! The exporter: finished spans queued (bounded, never waiting) to a task that sends them to
//! `tracing_server` over OTLP/gRPC in batches, as MLServer's `BatchSpanProcessor` does.

use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use std::time::Duration;
use tokio::sync::mpsc;

/// Traces waiting to be sent; past it, new ones are dropped.
const QUEUE_TRACES: usize = 1024;
/// The most spans in one export.
const BATCH_SPANS: usize = 512;
/// How long a span waits for others before its batch is sent.
const BATCH_DELAY: Duration = Duration::from_millis(500);
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the exporter could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExporterError {
    #[error("cannot export traces to tracing_server '{endpoint}'")]
    Build {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error(
        "tracing_server '{0}': TLS is not supported; give the collector's plaintext OTLP/gRPC \
         address, host:port (as MLServer's insecure exporter)"
    )]
    Tls(String),
}

/// What the export task is sent.
enum Message {
    /// A trace's spans.
    Spans(Vec<SpanData>),
    /// Send what is gathered now, then say so.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The sending side: where finished traces go.
#[derive(Debug, Clone)]
pub(super) struct SpanQueue {
    messages: mpsc::Sender<Message>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Spans(spans) => write!(f, "Spans({})", spans.len()),
            Message::Flush(_) => write!(f, "Flush"),
        }
    }
}

impl SpanQueue {
    /// Queues a trace's spans; drops them when the queue is full (a collector that is down or
    /// slow never holds requests back).
    pub(super) fn send(&self, trace: Vec<SpanData>) {
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.messages.try_send(Message::Spans(trace))
        {
            tracing::debug!("the trace queue is full: a trace was dropped");
        }
    }

    /// Has the spans queued so far sent, and waits until they are.
    pub(super) async fn flush(&self) {
        let (done, sent) = tokio::sync::oneshot::channel();
        if self.messages.send(Message::Flush(done)).await.is_ok() {
            let _ = sent.await;
        }
    }
}

/// `host:port` (MLServer's form) or a URL → the URL the gRPC exporter connects to.
pub(super) fn endpoint_url(server: &str) -> String {
    let server = server.trim();
    if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    }
}

/// Starts the export task (needs a tokio runtime): spans go to `server` (OTLP/gRPC, plaintext
/// as MLServer's `insecure=True`), described as the service `name` of `version`. The task ends
/// once every [`SpanQueue`] is dropped, after sending what is queued.
pub(super) fn start(
    server: &str,
    name: &str,
    version: &str,
) -> Result<(SpanQueue, tokio::task::JoinHandle<()>), ExporterError> {
    let endpoint = endpoint_url(server);
    if endpoint.starts_with("https://") {
        return Err(ExporterError::Tls(endpoint));
    }
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|source| ExporterError::Build { endpoint, source })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(name.to_string())
        .with_attributes([opentelemetry::KeyValue::new(
            "service.version",
            version.to_string(),
        )])
        .build();
    exporter.set_resource(&resource);
    let (messages, queue) = mpsc::channel(QUEUE_TRACES);
    let task = tokio::spawn(run(exporter, queue));
    Ok((SpanQueue { messages }, task))
}

/// Gathers traces into batches and exports them, one export at a time.
async fn run(exporter: opentelemetry_otlp::SpanExporter, mut queue: mpsc::Receiver<Message>) {
    let mut failures = 0u64;
    while let Some(first) = queue.recv().await {
        let mut batch = Vec::new();
        let mut flushed = Vec::new();
        match first {
            Message::Spans(spans) => batch = spans,
            Message::Flush(done) => flushed.push(done),
        }
        let closes = tokio::time::Instant::now() + BATCH_DELAY;
        while batch.len() < BATCH_SPANS && flushed.is_empty() {
            tokio::select! {
                message = queue.recv() => match message {
                    Some(Message::Spans(spans)) => batch.extend(spans),
                    Some(Message::Flush(done)) => flushed.push(done),
                    None => break,
                },
                () = tokio::time::sleep_until(closes) => break,
            }
        }
        if !batch.is_empty()
            && let Err(error) = exporter.export(batch).await
        {
            failures += 1;
            // The first failure, then one in a hundred: a collector that is down is said
            // once, not per batch.
            if failures % 100 == 1 {
                tracing::warn!(failures, "cannot export traces: {error}");
            }
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlserver_s_host_and_port_becomes_a_url() {
        assert_eq!(endpoint_url("collector:4317"), "http://collector:4317");
        assert_eq!(endpoint_url(" https://c:4317 "), "https://c:4317");
    }
}
