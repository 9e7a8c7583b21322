//! The process-wide wasmtime engine and the cache of compiled runtime components.

use super::bindings::RuntimePre;
use super::cache::{CacheOutcome, CompilationCache};
use super::compile_queue::CompileQueue;
use super::state::InstanceState;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// How the engine allocates instances.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Instance slots of the pooling allocator; 0 allocates on demand instead.
    pub instance_pool_size: u32,
    /// The largest linear memory any instance may have, in bytes.
    pub max_memory_bytes: u64,
    /// Where compiled components are cached on disk; `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
}

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
    /// Whether the runtime may read its request's `headers` parameter: a runtime from a file
    /// may; the built-in runtimes read no request parameter.
    reads_headers: bool,
    /// What this copy keeps alive until it is dropped (see [`RuntimeComponent::holding`]).
    _held: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl RuntimeComponent {
    /// A copy of the component (cheap: the compiled code is shared) that keeps `held` alive
    /// until the last `Arc` of it is dropped, e.g. by the last worker thread running one of its
    /// instances: a model's reservation of instance-pool slots ends when its instances do.
    pub fn holding(&self, held: impl std::any::Any + Send + Sync) -> RuntimeComponent {
        RuntimeComponent {
            pre: self.pre.clone(),
            reads_headers: self.reads_headers,
            _held: Some(Arc::new(held)),
        }
    }

    /// Whether the runtime may read its request's `headers` parameter (the built-in runtimes do
    /// not: the workers leave it out for them).
    pub(crate) fn reads_headers(&self) -> bool {
        self.reads_headers
    }
}

/// Identifies a component for the compile cache: a changed file compiles again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    /// The address of a built-in runtime's bytes: the names that share a component share its
    /// compiled code.
    BuiltIn(usize),
    File {
        path: PathBuf,
        modified: Option<SystemTime>,
        len: u64,
    },
}

/// Why a runtime component cannot be used. Compile errors are cached with the component they
/// failed to make, and shared (hence [`WasmEngine::component`]'s `Arc`).
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The component file's metadata cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The component file cannot be read.
    #[error("cannot compile {component}: {source}")]
    Read {
        component: String,
        #[source]
        source: std::io::Error,
    },
    /// The component's types are not the runtime world's (see [`super::world`]): every problem
    /// found, one per line.
    #[error("{component} is not an mlhost runtime (world mlhost:runtime/runtime@0.1.x): {}", problems.replace('\n', "; "))]
    World { component: String, problems: String },
    /// wasmtime cannot compile the component.
    #[error("cannot compile {component}: {source:#}")]
    Compile {
        component: String,
        #[source]
        source: wasmtime::Error,
    },
    /// The component's imports or exports do not link with what the host provides.
    #[error(
        "{component} is not an mlhost runtime (world mlhost:runtime/runtime@0.1.x): {source:#}"
    )]
    Link {
        component: String,
        #[source]
        source: wasmtime::Error,
    },
}

type CompileCell = Arc<OnceLock<Result<Arc<RuntimeComponent>, Arc<CompileError>>>>;

/// The wasmtime engine shared by every model, with its linker and compiled components.
///
/// Cloning is cheap: clones share the engine and the cache.
#[derive(Clone)]
pub struct WasmEngine {
    engine: Engine,
    linker: Arc<Linker<InstanceState>>,
    compiled: Arc<Mutex<HashMap<CacheKey, CompileCell>>>,
    /// Compilations one at a time, smallest first.
    compile_queue: Arc<CompileQueue>,
    disk_cache: Option<CompilationCache>,
}

