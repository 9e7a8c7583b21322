//! Models from object storage: a `parameters.uri` of `s3://`, `gs://`, `az://`, `http://` or
//! `https://` is fetched into a local, content-addressed cache before the model's runtime loads
//! it, and the runtime sees the fetched files as its folder (`/model`), read-only as any other.
//!
//! `location` turns the uri into a store (credentials from the provider's environment),
//! `fetch` lists and downloads what the cache lacks (checked, never a partial file), `cache`
//! keeps blobs, the record of each uri and the folders the runtimes see. Fetching is async
//! (object_store); a load, which runs on a blocking thread, waits for it with
//! [`fetch_blocking`].

mod cache;
mod error;
mod fetch;
mod location;
mod pin;

use crate::config::Settings;
pub(crate) use error::StorageError;
use std::path::PathBuf;

/// The schemes of the uris mlhost fetches, for messages.
pub(crate) const SCHEMES: &str = "s3://, gs://, az:// (abfs://), http:// and https://";

/// Where fetched models are cached, and how much one may download.
#[derive(Debug, Clone)]
pub(crate) struct StorageOptions {
    pub cache_dir: PathBuf,
    /// The most one model may download, in bytes (all its files).
    pub max_bytes: u64,
}

impl StorageOptions {
    /// The options of the server's settings (`model_cache_dir`, `max_model_download_mb`).
    pub(crate) fn of(settings: &Settings) -> Self {
        StorageOptions {
            cache_dir: settings
                .model_cache_dir
                .as_deref()
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| crate::wasm::platform_cache_dir().join("models")),
            max_bytes: settings.max_model_download_mb.saturating_mul(1 << 20),
        }
    }
}

/// A remote model's files on the local disk.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// The folder the runtime sees as `/model`: the fetched files and nothing else.
    pub dir: PathBuf,
    /// The file the uri names in that folder (`None`: the uri is the folder).
    pub file: Option<String>,
}

/// Whether `uri` is a URL (`scheme://...`) rather than a path of the model's folder.
pub(crate) fn is_remote(uri: &str) -> bool {
    uri.split_once("://").is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

/// Fetches `uri` into the cache, its files checked against `sha256` (`parameters.uri_sha256`)
/// when given, and returns the folder the runtime sees. Blocking: call it off the async threads.
pub(crate) fn fetch_blocking(
    uri: &str,
    sha256: Option<&serde_json::Value>,
    options: &StorageOptions,
) -> Result<Fetched, StorageError> {
    let pin = sha256.map(pin::Pin::parse).transpose()?;
    let fetch = async {
        let location = location::locate(uri)?;
        let cache = cache::Cache::open(&options.cache_dir)?;
        fetch::fetch(&location, pin.as_ref(), &cache, options.max_bytes).await
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(fetch),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| StorageError::Cache {
                dir: options.cache_dir.clone(),
                source,
            })?
            .block_on(fetch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_remote_and_paths_are_not() {
        for uri in [
            "s3://b/m.json",
            "gs://b/m/",
            "https://h/m.onnx",
            "ftp://h/m",
        ] {
            assert!(is_remote(uri), "{uri}");
        }
        for uri in [
            "./m.json",
            "m.json",
            "/abs/m",
            "C:\\models\\m.json",
            "a/://b",
        ] {
            assert!(!is_remote(uri), "{uri}");
        }
    }
}
