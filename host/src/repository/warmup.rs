//! Warm-up: the requests of a model folder's `warmup.json` run through a freshly loaded model
//! version before it is reported ready (and before a reload swaps it in), as Triton's
//! `model_warmup` does; one that fails fails the load, with its reason.
//!
//! `warmup.json` is a list whose entries are V2 inference request bodies (run once each), or
//! `{"request": {...}, "count": N}` (run N times, 1 to [`MAX_COUNT`]). The requests run as a
//! client's would — content types, checks, the model's deadline, its batcher and workers — but
//! count in no request statistics: only the runs show, in `execution_count` and `batch_stats`.
//!
//! The repository cannot run a request itself (the inference core sits above it): the core
//! gives it a [`WarmUpCall`] at start-up ([`set_warm_up`]).

use super::LoadedModel;
use crate::codec::InferenceRequest;
use crate::codec::json::decode_request;
use futures_util::future::BoxFuture;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The warm-up file's name, in the model version's folder (beside its model-settings.json).
pub(crate) const WARMUP_FILE: &str = "warmup.json";

/// The most runs of one warm-up request.
pub(crate) const MAX_COUNT: u64 = 10_000;

/// A failure of the runtime or of the request's checks.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Runs one request through a model as the inference core runs a client's.
pub(crate) type WarmUpCall = Arc<
    dyn Fn(Arc<LoadedModel>, InferenceRequest) -> BoxFuture<'static, Result<(), BoxError>>
        + Send
        + Sync,
>;

/// How warm-up requests are run, set once by the server at start-up.
static WARM_UP: OnceLock<WarmUpCall> = OnceLock::new();

/// Sets how warm-up requests are run (the first call wins).
pub(crate) fn set_warm_up(call: WarmUpCall) {
    let _ = WARM_UP.set(call);
}

/// Why a warm-up failed.
#[derive(Debug, thiserror::Error)]
pub enum WarmUpError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than a request body may be.
    #[error("{}: {size} bytes, over the {limit} bytes a request body may have", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    /// The file is not a list of requests.
    #[error("{}: not a list of inference requests: {source}", path.display())]
    Syntax {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// An entry's `count` is not a number of runs.
    #[error("{}: entry {index}: `count` must be a whole number from 1 to {MAX_COUNT}", path.display())]
    Count { path: PathBuf, index: usize },
    /// An entry is not an inference request.
    #[error("{}: entry {index}: {source}", path.display())]
    Decode {
        path: PathBuf,
        index: usize,
        #[source]
        source: BoxError,
    },
    /// A request failed.
    #[error("warm-up request {index} of {} failed (run {run} of {count}): {source}", path.display())]
    Failed {
        path: PathBuf,
        index: usize,
        run: u64,
        count: u64,
        #[source]
        source: BoxError,
    },
    /// The server cannot run warm-up requests (never the case in `mlhost serve`).
    #[error("{}: warm-up requests cannot run here", path.display())]
    Unavailable { path: PathBuf },
}

/// One entry of the file: a request and how many times it runs.
struct WarmUpRequest {
    request: InferenceRequest,
    count: u64,
}

/// Runs the warm-up requests of `folder`'s `warmup.json`, if it has one, through `model`.
pub(super) async fn warm_up(
    model: &Arc<LoadedModel>,
    folder: &Path,
    max_body_bytes: u64,
    max_elements: u64,
) -> Result<(), WarmUpError> {
    let path = folder.join(WARMUP_FILE);
    let read = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || read(&path, max_body_bytes, max_elements)).await
    };
    let requests = match read {
        Ok(result) => result?,
        Err(joined) => {
            return Err(WarmUpError::Read {
                path,
                source: std::io::Error::other(joined),
            });
        }
    };
    if requests.is_empty() {
        return Ok(());
    }
    let call = WARM_UP
        .get()
        .ok_or_else(|| WarmUpError::Unavailable { path: path.clone() })?;
    let runs: u64 = requests.iter().map(|entry| entry.count).sum();
    tracing::info!(model = %model.name, version = ?model.version, runs, "warming up");
    for (index, entry) in requests.into_iter().enumerate() {
        for run in 1..=entry.count {
            let request = entry.request.clone();
            call(model.clone(), request)
                .await
                .map_err(|source| WarmUpError::Failed {
                    path: path.clone(),
                    index: index + 1,
                    run,
                    count: entry.count,
                    source,
                })?;
        }
    }
    Ok(())
}

/// The requests of the warm-up file at `path`; none when there is no such file.
fn read(
    path: &Path,
    max_body_bytes: u64,
    max_elements: u64,
) -> Result<Vec<WarmUpRequest>, WarmUpError> {
    let read_error = |source| WarmUpError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = match std::fs::metadata(path) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(read_error(error)),
    };
    if size > max_body_bytes {
        return Err(WarmUpError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: max_body_bytes,
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    let entries: Vec<Value> =
        serde_json::from_slice(&bytes).map_err(|source| WarmUpError::Syntax {
            path: path.to_path_buf(),
            source,
        })?;
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| parse_entry(path, index + 1, entry, max_elements))
        .collect()
}

/// One entry: a request body, or `{"request": body, "count": N}`.
fn parse_entry(
    path: &Path,
    index: usize,
    entry: Value,
    max_elements: u64,
) -> Result<WarmUpRequest, WarmUpError> {
    let (body, count) = match entry {
        Value::Object(mut fields) if fields.contains_key("request") => {
            let count = match fields.get("count") {
                None => Some(1),
                Some(count) => count
                    .as_u64()
                    .filter(|count| (1..=MAX_COUNT).contains(count)),
            };
            let count = count.ok_or_else(|| WarmUpError::Count {
                path: path.to_path_buf(),
                index,
            })?;
            (fields.remove("request").unwrap_or_default(), count)
        }
        body => (body, 1),
    };
    let json = serde_json::to_vec(&body).expect("a JSON value serializes");
    let request =
        decode_request(&json, &[], max_elements).map_err(|source| WarmUpError::Decode {
            path: path.to_path_buf(),
            index,
            source: Box::new(source),
        })?;
    Ok(WarmUpRequest { request, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<Vec<WarmUpRequest>, WarmUpError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WARMUP_FILE);
        std::fs::write(&path, text).unwrap();
        read(&path, 1 << 20, 1 << 20)
    }

    const BODY: &str =
        r#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}]}"#;

    #[test]
    fn reads_requests_and_counts() {
        let requests =
            read_text(&format!(r#"[{BODY}, {{"request": {BODY}, "count": 3}}]"#)).unwrap();
        let counts: Vec<u64> = requests.iter().map(|entry| entry.count).collect();
        assert_eq!(counts, [1, 3]);
        assert_eq!(requests[1].request.inputs[0].name, "x");
        let none = read(Path::new("/nonexistent/warmup.json"), 1 << 20, 1 << 20).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn refuses_what_is_not_a_list_of_requests() {
        let error = read_text("{}").err().unwrap().to_string();
        assert!(
            error.contains("not a list of inference requests"),
            "{error}"
        );
        let error = read_text(&format!(r#"[{{"request": {BODY}, "count": 0}}]"#))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("entry 1: `count`"), "{error}");
        let error = read_text(r#"[{"inputs": 3}]"#).err().unwrap().to_string();
        assert!(error.contains("entry 1:"), "{error}");
    }
}
