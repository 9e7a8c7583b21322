//! The on-disk cache of compiled components, so that a restart skips compilation.
//!
//! An entry is keyed by the SHA-256 of the component's bytes and of wasmtime's precompile
//! compatibility hash (engine version and settings): `KEY.cwasm` holds the artifact and
//! `KEY.sha256` its SHA-256. Files are written to a temporary file and renamed into place, in a
//! folder mlhost creates for itself (owner-only on Unix) and refuses to use when others may write
//! to it: the only artifacts ever deserialized are ones mlhost wrote.
//!
//! A hit costs little memory: the artifact's checksum is verified by streaming it, and the
//! artifact is memory-mapped (wasmtime deserializes from the file), so only the code that runs
//! is ever resident. The built-in runtimes' digests come from the build script, so their bytes
//! are not read either.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a component came from: the cache or the compiler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CacheOutcome {
    Hit,
    Compiled,
}

/// A folder of compiled components for one engine configuration.
#[derive(Debug, Clone)]
pub(crate) struct CompilationCache {
    dir: PathBuf,
}

impl CompilationCache {
    /// Opens (creating it if needed) the cache in `dir`; `None` when it cannot be used safely.
    pub(super) fn open(dir: &Path) -> Option<Self> {
        if let Err(error) = create_private_dir(dir) {
            tracing::warn!(dir = %dir.display(), "compilation cache disabled: cannot create it: {error}");
            return None;
        }
        if let Some(problem) = unsafe_permissions(dir) {
            tracing::warn!(dir = %dir.display(), "compilation cache disabled: {problem}");
            return None;
        }
        Some(CompilationCache {
            dir: dir.to_path_buf(),
        })
    }

    /// The platform's cache folder for mlhost: `$XDG_CACHE_HOME/mlhost/compiled` (or
    /// `~/.cache/...`) on Linux, `~/Library/Caches/mlhost/compiled` on macOS,
    /// `%LOCALAPPDATA%\mlhost\compiled` on Windows, else under the temporary folder.
    pub(crate) fn default_dir() -> PathBuf {
        platform_cache_dir().join("compiled")
    }

    /// The compiled form of `bytes`: from the cache when it holds a valid entry, else made by
    /// `compile` and stored.
    pub(super) fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        compile: impl FnOnce() -> wasmtime::Result<Component>,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let key = entry_key(engine, &content_digest(bytes));
        let artifact_path = self.dir.join(format!("{key}.cwasm"));
        let checksum_path = self.dir.join(format!("{key}.sha256"));
        if let Some(component) = mapped_entry(engine, &artifact_path, &checksum_path) {
            return Ok((component, CacheOutcome::Hit));
        }
        // Servers sharing the cache compile each component once: the first takes the entry's
        // lock, the others wait for it and then find the entry written.
        let _entry_lock = self.lock_entry(&key);
        if let Some(component) = mapped_entry(engine, &artifact_path, &checksum_path) {
            return Ok((component, CacheOutcome::Hit));
        }
        let component = compile()?;
        let stored = component
            .serialize()
            .map_err(|error| format!("cannot serialize a compiled component: {error:#}"))
            .and_then(|artifact| {
                store(&self.dir, &artifact_path, &checksum_path, &artifact)
                    .map_err(|error| format!("cannot write {}: {error}", artifact_path.display()))
            });
        if let Err(problem) = stored {
            tracing::warn!("compilation cache: {problem}");
            return Ok((component, CacheOutcome::Compiled));
        }
        // Serve from the stored file, as a restart would: mapped, only the code that runs is
        // resident, where the compiler's copy would stay in memory whole.
        let served = map_artifact(engine, &artifact_path).unwrap_or(component);
        Ok((served, CacheOutcome::Compiled))
    }

    /// Locks the entry `key` against other processes (a `KEY.lock` file, released when the
    /// returned file is dropped or the process ends), waiting while another holds it. `None`
    /// when the file system cannot lock: the entry is then compiled without waiting.
    fn lock_entry(&self, key: &str) -> Option<std::fs::File> {
        let path = self.dir.join(format!("{key}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .inspect_err(|error| {
                tracing::warn!(path = %path.display(), "compilation cache: cannot open a lock: {error}")
            })
            .ok()?;
        let locked = match file.try_lock() {
            Ok(()) => Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::info!(path = %path.display(), "another process is compiling this component; waiting for it");
                file.lock()
            }
            Err(std::fs::TryLockError::Error(error)) => Err(error),
        };
        locked
            .inspect_err(|error| {
                tracing::warn!(path = %path.display(), "compilation cache: cannot lock: {error}")
            })
            .ok()
            .map(|()| file)
    }
}

/// The entry's artifact, memory-mapped, when its checksum verifies and wasmtime accepts it.
fn mapped_entry(engine: &Engine, artifact_path: &Path, checksum_path: &Path) -> Option<Component> {
    if !verified(artifact_path, checksum_path) {
        return None;
    }
    map_artifact(engine, artifact_path)
        .inspect_err(|error| {
            tracing::warn!(path = %artifact_path.display(), "discarding a cached component: {error:#}")
        })
        .ok()
}

/// Maps an artifact that `store` wrote, advised so that only the code that runs is resident.
fn map_artifact(engine: &Engine, artifact_path: &Path) -> wasmtime::Result<Component> {
    // The checksum's read or the write left the file cached in large folios: mapped, each would
    // be resident whole around the first page used.
    super::residency::forget_cached_pages(artifact_path);
    // SAFETY: the artifact was written by `store` (in a folder only this user can write), for
    // this engine configuration, and is checked (its checksum, or just written): it is the
    // output of `Component::serialize` for these exact component bytes. Entries are replaced by
    // renaming, never written in place, so the mapped file does not change under us.
    let component = unsafe { Component::deserialize_file(engine, artifact_path) }?;
    super::residency::map_only_what_runs(&component, artifact_path);
    Ok(component)
}

