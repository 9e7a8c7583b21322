//! Loading one model version: settings → runtime component → worker pool (and batcher) →
//! metadata.

mod implementation;
mod pipeline;
mod resolve;

use super::discovery::DiscoveredModel;
use super::error::LoadError;
use super::slots::SlotBudget;
use crate::batching::{BatchOptions, Batcher};
use crate::codec::columns::ColumnLayout;
use crate::codec::{ModelMetadata, TensorMetadata};
use crate::config::{ConfigError, ModelSettings, Settings};
use crate::metrics::{Metrics, ModelMetrics};
use crate::stats::ModelStats;
use crate::wasm::{GuestSettings, InstanceLimits, ModelContext, RuntimeComponent, WasmEngine};
use crate::workers::WorkerPool;
use crate::workers::priority::QueueSettings;
use std::path::PathBuf;
use std::sync::Arc;

/// A model version that is loaded and serving.
pub(crate) struct LoadedModel {
    pub name: String,
    pub version: Option<String>,
    /// The model's metadata: what model-settings.json declares, else what the runtime says.
    pub metadata: ModelMetadata,
    /// The inputs model-settings.json declares; requests are checked against them.
    pub declared_inputs: Vec<TensorMetadata>,
    /// How the runtime's one matrix input is made of columns, when it takes one.
    pub columns: Option<ColumnLayout>,
    /// The bounds the model's instances run within.
    pub limits: InstanceLimits,
    /// What runs the model's requests: its workers, or the steps of its pipeline.
    pub runner: Runner,
    /// `max_batch_size` and `max_batch_time` (seconds) of model-settings.json.
    pub max_batch_size: usize,
    pub max_batch_time: f64,
    /// The content type of requests that name none (`parameters.content_type`).
    pub default_content_type: Option<String>,
    /// What the model's requests have cost so far.
    pub stats: Arc<ModelStats>,
    /// The model's Prometheus series.
    pub metrics: Arc<ModelMetrics>,
    /// Whether the model's answers may be cached (`cache_enabled` of model-settings.json).
    pub cache_enabled: bool,
    /// This load's number, unique in the process: a reload never shares its predecessor's
    /// cached answers.
    pub generation: u64,
}

/// What runs a model's requests.
pub(crate) enum Runner {
    /// The model's own workers, with the batcher in front of them when the model batches.
    Workers {
        pool: Arc<WorkerPool>,
        batcher: Option<Batcher>,
    },
    /// Other models of the repository, one step after another (docs/pipelines.md).
    Pipeline {
        graph: Arc<crate::pipeline::Pipeline>,
        /// Each step's series.
        steps: Arc<crate::metrics::StepMetrics>,
    },
}

impl LoadedModel {
    /// The model's workers, unless it is a pipeline.
    pub(crate) fn pool(&self) -> Option<&Arc<WorkerPool>> {
        match &self.runner {
            Runner::Workers { pool, .. } => Some(pool),
            Runner::Pipeline { .. } => None,
        }
    }

    /// The model's pipeline, if it is one.
    pub(crate) fn pipeline(&self) -> Option<&Arc<crate::pipeline::Pipeline>> {
        match &self.runner {
            Runner::Pipeline { graph, .. } => Some(graph),
            Runner::Workers { .. } => None,
        }
    }
}

/// Numbers the loads of the process (see [`LoadedModel::generation`]).
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Loads a discovered model: compiles (or reuses) its runtime and starts its workers.
///
/// Blocking: call it off the async threads.
pub(crate) fn load_model(
    engine: &WasmEngine,
    slots: &SlotBudget,
    model: DiscoveredModel,
    server: &Settings,
    metrics: &Metrics,
) -> Result<LoadedModel, LoadError> {
    let DiscoveredModel {
        folder,
        name,
        version,
        settings,
        problem,
    } = model;
    let settings = usable_settings(&name, settings, problem)?;
    if let Some(declared) = &settings.pipeline {
        return pipeline::load_pipeline(name, version, &settings, declared, server, metrics);
    }
    let plan = resolve::plan(&settings, &folder, server)?;
    let workers = settings.parallel_workers.unwrap_or(server.parallel_workers);
    let lease = slots.reserve(&name, version.as_deref(), workers)?;
    let component = engine.component(&plan.source).map_err(LoadError::Compile)?;
    // The model's worker threads hold the lease, through their component, until their
    // instances are gone.
    let component = Arc::new(component.holding(lease));
    // A remote uri's files are the folder the model's instances see.
    let context = instance_context(
        &name,
        &version,
        plan.model_dir.clone().unwrap_or(folder),
        &settings,
        plan.guest_uri,
        plan.limits,
        plan.native,
    );
    let stats = Arc::new(ModelStats::new(settings.max_batch_size > 0));
    let metrics = Arc::new(metrics.model(&name, version.as_deref()));
    let serving = start_serving(component, context, &settings, server, &stats, &metrics)?;
    let columns = ColumnLayout::of(&serving.runtime_metadata.inputs, &plan.declared_inputs);
    if let Some(problem) = columns.as_ref().and_then(ColumnLayout::problem) {
        tracing::warn!(model = %name, "{problem}");
    }
    let metadata = merge_metadata(
        &settings,
        serving.runtime_metadata,
        &plan.declared_inputs,
        plan.declared_outputs,
    );
    Ok(LoadedModel {
        name,
        version,
        metadata,
        declared_inputs: plan.declared_inputs,
        columns,
        limits: plan.limits,
        runner: Runner::Workers {
            pool: serving.pool,
            batcher: serving.batcher,
        },
        max_batch_size: settings.max_batch_size,
        max_batch_time: settings.max_batch_time,
        default_content_type: settings.parameters.content_type.clone(),
        stats,
        metrics,
        cache_enabled: settings.cache_enabled,
        generation: next_generation(),
    })
}

