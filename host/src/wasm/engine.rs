//! The process-wide wasmtime engine and the cache of compiled runtime components.

use super::bindings::RuntimePre;
use super::instance::InstanceState;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, OptLevel};

/// Where a runtime component comes from.
#[derive(Debug, Clone)]
pub enum ComponentSource {
    /// A runtime compiled into the binary.
    BuiltIn {
        name: &'static str,
        bytes: &'static [u8],
    },
    /// A `.wasm` file on disk.
    File(PathBuf),
}

impl ComponentSource {
    /// A short description for logs and errors.
    pub fn describe(&self) -> String {
        match self {
            ComponentSource::BuiltIn { name, .. } => format!("built-in runtime '{name}'"),
            ComponentSource::File(path) => path.display().to_string(),
        }
    }
}

/// A compiled runtime component, ready to be instantiated any number of times.
pub struct RuntimeComponent {
    pub(super) pre: RuntimePre<InstanceState>,
    /// What it was compiled from.
    pub source: String,
}

/// Identifies a component for the compile cache: a changed file compiles again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    BuiltIn(&'static str),
    File {
        path: PathBuf,
        modified: Option<SystemTime>,
        len: u64,
    },
}

type CompileCell = Arc<OnceLock<Result<Arc<RuntimeComponent>, String>>>;

/// The wasmtime engine shared by every model, with its linker and compiled components.
///
/// Cloning is cheap: clones share the engine and the cache.
#[derive(Clone)]
pub struct WasmEngine {
    engine: Engine,
    linker: Arc<Linker<InstanceState>>,
    compiled: Arc<Mutex<HashMap<CacheKey, CompileCell>>>,
}

impl WasmEngine {
    /// Creates the engine and a linker that provides WASI preview 2 (sync) to guests.
    pub fn new() -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Ok(WasmEngine {
            engine,
            linker: Arc::new(linker),
            compiled: Arc::default(),
        })
    }

    /// Compiles `source` (once: later calls share the result) and checks that it implements
    /// the `mlhost:runtime` world.
    ///
    /// Blocking and CPU-heavy: call it off the async threads.
    pub fn component(&self, source: &ComponentSource) -> Result<Arc<RuntimeComponent>, String> {
        let key = match source {
            ComponentSource::BuiltIn { name, .. } => CacheKey::BuiltIn(name),
            ComponentSource::File(path) => {
                let metadata = std::fs::metadata(path)
                    .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
                CacheKey::File {
                    path: path.clone(),
                    modified: metadata.modified().ok(),
                    len: metadata.len(),
                }
            }
        };
        let cell = self
            .compiled
            .lock()
            .expect("compile cache lock")
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_init(|| self.compile(source).map(Arc::new))
            .clone()
    }

    fn compile(&self, source: &ComponentSource) -> Result<RuntimeComponent, String> {
        let started = Instant::now();
        let component = match source {
            ComponentSource::BuiltIn { bytes, .. } => Component::new(&self.engine, bytes),
            ComponentSource::File(path) => Component::from_file(&self.engine, path),
        }
        .map_err(|error| format!("cannot compile {}: {error:#}", source.describe()))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(RuntimePre::new)
            .map_err(|error| {
                format!(
                    "{} is not an mlhost runtime (world mlhost:runtime/runtime@0.1.0): {error:#}",
                    source.describe()
                )
            })?;
        tracing::info!(
            component = %source.describe(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled runtime component"
        );
        Ok(RuntimeComponent {
            pre,
            source: source.describe(),
        })
    }
}
