//! Layers every REST request goes through: its metrics and request id (which its log lines
//! carry and the response carries back), the refusal of bodies announced over the limit, and
//! the redirect of a path with a trailing slash.

use super::ROUTES;
use crate::metrics::Metrics;
use crate::protocol::error::error_response;
use crate::protocol::request_id;
use crate::telemetry::request_log::{self, RequestTag};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Counts and times a request by its route, and runs it as the request its id names (the
/// client's `x-request-id`, or a new one: see [`request_log`]), which the response carries back. As MLServer's
/// exporter, requests no route matched and the server's health probes are not counted.
pub(super) async fn observe<Fut: Future<Output = Response>>(
    metrics: &Metrics,
    request: axum::extract::Request,
    next: impl FnOnce(axum::extract::Request) -> Fut,
) -> Response {
    let started = std::time::Instant::now();
    // The route's template (a shared string: no copy per request).
    let path = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .filter(|path| {
            let path = path.as_str();
            !path.ends_with("/v2/health/live") && !path.ends_with("/v2/health/ready")
        })
        .cloned();
    // Methods the API does not use share one label: no series per method a client invents.
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        _ => "OTHER",
    };
    let tag = RequestTag::new(request_id::of(request.headers()), None);
    let recording = path.as_ref().and_then(|path| {
        crate::telemetry::rest::begin(request.headers(), method, path.as_str(), &tag.id)
    });
    let route = path.map(|path| metrics.rest_started(method, path.as_str()));
    let handled = request_log::scope(tag.clone(), next(request));
    let (mut response, recording) = crate::telemetry::Recording::record(recording, handled).await;
    if let Some(recording) = recording {
        crate::telemetry::rest::finish(recording, response.status());
    }
    if let Some(route) = route {
        metrics.rest_finished(route, response.status().as_u16(), started.elapsed());
    }
    if let Ok(value) = header::HeaderValue::from_str(&tag.id) {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    response
}

/// Refuses a body whose announced length is over the limit before reading any of it (a body
/// without a length is cut off at the limit by `DefaultBodyLimit`).
pub(super) async fn reject_oversized<Fut: Future<Output = Response>>(
    max_body_bytes: usize,
    request: axum::extract::Request,
    next: impl FnOnce(axum::extract::Request) -> Fut,
) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match announced {
        Some(length) if length > max_body_bytes as u64 => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body of {length} bytes is over the limit of {max_body_bytes} bytes"
            ),
        ),
        _ => next(request).await,
    }
}

/// A path with a trailing slash that matches a route without it is redirected there (307, as
/// Starlette's router does for MLServer), with its query; no route ends with a slash, so such a
/// path is otherwise 404.
pub(super) async fn redirect_trailing_slash<Fut: Future<Output = Response>>(
    root_path: &str,
    request: axum::extract::Request,
    next: impl FnOnce(axum::extract::Request) -> Fut,
) -> Response {
    let uri = request.uri();
    let path = uri.path();
    let trimmed = path.trim_end_matches('/');
    if !path.ends_with('/') || trimmed.is_empty() || !is_route(trimmed, root_path) {
        return next(request).await;
    }
    let query = uri
        .query()
        .map(|query| format!("?{query}"))
        .unwrap_or_default();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok());
    // Starlette answers with the absolute URL; without a Host, the path alone.
    let location = match host {
        Some(host) => format!("http://{host}{trimmed}{query}"),
        None => format!("{trimmed}{query}"),
    };
    match header::HeaderValue::from_str(&location) {
        Ok(location) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => next(request).await,
    }
}

/// Whether `path` matches a route's template (by any method), with or without `root_path`.
fn is_route(path: &str, root_path: &str) -> bool {
    let root = root_path.trim_end_matches('/');
    let unprefixed = (!root.is_empty())
        .then(|| path.strip_prefix(root))
        .flatten()
        .filter(|rest| rest.starts_with('/'));
    [Some(path), unprefixed]
        .into_iter()
        .flatten()
        .any(|path| ROUTES.iter().any(|route| matches(path, route.path)))
}

/// Whether `path` matches `template`, whose `{...}` segments match any non-empty segment.
fn matches(path: &str, template: &str) -> bool {
    let mut segments = path.split('/');
    let mut parts = template.split('/');
    loop {
        match (segments.next(), parts.next()) {
            (None, None) => return true,
            (Some(segment), Some(part)) if part.starts_with('{') && part.ends_with('}') => {
                if segment.is_empty() {
                    return false;
                }
            }
            (Some(segment), Some(part)) if segment == part => {}
            _ => return false,
        }
    }
}
