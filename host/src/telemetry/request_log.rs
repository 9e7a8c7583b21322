//! The request a log line is about: its id (and gRPC method) travel with the request, and a
//! `request` span carrying them is made only when a line about the request is written — its
//! failure, the runtime's output, its instance's events — instead of for every request.
//!
//! The front ends' layers run each request in [`scope`]: a task-local tag (a few pointer swaps
//! per poll) and, only when debug logging is on, the `request` span itself, so that the stack's
//! own debug lines name the request too. The workers carry the tag to their thread for the call
//! ([`on_thread`]); a line about the request is written in [`in_span`]. The lines read as they
//! did with a span per request: `request{id=...}: ...`, or `"span": {"id": ...}` in JSON.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

/// A request's id, and its gRPC method (none over REST).
#[derive(Debug)]
pub(crate) struct RequestTag {
    /// The request's id (the client's `x-request-id`, or a new one).
    pub id: String,
    /// The gRPC method called.
    pub method: Option<String>,
}

impl RequestTag {
    /// The tag of a request with `id`, over gRPC's `method` if any.
    pub(crate) fn new(id: String, method: Option<String>) -> Arc<Self> {
        Arc::new(RequestTag { id, method })
    }

    /// The request's span (made at `error` level, so that it is on whatever line is written).
    fn span(&self) -> tracing::Span {
        let span = tracing::error_span!("request", id = %self.id, method = tracing::field::Empty);
        if let Some(method) = &self.method {
            span.record("method", method.as_str());
        }
        span
    }

    /// The span every request runs in when debug logging is on (else a disabled one, at the
    /// cost of a level check).
    fn debug_span(&self) -> tracing::Span {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return tracing::Span::none();
        }
        let span = tracing::debug_span!("request", id = %self.id, method = tracing::field::Empty);
        if let Some(method) = &self.method {
            span.record("method", method.as_str());
        }
        span
    }
}

tokio::task_local! {
    static REQUEST: Arc<RequestTag>;
}

thread_local! {
    /// The request a synchronous call on this thread serves (a worker's call).
    static ON_THREAD: RefCell<Option<Arc<RequestTag>>> = const { RefCell::new(None) };
}

/// Runs `future` (a request's handling) as the request `tag` names.
pub(crate) fn scope<F: Future>(tag: Arc<RequestTag>, future: F) -> impl Future<Output = F::Output> {
    let span = tag.debug_span();
    REQUEST.scope(tag, tracing::Instrument::instrument(future, span))
}

/// The request the current task or thread serves, if any.
pub(crate) fn current() -> Option<Arc<RequestTag>> {
    REQUEST
        .try_with(Arc::clone)
        .ok()
        .or_else(|| ON_THREAD.with(|tag| tag.borrow().clone()))
}

/// Runs `future` (work a request's task hands to another task) as the current request, if any,
/// and in the current span.
pub(crate) fn propagate<F: Future>(future: F) -> impl Future<Output = F::Output> {
    within(current(), tracing::Instrument::in_current_span(future))
}

/// Runs `future` as the request `tag` names (none: as no request in particular).
pub(crate) async fn within<F: Future>(tag: Option<Arc<RequestTag>>, future: F) -> F::Output {
    match tag {
        Some(tag) => REQUEST.scope(tag, future).await,
        None => future.await,
    }
}

/// Runs `call` on this thread as the request `tag` names (none: no request, as for a batch).
pub(crate) fn on_thread<R>(tag: Option<Arc<RequestTag>>, call: impl FnOnce() -> R) -> R {
    /// Puts the thread's previous tag back, also when `call` unwinds.
    struct Restore(Option<Arc<RequestTag>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            ON_THREAD.with(|tag| *tag.borrow_mut() = previous);
        }
    }
    let _restore = Restore(ON_THREAD.with(|current| current.replace(tag)));
    call()
}

/// Writes a log line (`log`) about the current request in its span: the request's own span
/// when debug logging made one, else one made now; no span outside a request.
pub(crate) fn in_span<R>(log: impl FnOnce() -> R) -> R {
    let in_request_span = tracing::Span::current()
        .metadata()
        .is_some_and(|metadata| metadata.name() == "request");
    match current() {
        Some(tag) if !in_request_span => tag.span().in_scope(log),
        _ => log(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_request_is_known_in_its_task_its_spawned_work_and_a_worker_s_call() {
        assert!(current().is_none());
        let tag = RequestTag::new("r-1".into(), Some("ModelInfer".into()));
        let seen = scope(tag.clone(), async {
            let spawned = tokio::spawn(propagate(async { current().map(|tag| tag.id.clone()) }));
            (current().map(|tag| tag.id.clone()), spawned.await.unwrap())
        })
        .await;
        assert_eq!(seen, (Some("r-1".into()), Some("r-1".into())));
        assert!(current().is_none());

        let on_worker = std::thread::spawn(move || {
            let inside = on_thread(Some(tag), || current().map(|tag| tag.id.clone()));
            (inside, current().is_none())
        })
        .join()
        .unwrap();
        assert_eq!(on_worker, (Some("r-1".into()), true));
    }
}
