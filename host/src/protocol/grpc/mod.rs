//! The Open Inference Protocol over gRPC (tonic): `inference.GRPCInferenceService`.
//!
//! A thin front end: messages are decoded by [`convert`], run by the same [`InferenceService`]
//! as REST, and encoded back; errors map to gRPC statuses in [`super::error`].

pub mod convert;
pub mod observe;

use super::headers;
use super::model_config::ModelConfig;
use super::{InferenceService, ServiceError};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::{Stream, StreamExt};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status, Streaming};

/// The messages and service generated from `proto/grpc_service.proto`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("inference");
}

use pb::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};

/// gRPC's own default message limit (4 MiB), used when `grpc_max_message_length` is unset.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Options of the gRPC front end.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// The largest message received or sent.
    pub max_message_bytes: usize,
    /// The most elements one tensor may hold.
    pub max_tensor_elements: u64,
}

/// The tonic service for `inference.GRPCInferenceService`, with its limits and gzip on.
pub fn service(
    core: Arc<InferenceService>,
    options: &GrpcOptions,
) -> GrpcInferenceServiceServer<Grpc> {
    GrpcInferenceServiceServer::new(Grpc {
        core,
        max_tensor_elements: options.max_tensor_elements,
    })
    .max_decoding_message_size(options.max_message_bytes)
    .max_encoding_message_size(options.max_message_bytes)
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip)
}

/// Answers a message over the size limit with RESOURCE_EXHAUSTED, as gRPC's own servers do
/// (tonic says OUT_OF_RANGE). The status travels in the headers or in the trailers.
pub fn oversized_message_status<B>(
    mut response: axum::http::Response<B>,
) -> axum::http::Response<OversizedStatus<B>> {
    fix_status(response.headers_mut());
    response.map(|inner| OversizedStatus { inner })
}

fn fix_status(headers: &mut axum::http::HeaderMap) {
    let oversized = headers
        .get("grpc-status")
        .is_some_and(|status| status == "11")
        && headers
            .get("grpc-message")
            .and_then(|message| message.to_str().ok())
            .is_some_and(|message| {
                message
                    .replace("%20", " ")
                    .contains("message length too large")
            });
    if oversized {
        headers.insert("grpc-status", axum::http::HeaderValue::from_static("8"));
    }
}

/// A response body whose trailers get [`fix_status`].
pub struct OversizedStatus<B> {
    inner: B,
}

