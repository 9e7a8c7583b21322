//! The RPCs of `mmesh.ModelRuntime`.
//!
//! A load holds its id's lock and a loading permit, and runs in a task of its own: when its
//! caller goes away (ModelMesh cancels a load that takes too long), the task finishes the load
//! and unloads the model again, and the `unloadModel` ModelMesh sends next waits for that on the
//! id's lock, so a cancelled load leaves nothing behind.

use super::model_path::{self, MeshModel};
use super::{INFERENCE_METHODS, Inner, ModelMesh, size};
use mlhost_proto::mmesh::model_runtime_server::ModelRuntime;
use mlhost_proto::mmesh::runtime_status_response::{MethodInfo, Status as RuntimeState};
use mlhost_proto::mmesh::{
    LoadModelRequest, LoadModelResponse, ModelSizeRequest, ModelSizeResponse,
    PredictModelSizeRequest, PredictModelSizeResponse, RuntimeStatusRequest, RuntimeStatusResponse,
    UnloadModelRequest, UnloadModelResponse,
};
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl ModelRuntime for ModelMesh {
    async fn load_model(
        &self,
        request: Request<LoadModelRequest>,
    ) -> Result<Response<LoadModelResponse>, Status> {
        let request = request.into_inner();
        if request.model_id.is_empty() {
            return Err(Status::invalid_argument("modelId is empty"));
        }
        // Waiting for the id and a permit holds nothing if the caller goes away meanwhile.
        let held = self.inner.ids.lock(&request.model_id).await;
        let permit = self
            .inner
            .loading
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the server is stopping"))?;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let id = request.model_id.clone();
            let outcome = inner.load(request).await;
            drop(permit);
            if let Err(Ok(_)) = answer.send(outcome) {
                // Loaded for a caller that has gone: unloaded before the id is free again.
                inner.unload_held(&id).await;
                tracing::info!(model = %id, "modelmesh: the load's caller went away: model unloaded");
            }
            drop(held);
        });
        let size_in_bytes = answered
            .await
            .map_err(|_| Status::internal("the load ended without an answer"))??;
        Ok(Response::new(LoadModelResponse {
            size_in_bytes,
            max_concurrency: 0,
        }))
    }

    async fn unload_model(
        &self,
        request: Request<UnloadModelRequest>,
    ) -> Result<Response<UnloadModelResponse>, Status> {
        let id = request.into_inner().model_id;
        let _held = self.inner.ids.lock(&id).await;
        self.inner.unload_held(&id).await;
        Ok(Response::new(UnloadModelResponse {}))
    }

    async fn predict_model_size(
        &self,
        request: Request<PredictModelSizeRequest>,
    ) -> Result<Response<PredictModelSizeResponse>, Status> {
        let request = request.into_inner();
        let size_in_bytes = self.inner.predict(&request);
        Ok(Response::new(PredictModelSizeResponse { size_in_bytes }))
    }

    async fn model_size(
        &self,
        request: Request<ModelSizeRequest>,
    ) -> Result<Response<ModelSizeResponse>, Status> {
        let id = request.into_inner().model_id;
        let size = self
            .inner
            .loaded
            .lock()
            .expect("loaded models")
            .get(&id)
            .copied();
        match size {
            Some(size_in_bytes) => Ok(Response::new(ModelSizeResponse { size_in_bytes })),
            None => Err(Status::not_found(format!("model '{id}' is not loaded"))),
        }
    }

    async fn runtime_status(
        &self,
        _: Request<RuntimeStatusRequest>,
    ) -> Result<Response<RuntimeStatusResponse>, Status> {
        if !self.inner.core.is_ready() {
            return Ok(Response::new(RuntimeStatusResponse {
                status: RuntimeState::Starting as i32,
                ..Default::default()
            }));
        }
        // The SPI: whatever ModelMesh loaded before it (re)started is unloaded before READY.
        let purged = self.inner.purge().await;
        if purged > 0 {
            tracing::info!(
                models = purged,
                "modelmesh: runtimeStatus unloaded the models ModelMesh had loaded"
            );
        }
        Ok(Response::new(self.inner.ready_status()))
    }
}

