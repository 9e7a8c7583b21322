//! Where a remote uri points: the store (S3, GCS, Azure Blob Storage or a web server), its
//! credentials read from the provider's standard environment, and the object or folder in it.

use super::StorageError;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// A remote uri, resolved to its store.
pub(super) struct Location {
    /// The uri as written in model-settings.json.
    pub uri: String,
    pub store: Arc<dyn ObjectStore>,
    /// The object, or the folder (prefix), in the store.
    pub path: Path,
    /// The uri ends with `/`: a folder, never a single object.
    pub folder: bool,
    /// A store whose single-part ETags are the MD5 of the object (S3).
    pub md5_etags: bool,
    /// A plain web server: no folder listing.
    pub web: bool,
}

/// A request that stalls this long (no byte received) fails; a download as a whole has no time
/// limit (object_store's default, 30 s, would cut off any large model).
const READ_TIMEOUT: &str = "60s";
const NO_TOTAL_TIMEOUT: &str = "24h";

/// Resolves `uri`: its scheme picks the store, whose credentials and endpoint come from the
/// provider's environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
pub(super) fn locate(uri: &str) -> Result<Location, StorageError> {
    install_crypto();
    let url = url::Url::parse(uri).map_err(|error| StorageError::BadUri {
        uri: uri.to_string(),
        reason: error.to_string(),
    })?;
    let client = |source| StorageError::Client {
        uri: uri.to_string(),
        source,
    };
    if url.host_str().is_none_or(str::is_empty) {
        return Err(StorageError::BadUri {
            uri: uri.to_string(),
            reason: "it names no bucket, container or host".to_string(),
        });
    }
    let scheme = url.scheme();
    let store: Arc<dyn ObjectStore> = match scheme {
        "s3" | "s3a" => Arc::new(aws(uri).build().map_err(client)?),
        "gs" => Arc::new(gcp(uri).build().map_err(client)?),
        "az" | "azure" | "abfs" | "abfss" => Arc::new(azure(uri).build().map_err(client)?),
        "http" | "https" => Arc::new(web(&url).build().map_err(client)?),
        _ => {
            return Err(StorageError::UnsupportedScheme {
                uri: uri.to_string(),
                scheme: scheme.to_string(),
            });
        }
    };
    let path = Path::from_url_path(url.path()).map_err(|error| StorageError::BadUri {
        uri: uri.to_string(),
        reason: error.to_string(),
    })?;
    Ok(Location {
        uri: uri.to_string(),
        store,
        path,
        folder: url.path().ends_with('/'),
        md5_etags: matches!(scheme, "s3" | "s3a"),
        web: matches!(scheme, "http" | "https"),
    })
}

/// Installs rustls's crypto for every client (reqwest's TLS is built without one): ring, which
/// builds for every platform without cmake or a C toolchain of the target's beyond a compiler.
/// rustls deprecates it for its lack of post-quantum key exchange; X25519 and the NIST curves
/// are what object stores offer.
#[allow(deprecated)]
fn install_crypto() {
    // Another part of the process may have installed one: it is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Retries of a failed request: a few, soon (a load waits for them).
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 3,
        retry_timeout: Duration::from_secs(60),
    }
}

/// S3 (and S3-compatible stores: `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`), as the AWS SDKs read
/// their environment: keys, session token, region, web identity (IRSA), container and instance
/// credentials.
fn aws(uri: &str) -> AmazonS3Builder {
    AmazonS3Builder::from_env()
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
            NO_TOTAL_TIMEOUT,
        )
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ReadTimeout),
            READ_TIMEOUT,
        )
        .with_retry(retry())
        .with_url(uri)
}

/// Google Cloud Storage: `GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT*`, the
/// application default credentials, else the metadata server.
fn gcp(uri: &str) -> GoogleCloudStorageBuilder {
    GoogleCloudStorageBuilder::from_env()
        .with_config(
            GoogleConfigKey::Client(ClientConfigKey::Timeout),
            NO_TOTAL_TIMEOUT,
        )
        .with_config(
            GoogleConfigKey::Client(ClientConfigKey::ReadTimeout),
            READ_TIMEOUT,
        )
        .with_retry(retry())
        .with_url(uri)
}

/// Azure Blob Storage: `AZURE_STORAGE_ACCOUNT_NAME` with a key, SAS token, client secret,
/// workload identity (`AZURE_FEDERATED_TOKEN_FILE`) or managed identity.
fn azure(uri: &str) -> MicrosoftAzureBuilder {
    MicrosoftAzureBuilder::from_env()
        .with_config(
            AzureConfigKey::Client(ClientConfigKey::Timeout),
            NO_TOTAL_TIMEOUT,
        )
        .with_config(
            AzureConfigKey::Client(ClientConfigKey::ReadTimeout),
            READ_TIMEOUT,
        )
        .with_retry(retry())
        .with_url(uri)
}

/// A web server: the uri's origin, over HTTPS with the system's roots (or `http://`).
fn web(url: &url::Url) -> HttpBuilder {
    HttpBuilder::new()
        .with_url(url.origin().ascii_serialization())
        .with_config(ClientConfigKey::Timeout, NO_TOTAL_TIMEOUT)
        .with_config(ClientConfigKey::ReadTimeout, READ_TIMEOUT)
        .with_config(
            ClientConfigKey::AllowHttp,
            (url.scheme() == "http").to_string(),
        )
        .with_retry(retry())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(uri: &str) -> String {
        match locate(uri) {
            Ok(_) => panic!("{uri} was accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn schemes_pick_the_store_and_others_are_refused() {
        let web = locate("http://127.0.0.1:9/models/iris/model.json").unwrap();
        assert_eq!(web.path.as_ref(), "models/iris/model.json");
        assert!(web.web && !web.folder && !web.md5_etags);
        let s3 = locate("s3://bucket/models/iris/").unwrap();
        assert_eq!(s3.path.as_ref(), "models/iris");
        assert!(s3.folder && s3.md5_etags && !s3.web);

        let gcs = locate("gs://bucket/models/m.onnx").unwrap();
        assert_eq!(gcs.path.as_ref(), "models/m.onnx");
        assert!(!gcs.folder && !gcs.md5_etags && !gcs.web);

        let error = refusal("ftp://host/model.json");
        assert!(error.contains("not ftp://"), "{error}");
        assert!(error.contains("s3://"), "{error}");
        let error = refusal("s3:///model.json");
        assert!(error.contains("invalid uri s3:///model.json"), "{error}");
    }
}
