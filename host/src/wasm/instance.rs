//! One model instance: a `Store` holding an instantiated runtime and the model it loaded.

use super::bindings::{Runtime, types};
use super::convert;
use super::engine::RuntimeComponent;
use crate::codec::{InferenceRequest, ModelMetadata, Tensor};
use std::path::PathBuf;
use wasmtime::Store;
use wasmtime::component::{ResourceAny, ResourceTable};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

/// Where the guest finds its model folder.
pub const GUEST_MODEL_DIR: &str = "/model";

/// Per-store state: the guest's WASI context (what it may see of the host) and its resources.
pub struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What an instance is created from: the same for every instance of a model.
#[derive(Debug, Clone)]
pub struct ModelContext {
    /// The model's name, for logs.
    pub name: String,
    /// The host folder preopened read-only at [`GUEST_MODEL_DIR`].
    pub host_dir: PathBuf,
    /// The settings given to the runtime's `load`.
    pub settings: convert::GuestSettings,
}

/// Why an instance could not be created.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("cannot open the model folder {}: {source}", dir.display())]
    ModelDir {
        dir: PathBuf,
        source: wasmtime::Error,
    },
    #[error("cannot instantiate the runtime: {0:#}")]
    Instantiate(wasmtime::Error),
    #[error("the runtime rejected the model: {0}")]
    Rejected(String),
    #[error("the runtime trapped while loading the model: {0:#}")]
    Trap(wasmtime::Error),
    #[error("the runtime's metadata is invalid: {0}")]
    Metadata(String),
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The runtime says the request does not fit the model.
    #[error("{0}")]
    InvalidInput(String),
    /// The runtime reported a failure of its own.
    #[error("{0}")]
    Failed(String),
    /// The runtime returned outputs that are not valid tensors.
    #[error("the runtime returned an invalid output: {0}")]
    InvalidOutput(String),
    /// The guest trapped: its Store is unusable and must be replaced.
    #[error("the runtime trapped: {0:#}")]
    Trap(wasmtime::Error),
}

/// A live model instance. Lives on one worker thread; dropped (with its whole Store) after a trap.
pub struct ModelInstance {
    store: Store<InstanceState>,
    runtime: Runtime,
    model: ResourceAny,
}

impl ModelInstance {
    /// Instantiates the runtime in a fresh Store and loads the model; returns the instance and
    /// the model's own metadata.
    pub fn new(
        component: &RuntimeComponent,
        context: &ModelContext,
    ) -> Result<(Self, ModelMetadata), InstanceError> {
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .preopened_dir(&context.host_dir, GUEST_MODEL_DIR, FsPerms::ReadOnly)
            .map_err(|source| InstanceError::ModelDir {
                dir: context.host_dir.clone(),
                source,
            })?;
        let state = InstanceState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(component.pre.engine(), state);
        let runtime = component
            .pre
            .instantiate(&mut store)
            .map_err(InstanceError::Instantiate)?;
        let guest = runtime.mlhost_runtime_model().model();
        let settings = context.settings.to_wit();
        let model = guest
            .call_load(&mut store, &settings)
            .map_err(InstanceError::Trap)?
            .map_err(|error| InstanceError::Rejected(convert::error_message(error)))?;
        let metadata = guest
            .call_metadata(&mut store, model)
            .map_err(InstanceError::Trap)?;
        let metadata = convert::metadata_from_wit(metadata).map_err(InstanceError::Metadata)?;
        Ok((
            ModelInstance {
                store,
                runtime,
                model,
            },
            metadata,
        ))
    }

    /// Runs one request through the model; returns its outputs and response parameters.
    pub fn predict(
        &mut self,
        request: InferenceRequest,
    ) -> Result<(Vec<Tensor>, crate::codec::Parameters), CallError> {
        let request = convert::request_to_wit(request);
        let guest = self.runtime.mlhost_runtime_model().model();
        let response = guest
            .call_predict(&mut self.store, self.model, &request)
            .map_err(CallError::Trap)?
            .map_err(|error| match error {
                types::Error::InvalidInput(message) => CallError::InvalidInput(message),
                other => CallError::Failed(convert::error_message(other)),
            })?;
        convert::response_from_wit(response).map_err(CallError::InvalidOutput)
    }
}
