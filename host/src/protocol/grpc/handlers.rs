//! The unary calls of `inference.GRPCInferenceService`: decode, call the core, encode.

use super::model::{encode_config, encode_metadata, encode_statistics};
use super::pb::grpc_inference_service_server::GrpcInferenceService;
use super::stream::{AnswerStream, answer_stream};
use super::{Grpc, grpc_timeout, messages, pb, version};
use crate::codec::shared_memory;
use crate::core::{ErrorKind, Readiness};
use crate::protocol::model_config::ModelConfig;
use tonic::{Request, Response, Status, Streaming};

#[tonic::async_trait]
impl GrpcInferenceService for Grpc {
    async fn server_live(
        &self,
        _: Request<pb::ServerLiveRequest>,
    ) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        Ok(Response::new(pb::ServerReadyResponse {
            ready: self.core.is_ready(),
        }))
    }

    async fn model_ready(
        &self,
        request: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        let request = request.into_inner();
        // As Triton: an unknown or unloaded model (or version) is not ready, not NOT_FOUND.
        let ready = match self
            .core
            .readiness(&request.name, version(&request.version))
        {
            Ok(readiness) => readiness == Readiness::Ready,
            Err(error) if error.kind() == ErrorKind::NotFound => false,
            Err(error) => return Err(error.into()),
        };
        Ok(Response::new(pb::ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        let info = self.core.info();
        Ok(Response::new(pb::ServerMetadataResponse {
            name: info.name.clone(),
            version: info.version.clone(),
            extensions: info.extensions.clone(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        let request = request.into_inner();
        let described = self
            .core
            .describe(&request.name, version(&request.version))?;
        Ok(Response::new(encode_metadata(
            &described.model.name,
            described.versions,
            &described.model.metadata,
        )))
    }

    async fn model_infer(
        &self,
        request: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let timeout = grpc_timeout(metadata.as_ref());
        crate::telemetry::mark_received();
        let decoded =
            messages::decode(message, metadata, timeout, self.max_tensor_elements).await?;
        let model = self.core.model(&decoded.name, decoded.version())?;
        crate::telemetry::mark_decoded(&decoded.name, decoded.version());
        let reply = self
            .core
            .infer(&model, decoded.request, decoded.context)
            .await?;
        drop(model);
        let (message, headers) = messages::encode(reply, decoded.raw).await?;
        let small = prost::Message::encoded_len(&message) < super::MIN_COMPRESSED_BYTES;
        let mut response = Response::new(message);
        messages::add_metadata(response.metadata_mut(), headers);
        if small {
            // Not worth compressing, whatever the client accepts.
            let uncompressed = tonic::codec::SingleMessageCompressionOverride::Disable;
            response.extensions_mut().insert(uncompressed);
        }
        Ok(response)
    }

    async fn model_stream_infer(
        &self,
        request: Request<Streaming<pb::ModelInferRequest>>,
    ) -> Result<Response<AnswerStream>, Status> {
        let (metadata, _, requests) = request.into_parts();
        Ok(Response::new(answer_stream(
            self.clone(),
            metadata,
            requests,
        )))
    }

    async fn repository_index(
        &self,
        request: Request<pb::RepositoryIndexRequest>,
    ) -> Result<Response<pb::RepositoryIndexResponse>, Status> {
        let entries = self
            .core
            .repository_index(request.into_inner().ready)
            .await?;
        Ok(Response::new(pb::RepositoryIndexResponse {
            models: entries
                .into_iter()
                .map(|entry| pb::repository_index_response::ModelIndex {
                    name: entry.name,
                    version: entry.version.unwrap_or_default(),
                    state: entry.state.to_string(),
                    reason: entry.reason,
                })
                .collect(),
        }))
    }

    async fn repository_model_load(
        &self,
        request: Request<pb::RepositoryModelLoadRequest>,
    ) -> Result<Response<pb::RepositoryModelLoadResponse>, Status> {
        let request = request.into_inner();
        let load = load_request(request.parameters)?;
        self.core.load_model_with(&request.model_name, load).await?;
        Ok(Response::new(pb::RepositoryModelLoadResponse {}))
    }

    async fn model_config(
        &self,
        request: Request<pb::ModelConfigRequest>,
    ) -> Result<Response<pb::ModelConfigResponse>, Status> {
        let request = request.into_inner();
        let model = self.core.model(&request.name, version(&request.version))?;
        Ok(Response::new(pb::ModelConfigResponse {
            config: Some(encode_config(ModelConfig::of(&model))),
        }))
    }

    async fn log_settings(
        &self,
        request: Request<pb::LogSettingsRequest>,
    ) -> Result<Response<pb::LogSettingsResponse>, Status> {
        crate::telemetry::grpc::log_settings(request.into_inner()).map(Response::new)
    }

    async fn trace_setting(
        &self,
        request: Request<pb::TraceSettingRequest>,
    ) -> Result<Response<pb::TraceSettingResponse>, Status> {
        let request = request.into_inner();
        if !request.model_name.is_empty() {
            self.core.model(&request.model_name, None)?;
        }
        crate::telemetry::grpc::trace_setting(request).map(Response::new)
    }

    async fn model_statistics(
        &self,
        request: Request<pb::ModelStatisticsRequest>,
    ) -> Result<Response<pb::ModelStatisticsResponse>, Status> {
        let request = request.into_inner();
        let name = (!request.name.is_empty()).then_some(request.name.as_str());
        let models = self
            .core
            .statistics_models(name, version(&request.version))?;
        Ok(Response::new(pb::ModelStatisticsResponse {
            model_stats: models
                .iter()
                .map(|model| {
                    encode_statistics(
                        &model.name,
                        model.version.as_deref(),
                        model.stats.snapshot(),
                    )
                })
                .collect(),
        }))
    }

    async fn repository_model_unload(
        &self,
        request: Request<pb::RepositoryModelUnloadRequest>,
    ) -> Result<Response<pb::RepositoryModelUnloadResponse>, Status> {
        self.core
            .unload_model(&request.into_inner().model_name)
            .await?;
        Ok(Response::new(pb::RepositoryModelUnloadResponse {}))
    }

    async fn system_shared_memory_status(
        &self,
        _: Request<pb::SystemSharedMemoryStatusRequest>,
    ) -> Result<Response<pb::SystemSharedMemoryStatusResponse>, Status> {
        Err(Status::unimplemented(shared_memory::UNSUPPORTED))
    }

    async fn system_shared_memory_register(
        &self,
        _: Request<pb::SystemSharedMemoryRegisterRequest>,
    ) -> Result<Response<pb::SystemSharedMemoryRegisterResponse>, Status> {
        Err(Status::unimplemented(shared_memory::UNSUPPORTED))
    }

    async fn system_shared_memory_unregister(
        &self,
        _: Request<pb::SystemSharedMemoryUnregisterRequest>,
    ) -> Result<Response<pb::SystemSharedMemoryUnregisterResponse>, Status> {
        Err(Status::unimplemented(shared_memory::UNSUPPORTED))
    }

    async fn cuda_shared_memory_status(
        &self,
        _: Request<pb::CudaSharedMemoryStatusRequest>,
    ) -> Result<Response<pb::CudaSharedMemoryStatusResponse>, Status> {
        Err(Status::unimplemented(shared_memory::UNSUPPORTED))
    }

    async fn cuda_shared_memory_register(
        &self,
        _: Request<pb::CudaSharedMemoryRegisterRequest>,
    ) -> Result<Response<pb::CudaSharedMemoryRegisterResponse>, Status> {
        Err(Status::unimplemented(shared_memory::UNSUPPORTED))
    }

    async fn cuda_shared_memory_unregister(
        &self,
        _: Request<pb::CudaSharedMemoryUnregisterRequest>,
    ) -> Result<Response<pb::CudaSharedMemoryUnregisterResponse>, Status> {
        Err(Status::unimplemented(shared_memory::UNSUPPORTED))
    }
}

/// A load's parameters (Triton's repository extension): `config` (a string of JSON) and
/// `file:<path>` (bytes).
fn load_request(
    parameters: std::collections::HashMap<String, pb::ModelRepositoryParameter>,
) -> Result<crate::repository::LoadRequest, Status> {
    use pb::model_repository_parameter::ParameterChoice;
    let mut request = crate::repository::LoadRequest::default();
    for (key, parameter) in parameters {
        let quoted = crate::codec::quoted(&key);
        match (key.strip_prefix("file:"), parameter.parameter_choice) {
            (None, Some(ParameterChoice::StringParam(config))) if key == "config" => {
                request.config = Some(config);
            }
            (None, _) if key == "config" => {
                return Err(Status::invalid_argument(
                    "parameter 'config' is not a string_param of JSON",
                ));
            }
            (Some(path), Some(ParameterChoice::BytesParam(bytes))) => {
                request.files.push((path.to_string(), bytes));
            }
            (Some(_), _) => {
                return Err(Status::invalid_argument(format!(
                    "parameter '{quoted}' is not a bytes_param"
                )));
            }
            (None, _) => {
                return Err(Status::invalid_argument(format!(
                    "unsupported load parameter '{quoted}': mlhost reads 'config' and 'file:<path>'"
                )));
            }
        }
    }
    Ok(request)
}