impl Inner {
    /// Loads the model `request` names; its estimated size. The caller holds the id's lock.
    async fn load(self: &Arc<Self>, request: LoadModelRequest) -> Result<u64, Status> {
        let id = request.model_id.clone();
        if self.is_foreign(&id) {
            return Err(Status::failed_precondition(format!(
                "model '{id}' is served from the server's model folder: ModelMesh cannot load a model under its name"
            )));
        }
        let workers = self.options.parallel_workers;
        let resolved = tokio::task::spawn_blocking(move || {
            let read = model_path::Request {
                id: &request.model_id,
                model_type: &request.model_type,
                path: &request.model_path,
                key: &request.model_key,
            };
            model_path::resolve(&read, workers)
        })
        .await
        .map_err(|error| Status::internal(format!("reading the model failed: {error}")))?
        .map_err(Status::invalid_argument)?;
        let MeshModel { model, .. } = &resolved;
        let size = size::estimate(&resolved);
        let started = Instant::now();
        tracing::info!(model = %id, folder = %model.folder.display(), "modelmesh: loading model");
        let loaded = self.repository.load_external(resolved.model).await;
        tracing::info!(
            model = %id,
            ok = loaded.is_ok(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "modelmesh: load finished"
        );
        loaded.map_err(|error| Status::internal(error.to_string()))?;
        self.loaded.lock().expect("loaded models").insert(id, size);
        Ok(size)
    }

    /// The size a model is predicted to take before it is loaded: from its files' size when
    /// ModelMesh gives it (`disk_size_bytes` of `modelKey`) or they are on disk, else the
    /// default size. Quick: reads at most the file sizes of a local folder.
    fn predict(&self, request: &PredictModelSizeRequest) -> u64 {
        let from_key = serde_json::from_str::<serde_json::Value>(&request.model_key)
            .ok()
            .and_then(|key| key.get("disk_size_bytes")?.as_u64());
        let disk_bytes = from_key.or_else(|| {
            let path = std::path::Path::new(&request.model_path);
            let metadata = std::fs::metadata(path).ok()?;
            Some(if metadata.is_dir() {
                size::folder_bytes(path)
            } else {
                metadata.len()
            })
        });
        match disk_bytes {
            Some(bytes) => size::estimate_from(bytes, self.options.parallel_workers, 0),
            None => self.options.default_model_size_bytes,
        }
    }

    /// `runtimeStatus`'s READY answer.
    fn ready_status(&self) -> RuntimeStatusResponse {
        let options = &self.options;
        RuntimeStatusResponse {
            status: RuntimeState::Ready as i32,
            capacity_in_bytes: options.capacity_bytes,
            max_loading_concurrency: options.max_loading_concurrency,
            model_loading_timeout_ms: options.loading_timeout_ms,
            default_model_size_in_bytes: options.default_model_size_bytes,
            runtime_version: format!("mlhost {}", env!("CARGO_PKG_VERSION")),
            numeric_runtime_version: numeric_version(env!("CARGO_PKG_VERSION")),
            method_infos: INFERENCE_METHODS
                .iter()
                .map(|method| {
                    let path = MethodInfo {
                        id_injection_path: vec![1],
                    };
                    (method.to_string(), path)
                })
                .collect(),
            limit_model_concurrency: false,
            allow_any_method: false,
        }
    }
}

/// `major.minor.patch` as one number: major × 10⁶ + minor × 10³ + patch.
fn numeric_version(version: &str) -> u64 {
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|part| part.parse::<u64>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    next() * 1_000_000 + next() * 1_000 + next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_versions() {
        assert_eq!(numeric_version("0.1.0"), 1_000);
        assert_eq!(numeric_version("2.13.7-rc.1"), 2_013_007);
        assert_eq!(numeric_version("x"), 0);
    }
}
