//! `ModelStreamInfer`: each request of the client's stream answered in order, with every
//! response its runtime gives; a failed request is answered with its `error_message` and the
//! stream goes on. A request may ask for Triton's empty final response.

use super::{Grpc, messages, pb};
use crate::codec::ParameterValue;
use crate::core::{STREAM_CAPACITY, ServiceError, StreamItem};
use crate::protocol::error::log_server_error;
use crate::workers::StreamTicket;
use std::collections::HashMap;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::metadata::MetadataMap;
use tonic::{Status, Streaming};

/// The answers of a stream.
pub(super) type AnswerStream =
    Pin<Box<dyn Stream<Item = Result<pb::ModelStreamInferResponse, Status>> + Send>>;

/// Starts answering a stream's requests; the answers come on the returned stream.
pub(super) fn answer_stream(
    grpc: Grpc,
    metadata: MetadataMap,
    requests: Streaming<pb::ModelInferRequest>,
) -> AnswerStream {
    let (sender, receiver) = mpsc::channel(STREAM_CAPACITY);
    // The call's span: what its requests log names the call.
    let task = answer_all(grpc, metadata, requests, sender);
    tokio::spawn(crate::telemetry::request_log::propagate(task));
    // A response's hold on its stream's buffer ends as tonic takes it to encode (what tonic
    // and HTTP/2 hold beyond that is bounded by their own buffers and windows).
    let answers = tokio_stream::wrappers::ReceiverStream::new(receiver);
    Box::pin(answers.map(|(answer, _ticket)| answer))
}

/// An answer, with the hold its response has on the stream's buffer.
type Answer = (
    Result<pb::ModelStreamInferResponse, Status>,
    Option<StreamTicket>,
);
type Answers = mpsc::Sender<Answer>;

/// Answers the requests in order until the client's stream ends or the client leaves.
async fn answer_all(
    grpc: Grpc,
    metadata: MetadataMap,
    mut requests: Streaming<pb::ModelInferRequest>,
    answers: Answers,
) {
    while let Some(message) = requests.next().await {
        let request = match message {
            Ok(request) => request,
            Err(status) => {
                let _ = answers.send((Err(status), None)).await;
                return;
            }
        };
        // Each request holds its size of the server's byte budget until it is answered; one
        // the budget has no room for is answered with the error, and the stream goes on.
        let mut held = grpc.core.budget().reservation();
        let answer = match held.grow(prost::Message::encoded_len(&request) as u64) {
            Ok(()) => answer_one(&grpc, &metadata, request, &answers).await,
            Err(over) => Err(over.into()),
        };
        drop(held);
        let answered = match answer {
            Ok(answered) => answered,
            Err(error) => send(&answers, Err(error), None).await,
        };
        if !answered {
            return; // the client has gone
        }
    }
}

/// Runs one request of the stream and sends its answers; false when the client has gone.
///
/// With Triton's `triton_enable_empty_final_response` (tritonclient's
/// `enable_empty_final_response=True`), each response carries `triton_final_response: false`
/// and an empty response with `triton_final_response: true` follows the last one.
async fn answer_one(
    grpc: &Grpc,
    metadata: &MetadataMap,
    request: pb::ModelInferRequest,
    answers: &Answers,
) -> Result<bool, ServiceError> {
    let mut decoded =
        messages::decode(request, metadata.clone(), None, grpc.max_tensor_elements).await?;
    let final_response = take_final_response_flag(&mut decoded.request.parameters);
    let model = grpc.core.model(&decoded.name, decoded.version())?;
    let last = final_response.then(|| pb::ModelInferResponse {
        model_name: model.name.clone(),
        model_version: model.version.clone().unwrap_or_default(),
        id: decoded.request.id.clone().unwrap_or_default(),
        parameters: final_flag(true),
        ..Default::default()
    });
    let raw = decoded.raw;
    let mut replies = grpc
        .core
        .infer_stream(model, decoded.request, decoded.context)?;
    while let Some(StreamItem { reply, ticket }) = replies.recv().await {
        let answer = match reply {
            Ok(reply) => messages::encode(reply, raw).await.map(|(mut message, _)| {
                if final_response {
                    message.parameters.extend(final_flag(false));
                }
                message
            }),
            Err(error) => Err(error),
        };
        if !send(answers, answer, ticket).await {
            return Ok(false);
        }
    }
    match last {
        Some(last) => Ok(send(answers, Ok(last), None).await),
        None => Ok(true),
    }
}

/// The request parameter by which a client asks for the empty final response (Triton's).
const ENABLE_FINAL_RESPONSE: &str = "triton_enable_empty_final_response";

/// Whether the request asks for the empty final response; the parameter is the front end's,
/// so it is taken out before the runtime sees the request.
fn take_final_response_flag(parameters: &mut crate::codec::Parameters) -> bool {
    let mut enabled = false;
    parameters.retain(|(name, value)| {
        if name != ENABLE_FINAL_RESPONSE {
            return true;
        }
        enabled = matches!(value, ParameterValue::Bool(true));
        false
    });
    enabled
}

/// The response parameter `triton_final_response` with `value`.
fn final_flag(value: bool) -> HashMap<String, pb::InferParameter> {
    let flag = pb::InferParameter {
        parameter_choice: Some(pb::infer_parameter::ParameterChoice::BoolParam(value)),
    };
    HashMap::from([("triton_final_response".to_string(), flag)])
}

/// Sends one answer (a response, or an error as `error_message`) with its response's hold on
/// the stream's buffer; false when the client has gone.
async fn send(
    answers: &Answers,
    answer: Result<pb::ModelInferResponse, ServiceError>,
    ticket: Option<StreamTicket>,
) -> bool {
    let message = match answer {
        Ok(response) => pb::ModelStreamInferResponse {
            error_message: String::new(),
            infer_response: Some(response),
        },
        Err(error) => {
            log_server_error(&error);
            pb::ModelStreamInferResponse {
                error_message: error.to_string(),
                infer_response: None,
            }
        }
    };
    answers.send((Ok(message), ticket)).await.is_ok()
}
