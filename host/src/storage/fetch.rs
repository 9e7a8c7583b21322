//! Fetching a remote uri's objects into the cache: what is there (one object, or every object
//! below a folder), then each object that the cache does not hold yet, streamed to a temporary
//! file and checked (size, SHA-256, S3's MD5 ETag) before it becomes a blob.

use super::cache::{Cache, Entry, Record};
use super::location::Location;
use super::pin::Pin;
use super::{Fetched, StorageError};
use crate::wasm::hex;
use futures_util::StreamExt;
use md5::{Digest as _, Md5};
use object_store::{ObjectMeta, ObjectStoreExt};
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::time::{Duration, Instant};

/// How often a download in progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Fetches `location` into `cache` (at most `limit` bytes), its files checked against `pin`
/// when given: content pinned and already cached is used without asking the store.
pub(super) async fn fetch(
    location: &Location,
    pin: Option<&Pin>,
    cache: &Cache,
    limit: u64,
) -> Result<Fetched, StorageError> {
    if let Some(fetched) = pinned_in_cache(location, pin, cache)? {
        return Ok(fetched);
    }
    let (objects, single) = list(location).await?;
    if let Some(pin) = pin {
        let names = objects.iter().map(|(name, _)| name.as_str());
        pin.check_listing(&location.uri, single, names)?;
    }
    let total: u64 = objects.iter().map(|(_, meta)| meta.size).sum();
    if total > limit {
        return Err(StorageError::TooLarge {
            uri: location.uri.clone(),
            bytes: total,
            limit,
        });
    }
    let started = Instant::now();
    let (entries, downloaded) = fetch_objects(location, objects, pin, cache).await?;
    let files: Vec<(String, String)> = entries
        .iter()
        .map(|entry| (entry.name.clone(), entry.sha256.clone()))
        .collect();
    let dir = cache.view(&files)?;
    cache.save_record(&Record {
        uri: location.uri.clone(),
        objects: entries,
    })?;
    tracing::info!(
        uri = %location.uri,
        files = files.len(),
        bytes = total,
        downloaded_bytes = downloaded,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "model files ready"
    );
    let file = single.then(|| files[0].0.clone());
    Ok(Fetched { dir, file })
}

/// The folder of the pinned files, if the cache holds every one of them.
fn pinned_in_cache(
    location: &Location,
    pin: Option<&Pin>,
    cache: &Cache,
) -> Result<Option<Fetched>, StorageError> {
    let (files, file) = match pin {
        None => return Ok(None),
        Some(Pin::Object(_)) if location.folder => {
            // A uri written as a folder is one: the listing says what is wrong.
            return Ok(None);
        }
        Some(Pin::Object(digest)) => match location.path.filename() {
            Some(name) => (vec![(name.to_string(), digest.clone())], Some(name)),
            None => return Ok(None),
        },
        Some(Pin::Files(files)) => (files.clone().into_iter().collect(), None),
    };
    if files
        .iter()
        .any(|(_, digest)| cache.blob(digest, None).is_none())
    {
        return Ok(None);
    }
    tracing::info!(uri = %location.uri, "model files found in the cache by their SHA-256");
    let dir = cache.view(&files)?;
    Ok(Some(Fetched {
        dir,
        file: file.map(str::to_string),
    }))
}

/// Each object's entry: from the record of the uri's last fetch when the object has not
/// changed (and its blob is there), else downloaded; and the bytes downloaded.
async fn fetch_objects(
    location: &Location,
    objects: Vec<(String, ObjectMeta)>,
    pin: Option<&Pin>,
    cache: &Cache,
) -> Result<(Vec<Entry>, u64), StorageError> {
    let record = cache.record(&location.uri);
    let mut entries = Vec::with_capacity(objects.len());
    let mut downloaded = 0u64;
    for (name, meta) in objects {
        let pinned = pin.and_then(|pin| pin.of(&name));
        let cached = record
            .objects
            .iter()
            .find(|entry| entry.matches(&name, &meta))
            .filter(|entry| pinned.is_none_or(|pinned| pinned == entry.sha256))
            .filter(|entry| cache.blob(&entry.sha256, Some(meta.size)).is_some());
        let sha256 = match cached {
            Some(entry) => entry.sha256.clone(),
            None => {
                downloaded += meta.size;
                download(location, &name, &meta, pinned, cache).await?
            }
        };
        entries.push(Entry {
            sha256,
            size: meta.size,
            e_tag: meta.e_tag,
            version: meta.version,
            last_modified: meta.last_modified.to_rfc3339(),
            name,
        });
    }
    Ok((entries, downloaded))
}

/// The objects of `location`, each with its name in the runtime's folder, and whether the uri
/// names one object (else a folder: every object below it).
async fn list(location: &Location) -> Result<(Vec<(String, ObjectMeta)>, bool), StorageError> {
    let failed = |source| StorageError::Fetch {
        uri: location.uri.clone(),
        source,
    };
    if !location.folder {
        match location.store.head(&location.path).await {
            Ok(meta) => {
                let name = location.path.filename().unwrap_or("model").to_string();
                return Ok((vec![(name, meta)], true));
            }
            // A web server lists no folders.
            Err(object_store::Error::NotFound { .. }) if location.web => {
                return Err(StorageError::NotFound {
                    uri: location.uri.clone(),
                });
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(failed(error)),
        }
    }
    if location.web {
        return Err(StorageError::BadUri {
            uri: location.uri.clone(),
            reason: "a folder over http(s) cannot be listed: name a file".to_string(),
        });
    }
    let mut objects = Vec::new();
    let mut listing = location.store.list(Some(&location.path));
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(failed)?;
        let Some(name) = relative_name(&location.path, &meta.location) else {
            continue;
        };
        objects.push((checked_name(location, name)?, meta));
    }
    if objects.is_empty() {
        return Err(StorageError::NotFound {
            uri: location.uri.clone(),
        });
    }
    objects.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((objects, false))
}

