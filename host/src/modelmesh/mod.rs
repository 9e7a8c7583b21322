//! ModelMesh's model-runtime SPI (`mmesh.ModelRuntime`, kserve/modelmesh's
//! `model-runtime.proto`), served natively on `modelmesh_port`: ModelMesh loads and unloads
//! models by id through it and forwards V2 inference calls to the gRPC port, naming the model
//! in the request (`idInjectionPath`) and in the `mm-model-id` metadata.
//!
//! `model_path` reads what a `loadModel` names, `size` estimates what a model costs and what the
//! runtime holds, `keyed` serializes the calls on one id, and `spi` answers the RPCs.

mod keyed;
mod model_path;
mod size;
mod spi;

use crate::config::Settings;
use crate::core::InferenceService;
use crate::repository::{LookupError, Repository};
use keyed::KeyedLocks;
pub(crate) use mlhost_proto::mmesh::model_runtime_server::ModelRuntimeServer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// The inference methods ModelMesh may forward, with the path of the model name's field in
/// each request (field 1: `name`, or `model_name` of `ModelInferRequest`).
pub(crate) const INFERENCE_METHODS: [&str; 5] = [
    "inference.GRPCInferenceService/ModelInfer",
    "inference.GRPCInferenceService/ModelMetadata",
    "inference.GRPCInferenceService/ModelReady",
    "inference.GRPCInferenceService/ModelConfig",
    "inference.GRPCInferenceService/ModelStatistics",
];

/// The `mmesh.ModelRuntime` service over the server's repository.
#[derive(Clone)]
pub(crate) struct ModelMesh {
    inner: Arc<Inner>,
}

struct Inner {
    core: Arc<InferenceService>,
    repository: Arc<Repository>,
    options: MeshOptions,
    /// Loads under way; the others wait for a permit.
    loading: Arc<Semaphore>,
    ids: Arc<KeyedLocks>,
    /// The models loaded through the SPI, with their estimated sizes.
    loaded: Mutex<HashMap<String, u64>>,
}

/// What `runtimeStatus` reports, from the settings.
#[derive(Debug, Clone)]
struct MeshOptions {
    capacity_bytes: u64,
    max_loading_concurrency: u32,
    loading_timeout_ms: u32,
    default_model_size_bytes: u64,
    /// The server's `parallel_workers`: a model's instances unless its settings say otherwise.
    parallel_workers: usize,
}

impl ModelMesh {
    /// The service over `repository`, ready once `core` is; the settings' ModelMesh fields are
    /// checked here (an error names the field).
    pub(crate) fn new(
        core: Arc<InferenceService>,
        repository: Arc<Repository>,
        settings: &Settings,
    ) -> anyhow::Result<ModelMesh> {
        let options = options(settings)?;
        Ok(ModelMesh {
            inner: Arc::new(Inner {
                core,
                repository,
                loading: Arc::new(Semaphore::new(options.max_loading_concurrency as usize)),
                options,
                ids: Arc::default(),
                loaded: Mutex::default(),
            }),
        })
    }

    /// The tonic service.
    pub(crate) fn service(self) -> ModelRuntimeServer<ModelMesh> {
        ModelRuntimeServer::new(self)
    }
}

/// The ModelMesh settings, checked.
fn options(settings: &Settings) -> anyhow::Result<MeshOptions> {
    let out_of_range = |field: &str, value: String, range: &str| {
        anyhow::anyhow!("setting `{field}`: {value} is not between {range}")
    };
    let concurrency = settings.modelmesh_max_loading_concurrency;
    if !(1..=256).contains(&concurrency) {
        return Err(out_of_range(
            "modelmesh_max_loading_concurrency",
            concurrency.to_string(),
            "1 and 256",
        ));
    }
    let timeout = settings.modelmesh_loading_timeout_seconds;
    if !(1.0..=86_400.0).contains(&timeout) {
        return Err(out_of_range(
            "modelmesh_loading_timeout_seconds",
            timeout.to_string(),
            "1 and 86400",
        ));
    }
    let default_mb = settings.modelmesh_default_model_size_mb;
    if !(1..=1 << 20).contains(&default_mb) {
        return Err(out_of_range(
            "modelmesh_default_model_size_mb",
            default_mb.to_string(),
            "1 and 1048576",
        ));
    }
    if let Some(capacity) = settings.modelmesh_capacity_mb
        && !(1..=1 << 30).contains(&capacity)
    {
        return Err(out_of_range(
            "modelmesh_capacity_mb",
            capacity.to_string(),
            "1 and 1073741824",
        ));
    }
    Ok(MeshOptions {
        capacity_bytes: size::capacity(settings.modelmesh_capacity_mb),
        max_loading_concurrency: concurrency,
        loading_timeout_ms: (timeout * 1000.0) as u32,
        default_model_size_bytes: default_mb * 1024 * 1024,
        parallel_workers: settings.parallel_workers,
    })
}

impl Inner {
    /// Whether `id` names a model of the repository's own folder (not one ModelMesh loaded).
    fn is_foreign(&self, id: &str) -> bool {
        let ours = self.loaded.lock().expect("loaded models").contains_key(id);
        !ours
            && !matches!(
                self.repository.get(id, None),
                Err(LookupError::ModelNotFound(_))
            )
    }

    /// Unloads the model ModelMesh loaded as `id`, if it did; the caller holds `id`'s lock.
    async fn unload_held(&self, id: &str) -> bool {
        let known = self.loaded.lock().expect("loaded models").remove(id);
        if known.is_some() {
            self.repository.forget(id).await;
        }
        known.is_some()
    }

    /// Unloads every model ModelMesh loaded (and waits for the loads under way, then unloads
    /// them): what `runtimeStatus` must do before it reports READY.
    async fn purge(self: &Arc<Self>) -> usize {
        let mut ids: Vec<String> = self
            .loaded
            .lock()
            .expect("loaded models")
            .keys()
            .cloned()
            .collect();
        ids.extend(self.ids.busy());
        ids.sort();
        ids.dedup();
        let mut purged = 0;
        for id in ids {
            let _held = self.ids.lock(&id).await;
            purged += usize::from(self.unload_held(&id).await);
        }
        purged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_out_of_range_are_refused_with_the_field() {
        let mut settings = Settings::default();
        let defaults = options_of(&settings);
        assert_eq!(defaults.max_loading_concurrency, 2);
        assert_eq!(defaults.loading_timeout_ms, 90_000);
        assert_eq!(defaults.default_model_size_bytes, 16 << 20);
        settings.modelmesh_capacity_mb = Some(300);
        assert_eq!(options_of(&settings).capacity_bytes, 300 << 20);
        settings.modelmesh_max_loading_concurrency = 0;
        let error = options(&settings).unwrap_err().to_string();
        assert!(
            error.contains("modelmesh_max_loading_concurrency"),
            "{error}"
        );
        settings.modelmesh_max_loading_concurrency = 1;
        settings.modelmesh_loading_timeout_seconds = f64::NAN;
        let error = options(&settings).unwrap_err().to_string();
        assert!(
            error.contains("modelmesh_loading_timeout_seconds"),
            "{error}"
        );
    }

    fn options_of(settings: &Settings) -> MeshOptions {
        options(settings).unwrap()
    }
}
