//! The local cache of models fetched from object storage, content-addressed:
//!
//! - `blobs/<sha256>`: each object's bytes, named by their SHA-256; written to `tmp/` and
//!   renamed into place once whole and checked, so a blob is never partial;
//! - `uris/<sha256 of the uri>.json`: what the last fetch of a uri found (each object's name,
//!   size, ETag, version and blob), so that an object that has not changed is not downloaded
//!   again;
//! - `views/<sha256 of its files>/`: the folder a runtime sees at `/model`, the blobs linked
//!   (hard links; copies where the file system has none) under the objects' names, made in
//!   `tmp/` and renamed into place whole.

use super::StorageError;
use crate::wasm::hex;
use object_store::ObjectMeta;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The cache's folder.
pub(super) struct Cache {
    dir: PathBuf,
}

/// What a fetch of a uri found: its objects, each with the blob holding its bytes.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Record {
    pub uri: String,
    pub objects: Vec<Entry>,
}

/// One object of a [`Record`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct Entry {
    /// The object's name in the folder the runtime sees (`/` between folders).
    pub name: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub version: Option<String>,
    pub last_modified: String,
    /// The SHA-256 of its bytes: the blob's name.
    pub sha256: String,
}

impl Entry {
    /// Whether the store's `meta` describes the object this entry was made from.
    pub(super) fn matches(&self, name: &str, meta: &ObjectMeta) -> bool {
        self.name == name
            && self.size == meta.size
            && self.version == meta.version
            && match (&self.e_tag, &meta.e_tag) {
                (Some(ours), Some(theirs)) => ours == theirs,
                _ => self.last_modified == meta.last_modified.to_rfc3339(),
            }
    }
}

/// Whether `name` (`/` between folders) can be a file's path inside a view on every platform:
/// no empty part, no `.` or `..`, no `\`, `:` or NUL.
pub(super) fn is_file_path(name: &str) -> bool {
    name.split('/').all(|part| {
        !(part.is_empty() || part == "." || part == ".." || part.contains(['\\', ':', '\0']))
    })
}

impl Cache {
    /// Opens the cache in `dir`, creating it (owner-only on Unix); refused when others may
    /// write to it, since what it holds is served as the models.
    pub(super) fn open(dir: &Path) -> Result<Cache, StorageError> {
        let cache = Cache {
            dir: dir.to_path_buf(),
        };
        for part in ["blobs", "uris", "views", "tmp"] {
            crate::wasm::create_private_dir(&dir.join(part)).map_err(|e| cache.error(e))?;
        }
        if let Some(problem) = crate::wasm::unsafe_permissions(dir) {
            return Err(cache.error(std::io::Error::other(problem)));
        }
        Ok(cache)
    }

    /// An I/O error of the cache, naming its folder.
    pub(super) fn error(&self, source: std::io::Error) -> StorageError {
        StorageError::Cache {
            dir: self.dir.clone(),
            source,
        }
    }

    /// The blob of content `sha256`, if the cache holds it (of `size` bytes, when given).
    pub(super) fn blob(&self, sha256: &str, size: Option<u64>) -> Option<PathBuf> {
        let path = self.dir.join("blobs").join(sha256);
        let found = std::fs::metadata(&path).ok()?;
        (found.is_file() && size.is_none_or(|size| found.len() == size)).then_some(path)
    }

    /// A new temporary file in the cache, deleted unless it becomes a blob.
    pub(super) fn temp_file(&self) -> Result<tempfile::NamedTempFile, StorageError> {
        tempfile::NamedTempFile::new_in(self.dir.join("tmp")).map_err(|e| self.error(e))
    }

    /// Makes `file` (whole, its SHA-256 checked) the blob of content `sha256`.
    pub(super) fn store_blob(
        &self,
        file: tempfile::NamedTempFile,
        sha256: &str,
    ) -> Result<(), StorageError> {
        file.as_file().sync_all().map_err(|e| self.error(e))?;
        let target = self.dir.join("blobs").join(sha256);
        match file.persist(&target) {
            Ok(_) => Ok(()),
            // Another load stored the same content meanwhile (Windows refuses to replace a
            // file that is open).
            Err(_) if target.is_file() => Ok(()),
            Err(error) => Err(self.error(error.error)),
        }
    }

    fn record_path(&self, uri: &str) -> PathBuf {
        let key = hex(&Sha256::digest(uri.as_bytes()));
        self.dir.join("uris").join(format!("{key}.json"))
    }

    /// What the last fetch of `uri` found (an unreadable record is none).
    pub(super) fn record(&self, uri: &str) -> Record {
        std::fs::read(self.record_path(uri))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
            .filter(|record| record.uri == uri)
            .unwrap_or_default()
    }