/// `object`'s path below `folder`, `/` between its parts (none for the folder itself).
fn relative_name(
    folder: &object_store::path::Path,
    object: &object_store::path::Path,
) -> Option<String> {
    let parts: Vec<String> = object
        .prefix_match(folder)?
        .map(|part| part.as_ref().to_string())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// `name` if it can be a file's path in the runtime's folder on every platform.
fn checked_name(location: &Location, name: String) -> Result<String, StorageError> {
    if !super::cache::is_file_path(&name) {
        return Err(StorageError::BadUri {
            uri: location.uri.clone(),
            reason: format!("the object {name} has a name that cannot be a file's"),
        });
    }
    Ok(name)
}

/// Downloads one object to a temporary file, checks it, and makes it a blob; its SHA-256.
async fn download(
    location: &Location,
    name: &str,
    meta: &ObjectMeta,
    pinned: Option<&str>,
    cache: &Cache,
) -> Result<String, StorageError> {
    let failed = |source| StorageError::Fetch {
        uri: location.uri.clone(),
        source,
    };
    let truncated = |received| StorageError::Truncated {
        uri: location.uri.clone(),
        object: name.to_string(),
        received,
        expected: meta.size,
    };
    let mut file = cache.temp_file()?;
    let mut stream = location
        .store
        .get(&meta.location)
        .await
        .map_err(failed)?
        .into_stream();
    let (mut sha256, mut md5) = (Sha256::new(), Md5::new());
    let mut progress = Progress::new(location, name, meta.size);
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| match error {
            // A body cut short by the server (a connection closed before its length).
            object_store::Error::Generic { .. } if received < meta.size => truncated(received),
            error => failed(error),
        })?;
        received += chunk.len() as u64;
        if received > meta.size {
            return Err(truncated(received));
        }
        sha256.update(&chunk);
        md5.update(&chunk);
        file.write_all(&chunk).map_err(|e| cache.error(e))?;
        progress.update(received);
    }
    if received != meta.size {
        return Err(truncated(received));
    }
    let sha256 = hex(&sha256.finalize());
    check(location, name, meta, pinned, &sha256, &hex(&md5.finalize()))?;
    cache.store_blob(file, &sha256)?;
    Ok(sha256)
}

/// Checks a download's digests: against `pinned` when given, else against an S3 ETag that is
/// an MD5 (a single-part upload's).
fn check(
    location: &Location,
    name: &str,
    meta: &ObjectMeta,
    pinned: Option<&str>,
    sha256: &str,
    md5: &str,
) -> Result<(), StorageError> {
    let mismatch = |detail| StorageError::Checksum {
        uri: location.uri.clone(),
        object: name.to_string(),
        detail,
    };
    if let Some(pinned) = pinned {
        if pinned != sha256 {
            return Err(mismatch(format!(
                "its SHA-256 is {sha256}, parameters.uri_sha256 says {pinned}"
            )));
        }
        return Ok(());
    }
    let etag = meta.e_tag.as_deref().map(|etag| etag.trim_matches('"'));
    if let Some(etag) = etag.filter(|etag| location.md5_etags && is_md5(etag))
        && !etag.eq_ignore_ascii_case(md5)
    {
        return Err(mismatch(format!(
            "its MD5 is {md5}, its ETag says {etag} (an object encrypted with SSE-KMS or SSE-C \
             has an ETag that is no MD5: give its SHA-256 as parameters.uri_sha256, which is \
             checked instead)"
        )));
    }
    Ok(())
}

/// Whether an ETag is an MD5 (32 hexadecimal digits; a multipart upload's has a `-N`).
fn is_md5(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Logs a download's progress every [`PROGRESS_EVERY`].
struct Progress<'a> {
    uri: &'a str,
    object: &'a str,
    size: u64,
    last: Instant,
}

impl<'a> Progress<'a> {
    fn new(location: &'a Location, object: &'a str, size: u64) -> Self {
        tracing::debug!(uri = %location.uri, object, bytes = size, "downloading");
        Progress {
            uri: &location.uri,
            object,
            size,
            last: Instant::now(),
        }
    }

    fn update(&mut self, received: u64) {
        if self.last.elapsed() >= PROGRESS_EVERY {
            self.last = Instant::now();
            const MIB: u64 = 1 << 20;
            tracing::info!(
                uri = %self.uri,
                object = %self.object,
                "downloading: {} of {} MiB ({}%)",
                received / MIB,
                self.size / MIB,
                received.saturating_mul(100) / self.size.max(1)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_below_the_folder_and_md5_etags() {
        let folder = object_store::path::Path::from("models/iris");
        let object = object_store::path::Path::from("models/iris/sub/w.json");
        assert_eq!(relative_name(&folder, &object).unwrap(), "sub/w.json");
        assert_eq!(relative_name(&folder, &folder), None);
        let other = object_store::path::Path::from("models/irises/w.json");
        assert_eq!(relative_name(&folder, &other), None);
        assert!(is_md5("9a0364b9e99bb480dd25e1f0284c8555"));
        assert!(!is_md5("9a0364b9e99bb480dd25e1f0284c8555-2"));
        assert!(!is_md5("0x8D9F"));
    }
}
