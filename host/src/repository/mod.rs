//! The model repository: which models (and versions) exist, their states, and their lifecycle.
//!
//! Models are discovered on disk ([`discover`]) and loaded off the async threads
//! ([`load_model`]). Lookups clone an `Arc` out of a short read lock, so a request never waits on
//! a load. A load of a loaded model builds the new version beside the old one and swaps it in
//! atomically; the old one finishes its in-flight requests and winds down when the last of them
//! drops it. Loads and unloads of one model name are serialized; different models load
//! concurrently.
//!
//! The parts: `state` holds the state table and its lookups, `lifecycle` the loads and unloads,
//! `operations` the per-name serialization, `loader` the load of one version, `slots` the
//! instance-pool slots reserved per version, `discovery` the walk of the folder, and `error` the
//! error types.

mod discovery;
mod error;
mod external;
mod lifecycle;
mod loader;
pub(crate) mod mlflow;
mod operations;
mod overrides;
mod pipeline;
mod slots;
mod state;
mod triton_config;
mod warmup;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::wasm::WasmEngine;
pub(crate) use discovery::{DiscoveredModel, discover};
pub(crate) use error::{LookupError, RepositoryError};
pub(crate) use loader::{LoadedModel, Runner, load_model};
use operations::OperationLocks;
pub(crate) use overrides::LoadRequest;
use slots::SlotBudget;
pub(crate) use state::{IndexEntry, ModelState};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;
pub(crate) use warmup::{BoxError, WarmUpCall, set_warm_up};

/// Every model the server knows, by name and version, and how to (re)load them.
pub(crate) struct Repository {
    root: PathBuf,
    engine: WasmEngine,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    /// The instance pool's slots, reserved per model version.
    slots: SlotBudget,
    models: RwLock<BTreeMap<String, state::Versions>>,
    operations: OperationLocks,
    /// The folders of the models loaded from the files a load sent, by name.
    uploads: std::sync::Mutex<std::collections::HashMap<String, tempfile::TempDir>>,
    /// Told of every change of a state (see [`Repository::watch_states`]).
    states_changed: watch::Sender<()>,
}

impl Repository {
    /// A repository over the models below `root`, loaded with `engine`, whose models report
    /// to `metrics`; starts empty.
    pub(crate) fn new(
        root: PathBuf,
        engine: WasmEngine,
        settings: Arc<Settings>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Repository {
            root,
            engine,
            slots: SlotBudget::new(settings.instance_pool_size),
            settings,
            metrics,
            models: RwLock::default(),
            operations: OperationLocks::default(),
            uploads: Default::default(),
            states_changed: watch::channel(()).0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::EngineOptions;
    use std::path::Path;

    /// A repository over `root` with a small engine and nothing loaded.
    pub(super) fn repository_at(root: &Path) -> Repository {
        let engine = WasmEngine::new(&EngineOptions {
            instance_pool_size: 0,
            max_memory_bytes: 1 << 20,
            cache_dir: None,
        })
        .unwrap();
        Repository::new(
            root.to_path_buf(),
            engine,
            Arc::default(),
            Arc::new(Metrics::new("rest_server")),
        )
    }

    /// A repository with nothing loaded, for tests of the state table.
    pub(super) fn empty_repository() -> Repository {
        repository_at(Path::new("."))
    }
}
