//! `ModelStreamInfer`: each request of the client's stream answered in order, with every
//! response its runtime gives; a failed request is answered with its `error_message` and the
//! stream goes on.

use super::{Grpc, messages, pb};
use crate::core::{STREAM_CAPACITY, ServiceError, StreamItem};
use crate::protocol::error::log_server_error;
use crate::workers::StreamTicket;
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
    while let Some(StreamItem { reply, ticket }) = replies.recv().await {
        let answer = match reply {
            Ok(reply) => messages::encode(reply, raw)
                .await
                .map(|(message, _)| message),
            Err(error) => Err(error),
        };
        if !send(answers, answer, ticket).await {
            return Ok(false);
        }
    }
    Ok(true)
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
