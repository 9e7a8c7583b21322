//! Why a model could not be fetched from object storage.

/// Why a remote `parameters.uri` could not be made into local files; every message names the uri.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The uri is not a URL mlhost can read.
    #[error("invalid uri {uri}: {reason}")]
    BadUri { uri: String, reason: String },
    /// The uri's scheme is none of those mlhost fetches.
    #[error(
        "invalid uri {uri}: mlhost fetches models from {}, not {scheme}://",
        super::SCHEMES
    )]
    UnsupportedScheme { uri: String, scheme: String },
    /// The store's client cannot be set up (credentials, region, endpoint...).
    #[error("cannot reach {uri}: {source}")]
    Client {
        uri: String,
        #[source]
        source: object_store::Error,
    },
    /// Listing or reading the object(s) failed.
    #[error("cannot fetch {uri}: {source}")]
    Fetch {
        uri: String,
        #[source]
        source: object_store::Error,
    },
    /// Nothing is stored at the uri.
    #[error("cannot fetch {uri}: no object or folder is there")]
    NotFound { uri: String },
    /// The objects are larger than `max_model_download_mb` allows.
    #[error(
        "cannot fetch {uri}: {bytes} bytes is over the download limit of {limit} bytes \
         (max_model_download_mb)"
    )]
    TooLarge { uri: String, bytes: u64, limit: u64 },
    /// The store sent fewer or more bytes than the object holds.
    #[error(
        "cannot fetch {uri}: the download of {object} was cut short or overran: {received} bytes \
         received, the object holds {expected}; nothing was cached"
    )]
    Truncated {
        uri: String,
        object: String,
        received: u64,
        expected: u64,
    },
    /// The bytes received are not those of the object.
    #[error("cannot fetch {uri}: checksum mismatch for {object}: {detail}; nothing was cached")]
    Checksum {
        uri: String,
        object: String,
        detail: String,
    },
    /// `parameters.uri_sha256` cannot be used with this uri.
    #[error("model-settings.json: field `parameters.uri_sha256`: {0}")]
    Sha256Setting(String),
    /// The local cache cannot be written or read.
    #[error("model cache {}: {source}", dir.display())]
    Cache {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}
