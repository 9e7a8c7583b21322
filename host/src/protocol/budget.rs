//! The server-wide byte budget ([`ByteBudget`], `max_buffered_mb`) on both front ends: a request
//! holds its body's bytes of the budget from its first byte until it is answered (through its
//! decoding, its wait in the model's queue and its run). A REST body of announced length
//! reserves it whole before it is read; any other body (chunked REST, unary gRPC) as it
//! arrives. A request the budget has no room for is refused at once: 503 `{"error"}` over REST,
//! RESOURCE_EXHAUSTED over gRPC.
//!
//! `ModelStreamInfer`'s body is not counted as it arrives (it lasts as long as the stream): each
//! of its requests holds its size once decoded, until answered (`grpc::stream`), and is answered
//! with the error when the budget has no room; its replies are bounded by the stream's own
//! buffer (`wasm::stream`).

use crate::core::budget::{ByteBudget, OverBudget, Reservation};
use crate::protocol::error::error_response;
use axum::http::{Request, Response, StatusCode, header};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// One request's hold on the budget, shared by its body and the layer that answers it.
#[derive(Debug)]
struct Hold {
    reservation: Mutex<Reservation>,
    /// Why the body was cut, once it was.
    refused: Mutex<Option<OverBudget>>,
}

impl Hold {
    fn new(reservation: Reservation) -> Arc<Hold> {
        Arc::new(Hold {
            reservation: Mutex::new(reservation),
            refused: Mutex::new(None),
        })
    }

    fn refused(&self) -> Option<OverBudget> {
        self.refused.lock().ok().and_then(|refused| refused.clone())
    }
}

/// A request body whose bytes are counted against the budget as they arrive; a frame the
/// budget has no room for fails the body.
struct Budgeted<B> {
    inner: B,
    hold: Arc<Hold>,
    received: u64,
    refusal: fn(OverBudget) -> axum::BoxError,
}

impl<B> Body for Budgeted<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(context) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let grown = match this.hold.reservation.lock() {
                        Ok(mut reservation) => reservation.grow_to(this.received),
                        Err(_) => Ok(()),
                    };
                    if let Err(over) = grown {
                        if let Ok(mut refused) = this.hold.refused.lock() {
                            *refused = Some(over.clone());
                        }
                        return Poll::Ready(Some(Err((this.refusal)(over))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// REST: reserves a request's announced body before it is read (refusing it with 503 when the
/// budget has no room), counts an unannounced one as it arrives, and holds the bytes until the
/// request is answered.
pub(crate) async fn rest<Fut: Future<Output = axum::response::Response>>(
    budget: &Arc<ByteBudget>,
    request: axum::extract::Request,
    next: impl FnOnce(axum::extract::Request) -> Fut,
) -> axum::response::Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let mut reservation = budget.reservation();
    if let Some(length) = announced
        && let Err(over) = reservation.grow(length)
    {
        return busy(&over);
    }
    let hold = Hold::new(reservation);
    let request = request.map(|body| {
        axum::body::Body::new(Budgeted {
            inner: body,
            hold: hold.clone(),
            received: 0,
            refusal: |over| Box::new(over),
        })
    });
    let response = next(request).await;
    match hold.refused() {
        Some(over) => busy(&over),
        None => response,
    }
}

fn busy(over: &OverBudget) -> axum::response::Response {
    error_response(StatusCode::SERVICE_UNAVAILABLE, over.to_string())
}

/// The one gRPC method whose request is a stream (not counted, see the module's notes).
const STREAMING_METHOD: &str = "/inference.GRPCInferenceService/ModelStreamInfer";

/// gRPC: counts a unary call's request against the budget as it arrives (RESOURCE_EXHAUSTED
/// when the budget has no room) and holds it until the call is answered.
#[derive(Debug, Clone)]
pub(crate) struct GrpcBudgetLayer {
    budget: Arc<ByteBudget>,
}

impl GrpcBudgetLayer {
    /// Counts calls against `budget`.
    pub(crate) fn new(budget: Arc<ByteBudget>) -> GrpcBudgetLayer {
        GrpcBudgetLayer { budget }
    }
}

impl<S> tower::Layer<S> for GrpcBudgetLayer {
    type Service = GrpcBudget<S>;

    fn layer(&self, inner: S) -> GrpcBudget<S> {
        GrpcBudget {
            inner,
            budget: self.budget.clone(),
        }
    }
}

/// See [`GrpcBudgetLayer`].
#[derive(Debug, Clone)]
pub(crate) struct GrpcBudget<S> {
    inner: S,
    budget: Arc<ByteBudget>,
}

impl<S, R> tower::Service<Request<tonic::body::Body>> for GrpcBudget<S>
where
    S: tower::Service<Request<tonic::body::Body>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() == STREAMING_METHOD {
            return Box::pin(self.inner.call(request));
        }
        let hold = Hold::new(self.budget.reservation());
        let request = request.map(|body| {
            tonic::body::Body::new(Budgeted {
                inner: body,
                hold: hold.clone(),
                received: 0,
                refusal: |over| Box::new(tonic::Status::resource_exhausted(over.to_string())),
            })
        });
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await;
            drop(hold);
            response
        })
    }
}