/// The SHA-256 of a component's bytes: the build script's for a built-in runtime (its pages
/// then stay unread), else computed now.
fn content_digest(bytes: &[u8]) -> [u8; 32] {
    super::builtin::build_time_digest(bytes).unwrap_or_else(|| Sha256::digest(bytes).into())
}

/// Hex SHA-256 of the component's digest and the engine's compatibility hash.
fn entry_key(engine: &Engine, content_digest: &[u8; 32]) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    hasher.0.update(content_digest);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex(&hasher.0.finalize())
}

/// `bytes` as lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether the artifact's SHA-256 (read through a small buffer, not into memory) is the one
/// stored beside it.
fn verified(artifact: &Path, checksum: &Path) -> bool {
    let Ok(expected) = std::fs::read(checksum) else {
        return false;
    };
    let Ok(mut file) = std::fs::File::open(artifact) else {
        return false;
    };
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).is_ok() && hasher.finalize().as_slice() == expected
}

/// Writes the artifact, then its checksum (an entry whose checksum is missing or stale is a
/// miss), each renamed into place.
fn store(
    dir: &Path,
    artifact_path: &Path,
    checksum_path: &Path,
    artifact: &[u8],
) -> std::io::Result<()> {
    let write = |path: &Path, contents: &[u8]| -> std::io::Result<()> {
        let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
        temporary.write_all(contents)?;
        // On disk before it is renamed into place (a crash leaves the old entry or the whole
        // new one), and clean: the page cache can then drop what the server does not run (see
        // `super::residency`).
        temporary.as_file().sync_data()?;
        temporary.persist(path).map_err(|error| error.error)?;
        Ok(())
    };
    write(artifact_path, artifact)?;
    write(checksum_path, &Sha256::digest(artifact))
}

/// mlhost's folder in the platform's cache folder: `$XDG_CACHE_HOME/mlhost` (or
/// `~/.cache/mlhost`) on Linux, `~/Library/Caches/mlhost` on macOS, `%LOCALAPPDATA%\mlhost` on
/// Windows, else under the temporary folder.
pub(crate) fn platform_cache_dir() -> PathBuf {
    let env_dir = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    let base = if cfg!(windows) {
        env_dir("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        env_dir("HOME").map(|home| home.join("Library/Caches"))
    } else {
        env_dir("XDG_CACHE_HOME").or_else(|| env_dir("HOME").map(|home| home.join(".cache")))
    };
    base.unwrap_or_else(std::env::temp_dir).join("mlhost")
}

#[cfg(unix)]
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
pub(crate) fn unsafe_permissions(dir: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir).ok()?.permissions().mode();
    (mode & 0o022 != 0).then(|| format!("others may write to it (mode {:o})", mode & 0o777))
}

#[cfg(not(unix))]
pub(crate) fn unsafe_permissions(_dir: &Path) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_load_hits_and_a_tampered_entry_recompiles() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let bytes = wat_component();
        let cache = CompilationCache::open(&dir.path().join("compiled")).unwrap();
        let compile = || Component::new(&engine, &bytes);
        assert_eq!(
            cache.load_or_compile(&engine, &bytes, compile).unwrap().1,
            CacheOutcome::Compiled
        );
        assert_eq!(
            cache.load_or_compile(&engine, &bytes, compile).unwrap().1,
            CacheOutcome::Hit
        );

        let entry = std::fs::read_dir(dir.path().join("compiled"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_some_and(|e| e == "cwasm"))
            .unwrap();
        let mut contents = std::fs::read(&entry).unwrap();
        let last = contents.len() - 1;
        contents[last] ^= 0xff;
        std::fs::write(&entry, contents).unwrap();
        assert_eq!(
            cache.load_or_compile(&engine, &bytes, compile).unwrap().1,
            CacheOutcome::Compiled
        );
        assert_eq!(
            cache.load_or_compile(&engine, &bytes, compile).unwrap().1,
            CacheOutcome::Hit
        );
    }

    #[test]
    fn caches_shared_at_once_compile_each_component_once() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let bytes = wat_component();
        let compilations = std::sync::atomic::AtomicUsize::new(0);
        // Two openings of one folder, as two servers sharing it: each entry lock is its own
        // open file, so they exclude each other as two processes would.
        let mut outcomes: Vec<CacheOutcome> = std::thread::scope(|scope| {
            let loads: Vec<_> = (0..2)
                .map(|_| {
                    let cache = CompilationCache::open(&dir.path().join("compiled")).unwrap();
                    let (engine, bytes, compilations) = (&engine, &bytes, &compilations);
                    scope.spawn(move || {
                        let compile = || {
                            compilations.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(300));
                            Component::new(engine, bytes)
                        };
                        cache.load_or_compile(engine, bytes, compile).unwrap().1
                    })
                })
                .collect();
            loads.into_iter().map(|load| load.join().unwrap()).collect()
        });
        assert_eq!(compilations.into_inner(), 1);
        outcomes.sort_by_key(|outcome| *outcome == CacheOutcome::Hit);
        assert_eq!(outcomes, [CacheOutcome::Compiled, CacheOutcome::Hit]);
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(CompilationCache::open(dir.path()).is_none());
    }

    /// The smallest component, `(component)`, in its binary encoding: "\0asm", version 0x0d,
    /// layer 1.
    fn wat_component() -> Vec<u8> {
        vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]
    }
}
