//! A pipeline's last step of loading: its steps' models found in the repository (waiting for
//! those still loading) and its metadata derived from theirs, unless its settings declare it.
//!
//! Steps are looked up again at every request: a step's model reloaded serves the pipeline's
//! next request; one unloaded makes the pipeline not ready, saying which.

use super::error::LoadError;
use super::{LoadedModel, LookupError, ModelState, Repository};
use crate::codec::ModelMetadata;
use crate::pipeline::metadata::{PLATFORM, derive};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a pipeline's load waits for its steps' models to finish loading.
const STEP_LOAD_WAIT: Duration = Duration::from_secs(600);

impl Repository {
    /// Finishes loading `loaded` when it is a pipeline: its steps' models found, its metadata
    /// set; any other model is returned as it is.
    pub(super) async fn link_pipeline(
        &self,
        mut loaded: LoadedModel,
    ) -> Result<LoadedModel, LoadError> {
        let Some(graph) = loaded.pipeline().cloned() else {
            return Ok(loaded);
        };
        let mut described = Vec::with_capacity(graph.steps.len());
        for step in &graph.steps {
            let model = match self.step_model(&step.model, step.version.as_deref()).await {
                Ok(model) => model,
                // Pipelines load side by side, after the other models: one not found yet may
                // be another pipeline.
                Err(LookupError::ModelNotFound(_))
                    if self.is_pipeline_on_disk(&step.model).await =>
                {
                    return Err(nested(&step.name, &step.model));
                }
                Err(error) => {
                    return Err(LoadError::Pipeline(format!(
                        "step '{}': {error}",
                        step.name
                    )));
                }
            };
            if model.pipeline().is_some() {
                return Err(nested(&step.name, &step.model));
            }
            described.push(model);
        }
        let metadata: Vec<&ModelMetadata> = described.iter().map(|m| &m.metadata).collect();
        let derived = derive(&graph, &metadata).map_err(LoadError::Pipeline)?;
        loaded.metadata = merge(std::mem::take(&mut loaded.metadata), derived);
        Ok(loaded)
    }

    /// Whether a model folder on disk declares a pipeline named `name`.
    async fn is_pipeline_on_disk(&self, name: &str) -> bool {
        let found = self.discover().await.unwrap_or_default();
        found.iter().any(|model| {
            model.name == name
                && matches!(&model.settings, Ok(settings) if settings.pipeline.is_some())
        })
    }

    /// Model `name` at `version` once it is ready, waiting while it loads.
    async fn step_model(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<LoadedModel>, LookupError> {
        let until = Instant::now() + STEP_LOAD_WAIT;
        let mut changes = self.watch_states();
        loop {
            changes.borrow_and_update();
            match self.get(name, version) {
                Err(LookupError::Unavailable { .. }) if self.is_loading(name, version) => {}
                found => return found,
            }
            let wait = tokio::time::timeout_at(until.into(), changes.changed()).await;
            if !matches!(wait, Ok(Ok(()))) {
                return self.get(name, version);
            }
        }
    }

    /// Whether model `name` at `version` (its default: any version) is loading for the first
    /// time.
    fn is_loading(&self, name: &str, version: Option<&str>) -> bool {
        let models = self.models.read().expect("repository lock");
        let Some(versions) = models.get(name) else {
            return false;
        };
        versions
            .iter()
            .filter(|(key, _)| version.is_none() || key.as_deref() == version)
            .any(|(_, state)| matches!(state, ModelState::Loading))
    }

    /// Why pipeline `model` cannot serve now (a step's model not ready), if it cannot.
    pub(crate) fn pipeline_problem(&self, model: &LoadedModel) -> Option<String> {
        let graph = model.pipeline()?;
        graph.steps.iter().find_map(|step| {
            let error = self.get(&step.model, step.version.as_deref()).err()?;
            Some(format!("step '{}': {error}", step.name))
        })
    }
}

/// The error of a step whose model is a pipeline.
fn nested(step: &str, model: &str) -> LoadError {
    LoadError::Pipeline(format!(
        "step '{step}': model '{model}' is a pipeline; pipelines do not nest (name its steps \
         instead)"
    ))
}

/// The pipeline's metadata: what its settings declare (platform, inputs, outputs), the rest
/// derived from its steps.
fn merge(declared: ModelMetadata, derived: ModelMetadata) -> ModelMetadata {
    let platform = match declared.platform.is_empty() {
        true => PLATFORM.to_string(),
        false => declared.platform,
    };
    ModelMetadata {
        platform,
        inputs: match declared.inputs.is_empty() {
            true => derived.inputs,
            false => declared.inputs,
        },
        outputs: match declared.outputs.is_empty() {
            true => derived.outputs,
            false => declared.outputs,
        },
        parameters: derived.parameters,
    }
}