impl<B: http_body::Body + Unpin> http_body::Body for OversizedStatus<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx).map(|frame| {
            frame.map(|frame| {
                frame.map(|mut frame| {
                    if let Some(trailers) = frame.trailers_mut() {
                        fix_status(trailers);
                    }
                    frame
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The gRPC front end over the inference core.
pub struct Grpc {
    core: Arc<InferenceService>,
    max_tensor_elements: u64,
}

fn version(version: &str) -> Option<&str> {
    (!version.is_empty()).then_some(version)
}

/// A request's gRPC deadline (`grpc-timeout`), as the protocol's `timeout` parameter would give
/// it (the inference core applies the shorter of it and the model's limit).
fn grpc_timeout<T>(request: &Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// A decoded `ModelInferRequest`: the model, the request, and whether it came raw.
struct Decoded {
    name: String,
    version: String,
    request: crate::codec::InferenceRequest,
    raw: bool,
}

impl Grpc {
    /// Decodes a request; the call's deadline becomes its `timeout` (unless it has one) and its
    /// metadata its `headers`.
    fn decode(
        &self,
        request: pb::ModelInferRequest,
        deadline: Option<Duration>,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Decoded, Status> {
        let name = request.model_name.clone();
        let model_version = request.model_version.clone();
        let (mut decoded, raw) = convert::decode_request(request, self.max_tensor_elements)
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        if let Some(deadline) = deadline
            && !decoded.parameters.iter().any(|(name, _)| name == "timeout")
        {
            let micros = i64::try_from(deadline.as_micros())
                .unwrap_or(i64::MAX)
                .max(1);
            decoded.parameters.push((
                "timeout".to_string(),
                crate::codec::ParameterValue::Int64(micros),
            ));
        }
        headers::insert(&mut decoded, &metadata.clone().into_headers());
        Ok(Decoded {
            name,
            version: model_version,
            request: decoded,
            raw,
        })
    }
}

/// The answer of a stream for one of its requests.
fn stream_answer(result: Result<pb::ModelInferResponse, Status>) -> pb::ModelStreamInferResponse {
    match result {
        Ok(response) => pb::ModelStreamInferResponse {
            error_message: String::new(),
            infer_response: Some(response),
        },
        Err(status) => pb::ModelStreamInferResponse {
            error_message: status.message().to_string(),
            infer_response: None,
        },
    }
}

type ResponseStream =
    Pin<Box<dyn Stream<Item = Result<pb::ModelStreamInferResponse, Status>> + Send>>;

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
        let ready = match self.core.model(&request.name, version(&request.version)) {
            Ok(_) => true,
            Err(ServiceError::Unavailable(_)) => false,
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
        let model = self.core.model(&request.name, version(&request.version))?;
        let versions = self.core.versions(&request.name);
        Ok(Response::new(convert::encode_metadata(
            &model.name,
            versions,
            &model.metadata,
        )))
    }

    async fn model_infer(
        &self,
        request: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        let deadline = grpc_timeout(&request);
        let (metadata, _, message) = request.into_parts();
        let decoded = self.decode(message, deadline, &metadata)?;
        let mut response = self
            .core
            .infer(&decoded.name, version(&decoded.version), decoded.request)
            .await?;
        let custom_headers = headers::take(&mut response.parameters);
        let mut reply = Response::new(convert::encode_response(response, decoded.raw));
        reply.metadata_mut().as_mut().extend(custom_headers);
        Ok(reply)
    }

    type ModelStreamInferStream = ResponseStream;

    /// Answers each request of the stream in order, with every response its runtime gives; a
    /// failed request is answered with its `error_message` and the stream goes on.
    async fn model_stream_infer(
        &self,
        request: Request<Streaming<pb::ModelInferRequest>>,
    ) -> Result<Response<Self::ModelStreamInferStream>, Status> {
        let (metadata, _, mut requests) = request.into_parts();
        let grpc = Grpc {
            core: self.core.clone(),
            max_tensor_elements: self.max_tensor_elements,
        };
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(message) = requests.next().await {
                let request = match message {
                    Ok(request) => request,
                    Err(status) => {
                        let _ = sender.send(Err(status)).await;
                        break;
                    }
                };
                let started = grpc.decode(request, None, &metadata).and_then(|decoded| {
                    let responses = grpc
                        .core
                        .infer_stream(&decoded.name, version(&decoded.version), decoded.request)
                        .map_err(Status::from)?;
                    Ok((responses, decoded.raw))
                });
                let (mut responses, raw) = match started {
                    Ok(started) => started,
                    Err(status) => {
                        if sender.send(Ok(stream_answer(Err(status)))).await.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                while let Some(response) = responses.recv().await {
                    let answer = stream_answer(
                        response
                            .map(|mut response| {
                                headers::take(&mut response.parameters);
                                convert::encode_response(response, raw)
                            })
                            .map_err(Status::from),
                    );
                    if sender.send(Ok(answer)).await.is_err() {
                        return; // the client has gone
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
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
        self.core
            .load_model(&request.into_inner().model_name)
            .await?;
        Ok(Response::new(pb::RepositoryModelLoadResponse {}))
    }

    async fn model_config(
        &self,
        request: Request<pb::ModelConfigRequest>,
    ) -> Result<Response<pb::ModelConfigResponse>, Status> {
        let request = request.into_inner();
        let model = self.core.model(&request.name, version(&request.version))?;
        Ok(Response::new(pb::ModelConfigResponse {
            config: Some(convert::encode_config(ModelConfig::of(&model))),
        }))
    }

    async fn model_statistics(
        &self,
        request: Request<pb::ModelStatisticsRequest>,
    ) -> Result<Response<pb::ModelStatisticsResponse>, Status> {
        let request = request.into_inner();
        let models = match (request.name.as_str(), version(&request.version)) {
            ("", _) => self.core.ready_models(None)?,
            (name, Some(version)) => vec![self.core.model(name, Some(version))?],
            (name, None) => self.core.ready_models(Some(name))?,
        };
        Ok(Response::new(pb::ModelStatisticsResponse {
            model_stats: models
                .iter()
                .map(|model| {
                    convert::encode_statistics(
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
}