    /// Replaces the record of `record.uri`, atomically.
    pub(super) fn save_record(&self, record: &Record) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec_pretty(record).map_err(std::io::Error::other);
        let mut file = self.temp_file()?;
        bytes
            .and_then(|bytes| file.write_all(&bytes))
            .map_err(|e| self.error(e))?;
        file.persist(self.record_path(&record.uri))
            .map_err(|error| self.error(error.error))?;
        Ok(())
    }

    /// The folder holding `files` (name, blob) and nothing else, made once per set of files.
    pub(super) fn view(&self, files: &[(String, String)]) -> Result<PathBuf, StorageError> {
        let mut sorted = files.to_vec();
        sorted.sort();
        let mut key = Sha256::new();
        for (name, sha256) in &sorted {
            key.update(format!("{name}\0{sha256}\n"));
        }
        let target = self.dir.join("views").join(hex(&key.finalize()));
        if target.is_dir() {
            return Ok(target);
        }
        let staging = tempfile::tempdir_in(self.dir.join("tmp")).map_err(|e| self.error(e))?;
        for (name, sha256) in &sorted {
            let blob = self.blob(sha256, None).ok_or_else(|| {
                self.error(std::io::Error::other(format!("blob {sha256} is gone")))
            })?;
            let file = staging.path().join(name);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).map_err(|e| self.error(e))?;
            }
            std::fs::hard_link(&blob, &file)
                .or_else(|_| std::fs::copy(&blob, &file).map(|_| ()))
                .map_err(|e| self.error(e))?;
        }
        let staged = staging.keep();
        match std::fs::rename(&staged, &target) {
            Ok(()) => Ok(target),
            // Another load made the same view meanwhile.
            Err(_) if target.is_dir() => {
                let _ = std::fs::remove_dir_all(&staged);
                Ok(target)
            }
            Err(error) => {
                let _ = std::fs::remove_dir_all(&staged);
                Err(self.error(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(cache: &Cache, bytes: &[u8]) -> String {
        let mut file = cache.temp_file().unwrap();
        file.write_all(bytes).unwrap();
        let sha256 = hex(&Sha256::digest(bytes));
        cache.store_blob(file, &sha256).unwrap();
        sha256
    }

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn blobs_are_named_by_content_and_temp_files_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("models")).unwrap();
        let sha256 = stored(&cache, b"weights");
        assert_eq!(
            sha256,
            "9a129038d9a00aed0cf6a7ea059ca50a813449061ab87848cf1a13eafdf33b2c"
        );
        let blob = cache.blob(&sha256, Some(7)).unwrap();
        assert_eq!(std::fs::read(blob).unwrap(), b"weights");
        assert!(cache.blob(&sha256, Some(8)).is_none());
        // The same content twice is one blob; a temporary file dropped leaves nothing.
        assert_eq!(stored(&cache, b"weights"), sha256);
        drop(cache.temp_file().unwrap());
        assert_eq!(entries(&dir.path().join("models/blobs")), 1);
        assert_eq!(entries(&dir.path().join("models/tmp")), 0);
    }

    #[test]
    fn a_view_holds_its_files_under_their_names_and_is_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let (a, b) = (stored(&cache, b"a"), stored(&cache, b"b"));
        let files = vec![
            ("m.json".to_string(), a.clone()),
            ("sub/w.bin".to_string(), b),
        ];
        let view = cache.view(&files).unwrap();
        assert_eq!(std::fs::read(view.join("m.json")).unwrap(), b"a");
        assert_eq!(std::fs::read(view.join("sub/w.bin")).unwrap(), b"b");
        let reversed: Vec<_> = files.iter().rev().cloned().collect();
        assert_eq!(cache.view(&reversed).unwrap(), view);
        assert_ne!(cache.view(&[("m.json".to_string(), a)]).unwrap(), view);
        assert_eq!(entries(&dir.path().join("tmp")), 0);
    }

    #[test]
    fn an_entry_matches_the_same_object_by_etag_else_by_date() {
        let meta = |size, e_tag: Option<&str>| ObjectMeta {
            location: "m/m.json".into(),
            last_modified: Default::default(),
            size,
            e_tag: e_tag.map(str::to_string),
            version: None,
        };
        let entry = Entry {
            name: "m.json".into(),
            size: 3,
            e_tag: Some("a".into()),
            version: None,
            last_modified: meta(3, None).last_modified.to_rfc3339(),
            sha256: "00".into(),
        };
        assert!(entry.matches("m.json", &meta(3, Some("a"))));
        assert!(!entry.matches("m.json", &meta(3, Some("b"))));
        assert!(!entry.matches("m.json", &meta(4, Some("a"))));
        assert!(!entry.matches("other.json", &meta(3, Some("a"))));
        // No ETag (a web server without one): the date decides.
        assert!(entry.matches("m.json", &meta(3, None)));
    }

    #[test]
    fn records_round_trip_per_uri() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let entry = Entry {
            name: "m.json".into(),
            size: 1,
            e_tag: Some("\"x\"".into()),
            version: None,
            last_modified: "2026-12-05T00:00:00+00:00".into(),
            sha256: "00".into(),
        };
        let record = Record {
            uri: "s3://b/m.json".into(),
            objects: vec![entry.clone()],
        };
        cache.save_record(&record).unwrap();
        assert_eq!(cache.record("s3://b/m.json").objects, vec![entry]);
        assert!(cache.record("s3://b/other.json").objects.is_empty());
    }
}
