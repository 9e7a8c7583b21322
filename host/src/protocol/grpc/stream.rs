//! `ModelStreamInfer`: each request of the client's stream answered in order, with every
//! response its runtime gives; a failed request is answered with its `error_message` and the
//! stream goes on.

use super::{Grpc, messages, pb};
use crate::core::{STREAM_CAPACITY, ServiceError};
use crate::protocol::error::log_server_error;
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
    tokio::spawn(tracing::Instrument::in_current_span(task));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
}

type Answers = mpsc::Sender<Result<pb::ModelStreamInferResponse, Status>>;

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
                let _ = answers.send(Err(status)).await;
                return;
            }
        };
        let answered = match answer_one(&grpc, &metadata, request, &answers).await {
            Ok(answered) => answered,
            Err(error) => send(&answers, Err(error)).await,
        };
        if !answered {
            return; // the client has gone
        }
    }
}

/// Runs one request of the stream and sends its answers; false when the client has gone.
async fn answer_one(
    grpc: &Grpc,
    metadata: &MetadataMap,
    request: pb::ModelInferRequest,
    answers: &Answers,
) -> Result<bool, ServiceError> {
    let decoded = messages::decode(request, metadata, None, grpc.max_tensor_elements).await?;
    let model = grpc.core.model(&decoded.name, decoded.version())?;
    let raw = decoded.raw;
    let mut replies = grpc
        .core
        .infer_stream(model, decoded.request, decoded.context)?;
    while let Some(reply) = replies.recv().await {
        let answer = match reply {
            Ok(reply) => messages::encode(reply, raw)
                .await
                .map(|(message, _)| message),
            Err(error) => Err(error),
        };
        if !send(answers, answer).await {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Sends one answer (a response, or an error as `error_message`); false when the client has
/// gone.
async fn send(answers: &Answers, answer: Result<pb::ModelInferResponse, ServiceError>) -> bool {
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
    answers.send(Ok(message)).await.is_ok()
}
