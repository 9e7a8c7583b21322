//! Finding and loading ONNX Runtime's shared library, once per process.
//!
//! Searched, first found wins: the `onnxruntime_library` setting (`MLHOST_ONNXRUNTIME_LIBRARY`),
//! `ORT_DYLIB_PATH`, beside the executable (and in `../lib` from it), the user's data folder
//! (where `scripts/setup` puts it), then the system loader's own search for the bare name.
//! Without a library, native backends are unavailable and `auto` models run sandboxed.
//!
//! The library is opened when a model first needs it, not at start: a server without ONNX
//! models never maps its ~18 MiB.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The library's file name on this platform.
#[cfg(target_os = "windows")]
const LIBRARY_NAME: &str = "onnxruntime.dll";
#[cfg(target_os = "macos")]
const LIBRARY_NAME: &str = "libonnxruntime.dylib";
#[cfg(not(any(target_os = "windows", target_os = "macos")))]
const LIBRARY_NAME: &str = "libonnxruntime.so";

/// Whether ONNX Runtime is loaded in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LibraryStatus {
    /// Loaded from `path`; `version` is the library's own.
    Loaded { path: PathBuf, version: String },
    /// Not loaded, and why (every place searched).
    Missing { reason: String },
}

static STATUS: OnceLock<LibraryStatus> = OnceLock::new();

/// Where to look first (the setting) and whether native backends are allowed, as the server's
/// settings say ([`configure`]).
static SEARCH: OnceLock<(Option<PathBuf>, bool)> = OnceLock::new();

/// The ONNX Runtime environment every session is created in (one per process).
static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();

/// The environment, once the library is loaded.
pub(super) fn environment() -> Option<&'static ort::environment::Environment> {
    status();
    ENVIRONMENT.get()
}

/// Sets where the library is searched from (`configured`, the setting) and whether native
/// backends are `allowed` (if not, it is never opened). Only the first call counts, and only
/// before the library is first needed; loading waits for [`status`].
pub(crate) fn configure(configured: Option<&Path>, allowed: bool) {
    let _ = SEARCH.set((configured.map(Path::to_path_buf), allowed));
}

/// Whether the library is loaded: the first call loads it (from where [`configure`] said, or
/// the default search) and logs the outcome in one line.
pub(crate) fn status() -> &'static LibraryStatus {
    STATUS.get_or_init(|| {
        let (configured, allowed) = SEARCH.get_or_init(|| (None, true));
        if !allowed {
            return LibraryStatus::Missing {
                reason: "native backends are off (`native_backends` is false)".to_string(),
            };
        }
        let status = load(&candidates(configured.as_deref()));
        match &status {
            LibraryStatus::Loaded { path, version } => tracing::info!(
                "native ONNX backend: ONNX Runtime {version} from {}",
                path.display()
            ),
            LibraryStatus::Missing { reason } => tracing::warn!(
                "native ONNX backend unavailable, ONNX models run sandboxed (tract): {reason}"
            ),
        }
        status
    })
}

/// Where to look, in order.
fn candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    let variable = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(path) = configured
        .map(Path::to_path_buf)
        .or_else(|| variable("ORT_DYLIB_PATH"))
    {
        // A named library is the only one tried: falling back elsewhere would hide a mistake.
        return vec![path];
    }
    let mut found = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        found.push(dir.join(LIBRARY_NAME));
        found.push(dir.join("..").join("lib").join(LIBRARY_NAME));
    }
    if let Some(data) = user_data_dir() {
        found.push(data.join("mlhost").join("onnxruntime").join(LIBRARY_NAME));
    }
    found.retain(|path| path.is_file());
    // Last, the system loader's search (LD_LIBRARY_PATH, the system's folders, PATH on Windows).
    found.push(PathBuf::from(LIBRARY_NAME));
    found
}

/// The user's data folder: `%LOCALAPPDATA%` on Windows, `$XDG_DATA_HOME` or `~/.local/share`
/// elsewhere.
fn user_data_dir() -> Option<PathBuf> {
    let variable = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if cfg!(windows) {
        return variable("LOCALAPPDATA").map(PathBuf::from);
    }
    variable("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| variable("HOME").map(|home| PathBuf::from(home).join(".local").join("share")))
}

/// Loads the first candidate that opens, with the ONNX Runtime environment mlhost's sessions use.
fn load(candidates: &[PathBuf]) -> LibraryStatus {
    let mut failures = Vec::new();
    for path in candidates {
        match ort::init_from(path) {
            Ok(builder) => {
                match builder.with_name("mlhost").with_telemetry(false).build() {
                    Ok(environment) => {
                        let _ = ENVIRONMENT.set(environment);
                    }
                    Err(error) => {
                        return LibraryStatus::Missing {
                            reason: format!(
                                "ONNX Runtime from {} did not start: {error}",
                                path.display()
                            ),
                        };
                    }
                }
                return LibraryStatus::Loaded {
                    path: path.clone(),
                    version: version(path).unwrap_or_else(|| "(version unknown)".to_string()),
                };
            }
            Err(error) => failures.push(error.to_string()),
        }
    }
    LibraryStatus::Missing {
        reason: format!(
            "ONNX Runtime's library ({LIBRARY_NAME}) was not found or did not load ({}); \
             `scripts/setup` installs it, or set `onnxruntime_library` / \
             MLHOST_ONNXRUNTIME_LIBRARY",
            failures.join("; ")
        ),
    }
}

/// The library's own version (`OrtGetApiBase()->GetVersionString()`, e.g. "1.32.0"): opening
/// the loaded library again only takes another reference to it.
fn version(path: &Path) -> Option<String> {
    type ApiBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: `path` is the ONNX Runtime library ort has just loaded (so its initialisers have
    // run); `OrtGetApiBase` has this signature in every version, returns a pointer to a static
    // struct, and `GetVersionString` returns a static NUL-terminated string.
    unsafe {
        let library = libloading::Library::new(path).ok()?;
        let api_base = library.get::<ApiBase>(b"OrtGetApiBase").ok()?;
        let base = api_base();
        if base.is_null() {
            return None;
        }
        let version = ((*base).GetVersionString)();
        (!version.is_null()).then(|| {
            std::ffi::CStr::from_ptr(version)
                .to_string_lossy()
                .into_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_library_is_the_only_candidate() {
        let named = Path::new("/opt/ort/libonnxruntime.so");
        assert_eq!(candidates(Some(named)), vec![named.to_path_buf()]);
    }

    #[test]
    fn the_loaded_library_says_its_version() {
        if let LibraryStatus::Loaded { version, .. } = status() {
            assert!(version.split('.').count() == 3, "{version}");
        } else {
            panic!(
                "this test needs ONNX Runtime (run scripts/setup): {:?}",
                status()
            );
        }
    }

    #[test]
    fn the_system_search_comes_last() {
        let found = candidates(None);
        assert_eq!(found.last(), Some(&PathBuf::from(LIBRARY_NAME)));
    }
}
