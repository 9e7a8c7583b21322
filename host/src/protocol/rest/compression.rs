//! Responses compressed (gzip or deflate) for the clients whose `Accept-Encoding` asks for it,
//! by tower-http's compression layer: answers of at least [`MIN_SIZE`] bytes only, never
//! server-sent events (each event must reach the client as it is sent). A request without
//! `Accept-Encoding` passes the layer by: nothing is added to its answer.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Response, header};
use futures_util::TryFutureExt;
use futures_util::future::{Either, MapOk};
use std::task::{Context, Poll};
use tower::{Layer, Service};
use tower_http::compression::predicate::{And, NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionBody, ResponseFuture};

/// The smallest answer compressed, in bytes: smaller ones are sent as they are.
pub(crate) const MIN_SIZE: u16 = 1024;

/// Which answers are compressed.
type Compressible = And<SizeAbove, NotForContentType>;

/// Compresses the answers of the requests that accept it (see the module's documentation).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CompressionLayer;

impl<S> Layer<S> for CompressionLayer {
    type Service = Compress<S>;

    fn layer(&self, inner: S) -> Compress<S> {
        let compressible = SizeAbove::new(MIN_SIZE).and(NotForContentType::SSE);
        Compress(Compression::new(inner).compress_when(compressible))
    }
}

/// The service of [`CompressionLayer`].
#[derive(Clone)]
pub(super) struct Compress<S>(Compression<S, Compressible>);

type Compressed = fn(Response<CompressionBody<Body>>) -> Response<Body>;

impl<S> Service<Request> for Compress<S>
where
    S: Service<Request, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, MapOk<ResponseFuture<S::Future, Compressible>, Compressed>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(context)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.headers().contains_key(header::ACCEPT_ENCODING) {
            let boxed: Compressed = |response| response.map(Body::new);
            Either::Right(self.0.call(request).map_ok(boxed))
        } else {
            Either::Left(self.0.get_mut().call(request))
        }
    }
}
