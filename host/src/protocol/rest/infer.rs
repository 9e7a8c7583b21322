//! Inference over REST: `POST .../infer` (JSON, the binary extension, a raw body) and the
//! server-sent events of `.../infer_stream` and `.../generate_stream`.

use super::body::{decode, encode};
use super::{ModelPath, RestState};
use crate::codec::json;
use crate::core::{RequestContext, ServiceError, StreamItem};
use crate::protocol::binary::{self, BinaryOutputs, BodyLayout};
use crate::protocol::error::{error_response, log_server_error};
use crate::protocol::offload;
use crate::telemetry::request_log;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, header};
use axum::response::{IntoResponse, Response};

/// A request's headers, taken out of it (axum's `HeaderMap` extractor copies them), and its
/// body, read within the body limit.
pub(super) struct HeadersAndBody {
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
}

impl<S: Send + Sync> FromRequest<S> for HeadersAndBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(mut request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = std::mem::take(request.headers_mut());
        let body = Bytes::from_request(request, state).await;
        Ok(HeadersAndBody { headers, body })
    }
}

/// `POST /v2/models/{model}[/versions/{version}]/infer` (and `/generate`).
pub(super) async fn infer(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
    HeadersAndBody { headers, body }: HeadersAndBody,
) -> Result<Response, ServiceError> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return Ok(error_response(rejection.status(), rejection.body_text())),
    };
    crate::telemetry::mark_received();
    // The model is looked up once, before the body is decoded: an unknown model fails fast.
    let model = state.service.model(&path.model, path.version.as_deref())?;
    let layout = BodyLayout::from_header(
        headers
            .get(binary::HEADER_LENGTH)
            .map(|value| value.to_str().unwrap_or("?")),
    )?;
    let raw_inputs = (layout == BodyLayout::Raw).then(|| model.metadata.inputs.clone());
    let budget = state.service.budget();
    let (mut request, _decompressed) =
        decode(body, &headers, &state.options, layout, raw_inputs, budget).await?;
    let binary_outputs = BinaryOutputs::take_from(&mut request)?;
    let context = RequestContext::new(&mut request, headers, None);
    crate::telemetry::mark_decoded(&path.model, path.version.as_deref());
    let reply = state.service.infer(&model, request, context).await?;
    drop(model);
    let encoded = encode(reply.response, binary_outputs).await?;
    let mut answer = match encoded.json_length {
        Some(length) => (
            [
                (
                    header::CONTENT_TYPE,
                    binary::BINARY_CONTENT_TYPE.to_string(),
                ),
                (
                    HeaderName::from_static(binary::HEADER_LENGTH),
                    length.to_string(),
                ),
            ],
            encoded.body,
        )
            .into_response(),
        None => ([(header::CONTENT_TYPE, "application/json")], encoded.body).into_response(),
    };
    answer
        .headers_mut()
        .extend(crate::protocol::response_headers(reply.headers));
    Ok(answer)
}

/// `POST .../infer_stream` (and `/generate_stream`): server-sent events, one `data: {json}`
/// event per response; an error after the first event arrives as a `data: {"error": ...}`
/// event that ends the stream.
pub(super) async fn infer_stream(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
    HeadersAndBody { headers, body }: HeadersAndBody,
) -> Result<Response, ServiceError> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return Ok(error_response(rejection.status(), rejection.body_text())),
    };
    let model = state.service.model(&path.model, path.version.as_deref())?;
    let budget = state.service.budget();
    let (mut request, _decompressed) = decode(
        body,
        &headers,
        &state.options,
        BodyLayout::Json,
        None,
        budget,
    )
    .await?;
    let context = RequestContext::new(&mut request, headers, None);
    let replies = state.service.infer_stream(model, request, context)?;
    // Events are encoded as hyper polls the body, outside the handler: as the request, in its
    // span (when debug logging made one).
    let (tag, span) = (request_log::current(), tracing::Span::current());
    let events = futures_util::StreamExt::then(
        tokio_stream::wrappers::ReceiverStream::new(replies),
        move |item| {
            let event = tracing::Instrument::instrument(event(item), span.clone());
            request_log::within(tag.clone(), event)
        },
    );
    let events = futures_util::StreamExt::map(events, Ok::<_, std::convert::Infallible>);
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(events),
    )
        .into_response())
}

/// One server-sent event: the reply's JSON (encoded on a blocking thread when large), or the
/// error's. The event keeps the reply's hold on the stream's buffer until the connection has
/// written it (and dropped it).
async fn event(item: StreamItem) -> Bytes {
    let encoded = match item.reply {
        Ok(reply) => {
            let bytes = reply
                .response
                .outputs
                .iter()
                .map(|output| output.data.len())
                .sum();
            offload("encoding", bytes, move || {
                json::encode_response(&reply.response, |_| false)
                    .map(|encoded| encoded.body)
                    .map_err(|error| {
                        ServiceError::internal(error.to_string(), Some(Box::new(error)))
                    })
            })
            .await
        }
        Err(error) => Err(error),
    };
    let json = encoded.unwrap_or_else(|error| {
        log_server_error(&error);
        error_json(&error.to_string())
    });
    let mut event = Vec::with_capacity(json.len() + 8);
    event.extend_from_slice(b"data: ");
    event.extend_from_slice(&json);
    event.extend_from_slice(b"\n\n");
    match item.ticket {
        Some(ticket) => Bytes::from_owner(Event {
            event,
            _ticket: ticket,
        }),
        None => Bytes::from(event),
    }
}

/// An encoded event holding its reply's bytes of the stream's buffer.
struct Event {
    event: Vec<u8>,
    _ticket: crate::workers::StreamTicket,
}

impl AsRef<[u8]> for Event {
    fn as_ref(&self) -> &[u8] {
        &self.event
    }
}

fn error_json(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default()
}