impl WasmEngine {
    /// Creates the engine, starts its epoch ticker (the clock of every call's deadline), and
    /// makes a linker that provides WASI preview 2 (sync) to guests.
    ///
    /// With a pool, instances take pre-reserved slots and copy-on-write memory images, so
    /// re-creating an instance after a trap costs microseconds.
    pub fn new(options: &EngineOptions) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.cranelift_opt_level(OptLevel::Speed);
        config.epoch_interruption(true);
        if options.instance_pool_size > 0 {
            let slots = options.instance_pool_size;
            let mut pooling = PoolingAllocationConfig::new();
            // A Rust wasip2 component holds a few core instances (the program and small shims),
            // one memory and a few tables.
            pooling
                .total_component_instances(slots)
                .total_core_instances(slots.saturating_mul(4))
                .total_memories(slots.saturating_mul(2))
                .total_tables(slots.saturating_mul(4))
                .max_memory_size(usize::try_from(options.max_memory_bytes).unwrap_or(usize::MAX));
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        }
        let engine = Engine::new(&config)?;
        super::epoch::start_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        super::clocks::cap_waits_at_deadlines(&mut linker)?;
        super::bindings::Runtime::add_to_linker::<
            InstanceState,
            wasmtime::component::HasSelf<InstanceState>,
        >(&mut linker, |state| state)?;
        let disk_cache = options
            .cache_dir
            .as_deref()
            .and_then(CompilationCache::open);
        Ok(WasmEngine {
            engine,
            linker: Arc::new(linker),
            compiled: Arc::default(),
            compile_queue: Arc::default(),
            disk_cache,
        })
    }

    /// Whether compiled components go to (and come from) the on-disk cache.
    pub fn caches_to_disk(&self) -> bool {
        self.disk_cache.is_some()
    }

    /// Compiles `source` (once: later calls share the result, error included) and checks that
    /// it implements the `mlhost:runtime` world.
    ///
    /// Blocking and CPU-heavy: call it off the async threads.
    pub fn component(
        &self,
        source: &ComponentSource,
    ) -> Result<Arc<RuntimeComponent>, Arc<CompileError>> {
        let key = match source {
            ComponentSource::BuiltIn { bytes, .. } => CacheKey::BuiltIn(bytes.as_ptr() as usize),
            ComponentSource::File(path) => {
                let metadata = std::fs::metadata(path).map_err(|source| {
                    Arc::new(CompileError::Stat {
                        path: path.clone(),
                        source,
                    })
                })?;
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
        cell.get_or_init(|| self.compile(source).map(Arc::new).map_err(Arc::new))
            .clone()
    }

    fn compile(&self, source: &ComponentSource) -> Result<RuntimeComponent, CompileError> {
        let started = Instant::now();
        let component = || source.describe();
        let file_bytes;
        let bytes: &[u8] = match source {
            ComponentSource::BuiltIn { bytes, .. } => bytes,
            ComponentSource::File(path) => {
                file_bytes = std::fs::read(path).map_err(|source| CompileError::Read {
                    component: component(),
                    source,
                })?;
                // Reading the component's types is instant; compiling a big one takes seconds.
                super::world::check_component(&file_bytes).map_err(|problems| {
                    CompileError::World {
                        component: component(),
                        problems,
                    }
                })?;
                &file_bytes
            }
        };
        let compile = || {
            self.compile_queue
                .run(bytes.len(), || Component::new(&self.engine, bytes))
        };
        let (compiled, outcome) = match &self.disk_cache {
            Some(cache) => cache.load_or_compile(&self.engine, bytes, compile),
            None => compile().map(|compiled| (compiled, CacheOutcome::Compiled)),
        }
        .map_err(|source| CompileError::Compile {
            component: component(),
            source,
        })?;
        if outcome == CacheOutcome::Compiled {
            return_freed_memory();
        }
        let pre = self
            .linker
            .instantiate_pre(&compiled)
            .and_then(RuntimePre::new)
            .map_err(|source| CompileError::Link {
                component: component(),
                source,
            })?;
        tracing::info!(
            component = %source.describe(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "{}",
            match outcome {
                CacheOutcome::Hit => "loaded compiled component from the cache",
                CacheOutcome::Compiled => "compiled component",
            }
        );
        Ok(RuntimeComponent {
            pre,
            reads_headers: matches!(source, ComponentSource::File(_)),
            _held: None,
        })
    }
}

/// Hands the memory the compiler freed back to the system. Cranelift compiles on several
/// threads, and glibc keeps what each thread freed in its own arena: without this a server that
/// compiled a large component at start holds hundreds of MB it no longer uses. The binary's
/// allocator on Linux is mimalloc (host/src/main.rs), which returns freed memory only some time
/// after it was freed and only when the program allocates again (an idle server does not):
/// its collection purges now.
fn return_freed_memory() {
    #[cfg(target_os = "linux")]
    // SAFETY: mi_collect only returns free memory (harmless when mimalloc is not the global
    // allocator, as in the tests' builds of the library).
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}
