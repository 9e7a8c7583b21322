//! Loading a pipeline: its graph checked, its deadline and statistics set up. It has no runtime
//! and no workers of its own; its metadata comes from its steps once they are found
//! (`repository::pipeline`).

use super::resolve::{declared_tensors, instance_limits};
use super::{LoadedModel, Runner, next_generation};
use crate::codec::ModelMetadata;
use crate::config::{ModelSettings, PipelineSettings, Settings};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::repository::error::LoadError;
use crate::stats::ModelStats;
use std::sync::Arc;

/// Loads model `name` as the pipeline its settings declare.
pub(super) fn load_pipeline(
    name: String,
    version: Option<String>,
    settings: &ModelSettings,
    declared: &PipelineSettings,
    server: &Settings,
    metrics: &Metrics,
) -> Result<LoadedModel, LoadError> {
    refuse_runtime_fields(settings)?;
    let pipeline = Pipeline::from_settings(&name, declared).map_err(LoadError::Pipeline)?;
    let declared_inputs = declared_tensors(&settings.inputs, "inputs")?;
    let declared_outputs = declared_tensors(&settings.outputs, "outputs")?;
    let metadata = ModelMetadata {
        platform: settings.platform.clone(),
        inputs: declared_inputs.clone(),
        outputs: declared_outputs,
        parameters: Vec::new(),
    };
    let metrics_handles = Arc::new(metrics.model(&name, version.as_deref()));
    Ok(LoadedModel {
        limits: instance_limits(settings, server)?,
        runner: Runner::Pipeline {
            steps: Arc::new(metrics.pipeline_steps(&name, version.as_deref(), &pipeline)),
            graph: Arc::new(pipeline),
        },
        name,
        version,
        metadata,
        declared_inputs,
        columns: None,
        max_batch_size: 0,
        max_batch_time: 0.0,
        default_content_type: settings.parameters.content_type.clone(),
        stats: Arc::new(ModelStats::new(false)),
        metrics: metrics_handles,
        cache_enabled: false,
        generation: next_generation(),
    })
}

/// Refuses the settings that belong to a runtime: a pipeline's steps have their own.
fn refuse_runtime_fields(settings: &ModelSettings) -> Result<(), LoadError> {
    let set: Vec<&str> = [
        ("implementation", settings.implementation.is_some()),
        ("parameters.uri", settings.parameters.uri.is_some()),
        ("max_batch_size", settings.max_batch_size > 1),
        ("cache_enabled", settings.cache_enabled),
        ("parallel_workers", settings.parallel_workers.is_some()),
        ("priority_levels", settings.priority_levels > 1),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    if set.is_empty() {
        return Ok(());
    }
    Err(LoadError::Pipeline(format!(
        "a pipeline has no runtime of its own: {} belong in its steps' model-settings.json",
        set.join(", ")
    )))
}