/// A load's number (see [`LoadedModel::generation`]).
fn next_generation() -> u64 {
    GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The model's settings, if it may be loaded with them; warns of the fields mlhost ignores.
fn usable_settings(
    name: &str,
    settings: Result<ModelSettings, ConfigError>,
    problem: Option<String>,
) -> Result<ModelSettings, LoadError> {
    if let Some(problem) = problem {
        return Err(LoadError::Placement(problem));
    }
    let settings = settings.map_err(LoadError::Settings)?;
    let ignored = settings.ignored_fields();
    if !ignored.is_empty() {
        tracing::warn!(model = %name, "model-settings.json fields accepted but not used by mlhost: {}", ignored.join(", "));
    }
    Ok(settings)
}

/// What each of the model's instances is created with: its folder, settings and bounds.
fn instance_context(
    name: &str,
    version: &Option<String>,
    folder: PathBuf,
    settings: &ModelSettings,
    guest_uri: String,
    limits: InstanceLimits,
    native: crate::native::NativeOptions,
) -> Arc<ModelContext> {
    let extra = settings.parameters.extra.clone().unwrap_or_default();
    Arc::new(ModelContext {
        name: name.to_string(),
        host_dir: folder,
        settings: GuestSettings {
            name: name.to_string(),
            version: version.clone(),
            uri: guest_uri,
            extra: serde_json::to_string(&extra).expect("JSON values serialize"),
            parameters: resolve::guest_parameters(settings),
        },
        limits,
        native,
    })
}

/// A model's running workers, with the batcher in front of them when it batches.
struct Serving {
    pool: Arc<WorkerPool>,
    batcher: Option<Batcher>,
    /// The metadata the runtime reported when it loaded the model.
    runtime_metadata: ModelMetadata,
}

/// Starts the model's workers (which load the model) and, when it batches, its batcher.
fn start_serving(
    component: Arc<RuntimeComponent>,
    context: Arc<ModelContext>,
    settings: &ModelSettings,
    server: &Settings,
    stats: &Arc<ModelStats>,
    metrics: &Arc<ModelMetrics>,
) -> Result<Serving, LoadError> {
    let workers = settings.parallel_workers.unwrap_or(server.parallel_workers);
    let queue_capacity = settings.max_queue_size.unwrap_or(server.max_queue_size);
    let (pool, runtime_metadata) = WorkerPool::start(
        component,
        context,
        workers,
        queue_settings(settings, queue_capacity),
        server
            .inline_calls
            .then(|| std::time::Duration::from_micros(server.inline_call_max_us)),
        stats.clone(),
        metrics.clone(),
    )?;
    let pool = Arc::new(pool);
    let batcher = (settings.max_batch_size > 1 && settings.max_batch_time > 0.0).then(|| {
        Batcher::start(
            pool.clone(),
            BatchOptions {
                max_batch_size: settings.max_batch_size as u64,
                max_batch_time: std::time::Duration::from_secs_f64(
                    settings.max_batch_time.min(3600.0),
                ),
                queue_capacity,
            },
            metrics.clone(),
        )
    });
    Ok(Serving {
        pool,
        batcher,
        runtime_metadata,
    })
}

/// The model's queues: one per priority level (Triton's `priority_levels`), each of its own
/// size (`priority_queue_sizes`, else `capacity`); a request naming no level goes to
/// `default_priority_level` (0: the lowest).
fn queue_settings(settings: &ModelSettings, capacity: usize) -> QueueSettings {
    let levels = settings.priority_levels.max(1);
    let capacities = match &settings.priority_queue_sizes {
        sizes if sizes.len() == levels => sizes.clone(),
        _ => vec![capacity; levels],
    };
    let default_level = match settings.default_priority_level {
        0 => levels,
        level => level.min(levels),
    };
    QueueSettings {
        capacities,
        default_level,
    }
}

/// The model's metadata: each part model-settings.json declares, else the runtime's.
fn merge_metadata(
    settings: &ModelSettings,
    runtime: ModelMetadata,
    declared_inputs: &[TensorMetadata],
    declared_outputs: Vec<TensorMetadata>,
) -> ModelMetadata {
    ModelMetadata {
        platform: if settings.platform.is_empty() {
            runtime.platform
        } else {
            settings.platform.clone()
        },
        inputs: if declared_inputs.is_empty() {
            runtime.inputs
        } else {
            declared_inputs.to_vec()
        },
        outputs: if declared_outputs.is_empty() {
            runtime.outputs
        } else {
            declared_outputs
        },
        parameters: runtime.parameters,
    }
}
