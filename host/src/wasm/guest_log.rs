//! A guest's stdout and stderr: forwarded to the server log line by line, tagged with the model
//! and the stream, and bounded per call. Output past the budget is dropped (and counted), never
//! refused: a chatty guest keeps running instead of trapping on a failed write.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The longest line logged; longer lines are cut.
const MAX_LINE_BYTES: usize = 4096;

/// One of a guest's output streams. Clones share the same state.
#[derive(Clone)]
pub(super) struct GuestLog {
    model: Arc<str>,
    stream: &'static str,
    state: Arc<Mutex<LogState>>,
}

struct LogState {
    line: Vec<u8>,
    budget: usize,
    remaining: usize,
    dropped: u64,
}

impl GuestLog {
    /// A stream (`"stdout"` or `"stderr"`) of `model`'s instance, allowed `budget` bytes per call.
    pub(super) fn new(model: &str, stream: &'static str, budget: usize) -> Self {
        GuestLog {
            model: model.into(),
            stream,
            state: Arc::new(Mutex::new(LogState {
                line: Vec::new(),
                budget,
                remaining: budget,
                dropped: 0,
            })),
        }
    }

    /// Ends a call: logs a partial line and what was dropped, and renews the budget.
    pub(super) fn end_call(&self) {
        let mut state = self.state.lock().expect("guest log lock");
        if !state.line.is_empty() {
            let line = std::mem::take(&mut state.line);
            self.emit(&line);
        }
        if state.dropped > 0 {
            crate::telemetry::request_log::in_span(|| {
                tracing::warn!(
                    target: "mlhost::guest",
                    model = %self.model,
                    stream = self.stream,
                    "dropped {} bytes of output over the limit of {} bytes per call",
                    state.dropped,
                    state.budget
                )
            });
            state.dropped = 0;
        }
        state.remaining = state.budget;
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut state = self.state.lock().expect("guest log lock");
        let kept = bytes.len().min(state.remaining);
        state.remaining -= kept;
        state.dropped += (bytes.len() - kept) as u64;
        for &byte in &bytes[..kept] {
            if byte == b'\n' {
                let line = std::mem::take(&mut state.line);
                self.emit(&line);
            } else if state.line.len() < MAX_LINE_BYTES {
                state.line.push(byte);
            }
        }
    }

    fn emit(&self, line: &[u8]) {
        // Escape control characters (terminal escapes, carriage returns): a guest must not be
        // able to forge or hide log lines.
        let text: String = String::from_utf8_lossy(line)
            .trim_end_matches('\r')
            .chars()
            .flat_map(|c| {
                let escape = c.is_control() && c != '\t';
                escape
                    .then(|| c.escape_default())
                    .into_iter()
                    .flatten()
                    .chain((!escape).then_some(c))
            })
            .collect();
        // In the request's span: the line names the request the call serves.
        crate::telemetry::request_log::in_span(
            || tracing::info!(target: "mlhost::guest", model = %self.model, stream = self.stream, "{text}"),
        );
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestLog {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bytes(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
