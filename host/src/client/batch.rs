//! `mlhost infer --batch`: many requests from a JSON-lines file, as MLServer's `mlserver infer`.
//!
//! Each line of the input is one inference request (blank lines are skipped). Each line of the
//! output answers the input
//! line with the same `batch_index` (a response parameter), in input order: the response, or
//! `{"parameters": {"batch_index": N}, "error": {"status": ..., "msg": ...}}` as MLServer
//! writes failures. A bounded number of requests is in flight at once (`workers`); a request
//! that fails for a reason worth retrying (no connection, timeout, an overloaded server) is
//! tried again up to `retries` times, waiting longer each time.

use super::inputs::MAX_ELEMENTS;
use super::print::response_json;
use super::transport::{InferenceClient, RequestError};
use crate::codec::ParameterValue;
use crate::codec::json::decode_request;
use anyhow::Context;
use futures_util::StreamExt;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// How a batch runs.
#[derive(Debug, Clone)]
pub(crate) struct BatchOptions<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
    /// Requests in flight at once.
    pub workers: usize,
    /// Attempts after the first for a retryable failure.
    pub retries: u32,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchSummary {
    pub succeeded: u64,
    pub failed: u64,
    pub elapsed: Duration,
}

/// Sends every request of `input` and writes the answers to `output`.
pub(crate) async fn run_batch(
    client: &InferenceClient,
    options: &BatchOptions<'_>,
    input: &Path,
    output: &mut dyn Write,
) -> anyhow::Result<BatchSummary> {
    let started = Instant::now();
    let total = std::io::BufReader::new(open(input)?)
        .lines()
        .filter(|line| !line.as_ref().is_ok_and(|line| line.trim().is_empty()))
        .count() as u64;
    let progress = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} requests, {per_sec}, {msg} [{elapsed_precise}, {eta} left]",
        )
        .expect("a valid progress template"),
    );
    // `batch_index` counts the input's lines, blank ones included (they are skipped).
    let lines = std::io::BufReader::new(open(input)?)
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.as_ref().is_ok_and(|line| line.trim().is_empty()));
    let mut answers = futures_util::stream::iter(lines)
        .map(|(index, line)| async move {
            let answer = match line {
                Ok(line) => answer_line(client, options, index as u64, &line).await,
                Err(error) => Err(error_line(index as u64, "read error", &error.to_string())),
            };
            (index, answer)
        })
        .buffered(options.workers.max(1));
    let (mut succeeded, mut failed) = (0, 0);
    while let Some((_, answer)) = answers.next().await {
        let line = match answer {
            Ok(line) => {
                succeeded += 1;
                line
            }
            Err(line) => {
                failed += 1;
                progress.set_message(format!("{failed} failed"));
                line
            }
        };
        output
            .write_all(line.as_bytes())
            .and_then(|()| output.write_all(b"\n"))
            .context("cannot write the results")?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    output.flush().context("cannot write the results")?;
    Ok(BatchSummary {
        succeeded,
        failed,
        elapsed: started.elapsed(),
    })
}

fn open(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Sends one line's request; the output line either way.
async fn answer_line(
    client: &InferenceClient,
    options: &BatchOptions<'_>,
    index: u64,
    line: &str,
) -> Result<String, String> {
    let request = decode_request(line.as_bytes(), &[], MAX_ELEMENTS)
        .map_err(|error| error_line(index, "preprocessing error", &error.to_string()))?;
    let mut response = with_retries(options.retries, || {
        client.infer(options.model, options.version, request.clone())
    })
    .await
    .map_err(|error| error_line(index, "inference error", &error.message))?;
    let inference_id = response.id.clone();
    response
        .parameters
        .retain(|(name, _)| name != "batch_index" && name != "inference_id");
    response
        .parameters
        .push(("batch_index".into(), ParameterValue::Int64(index as i64)));
    if let Some(id) = inference_id {
        response
            .parameters
            .push(("inference_id".into(), ParameterValue::String(id)));
    }
    Ok(response_json(&response))
}

/// MLServer's line for a request that failed.
fn error_line(index: u64, status: &str, message: &str) -> String {
    serde_json::json!({
        "parameters": {"batch_index": index},
        "error": {"status": status, "msg": message},
    })
    .to_string()
}

/// Runs `call` until it succeeds, fails for good, or `retries` more attempts failed; waits
/// 100 ms, 200 ms, 400 ms, ... (at most 5 s) between attempts.
pub(crate) async fn with_retries<T, F, Fut>(retries: u32, mut call: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RequestError>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(error) if error.retryable && attempt < retries => {
                let wait = Duration::from_millis(100 << attempt.min(6)).min(Duration::from_secs(5));
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn retries_only_what_may_succeed_later() {
        let calls = AtomicU32::new(0);
        let flaky = || async {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            if call < 2 {
                Err(RequestError {
                    message: "503".into(),
                    retryable: true,
                })
            } else {
                Ok(call)
            }
        };
        assert_eq!(with_retries(3, flaky).await.unwrap(), 2);
        calls.store(0, Ordering::SeqCst);
        assert!(with_retries(1, flaky).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let bad_input = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(5, || async {
            bad_input.fetch_add(1, Ordering::SeqCst);
            Err(RequestError {
                message: "400".into(),
                retryable: false,
            })
        })
        .await;
        assert!(result.is_err());
        assert_eq!(bad_input.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn failures_are_written_as_mlserver_writes_them() {
        let line: serde_json::Value =
            serde_json::from_str(&error_line(4, "inference error", "boom")).unwrap();
        assert_eq!(line["parameters"]["batch_index"], 4);
        assert_eq!(line["error"]["msg"], "boom");
    }
}
