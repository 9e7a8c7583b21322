//! CORS for the REST API, from MLServer's `cors_settings` (Starlette's semantics): tower-http's
//! layer answers allowed preflights and adds the headers; [`refuse_preflight`] answers a
//! preflight the settings do not allow with 400, as Starlette's `CORSMiddleware` does.

use crate::config::CorsSettings;
use crate::protocol::error::error_response;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer, ExposeHeaders};

/// The request headers a browser may always send (the CORS-safelisted ones Starlette adds).
const SAFELISTED_HEADERS: [&str; 4] = [
    "accept",
    "accept-language",
    "content-language",
    "content-type",
];

/// What a preflight is checked against, from the settings.
pub(crate) struct Preflight {
    any_origin: bool,
    origins: Vec<String>,
    regex: Option<regex::Regex>,
    any_method: bool,
    methods: Vec<String>,
    any_header: bool,
    headers: Vec<String>,
}

impl Preflight {
    /// The checks `settings` describe.
    pub(crate) fn new(settings: &CorsSettings) -> Arc<Self> {
        let any = |list: &[String]| list.iter().any(|entry| entry == "*");
        let mut headers: Vec<String> = settings
            .allow_headers
            .iter()
            .map(|header| header.to_ascii_lowercase())
            .collect();
        headers.extend(SAFELISTED_HEADERS.iter().map(|header| header.to_string()));
        Arc::new(Preflight {
            any_origin: any(&settings.allow_origins),
            origins: settings.allow_origins.clone(),
            regex: origin_regex(settings),
            any_method: any(&settings.allow_methods),
            methods: settings.allow_methods.clone(),
            any_header: any(&settings.allow_headers),
            headers,
        })
    }

    /// What a preflight asks that the settings do not allow (Starlette's words), if anything.
    fn failures(
        &self,
        origin: &str,
        method: &str,
        requested_headers: Option<&str>,
    ) -> Vec<&'static str> {
        let mut failures = Vec::new();
        let origin_allowed = self.any_origin
            || self.origins.iter().any(|allowed| allowed == origin)
            || self
                .regex
                .as_ref()
                .is_some_and(|regex| regex.is_match(origin));
        if !origin_allowed {
            failures.push("origin");
        }
        if !self.any_method && !self.methods.iter().any(|allowed| allowed == method) {
            failures.push("method");
        }
        let headers_allowed = self.any_header
            || requested_headers.is_none_or(|requested| {
                requested
                    .split(',')
                    .map(|header| header.trim().to_ascii_lowercase())
                    .filter(|header| !header.is_empty())
                    .all(|header| self.headers.contains(&header))
            });
        if !headers_allowed {
            failures.push("headers");
        }
        failures
    }
}

/// Answers a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) that the
/// settings do not allow with 400, saying what is disallowed; lets every other request through.
pub(crate) async fn refuse_preflight(
    preflight: Arc<Preflight>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let text = |name: HeaderName| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let origin = text(header::ORIGIN);
    let method = text(header::ACCESS_CONTROL_REQUEST_METHOD);
    if request.method() == Method::OPTIONS
        && let (Some(origin), Some(method)) = (origin, method)
    {
        let requested = text(header::ACCESS_CONTROL_REQUEST_HEADERS);
        let failures = preflight.failures(&origin, &method, requested.as_deref());
        if !failures.is_empty() {
            return error_response(
                StatusCode::BAD_REQUEST,
                format!("Disallowed CORS {}", failures.join(", ")),
            );
        }
    }
    next.run(request).await
}

/// The settings' origin regex, which the whole origin must match (Starlette's `fullmatch`).
fn origin_regex(settings: &CorsSettings) -> Option<regex::Regex> {
    settings
        .allow_origin_regex
        .as_deref()
        .and_then(|pattern| regex::Regex::new(&format!("^(?:{pattern})$")).ok())
}

/// The CORS layer the settings describe. Entries that are not valid header names, methods or
/// origins are left out with a warning.
pub(crate) fn layer(settings: &CorsSettings) -> CorsLayer {
    let any = |list: &[String]| list.iter().any(|entry| entry == "*");
    let origins: Vec<HeaderValue> = valid(&settings.allow_origins, "origin");
    let regex = origin_regex(settings);
    let allow_origin = if any(&settings.allow_origins) && !settings.allow_credentials {
        AllowOrigin::any()
    } else {
        // With credentials, `*` may not be sent back: the request's own origin is mirrored.
        let wildcard = any(&settings.allow_origins);
        AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            wildcard
                || origins.contains(origin)
                || regex
                    .as_ref()
                    .is_some_and(|regex| origin.to_str().is_ok_and(|origin| regex.is_match(origin)))
        })
    };
    let allow_methods = if any(&settings.allow_methods) {
        AllowMethods::mirror_request()
    } else {
        AllowMethods::list(valid::<Method>(&settings.allow_methods, "method"))
    };
    let allow_headers = if any(&settings.allow_headers) {
        AllowHeaders::mirror_request()
    } else {
        AllowHeaders::list(valid::<HeaderName>(&settings.allow_headers, "header"))
    };
    let expose_headers = if any(&settings.expose_headers) && !settings.allow_credentials {
        ExposeHeaders::any()
    } else {
        ExposeHeaders::list(valid::<HeaderName>(&settings.expose_headers, "header"))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(allow_methods)
        .allow_headers(allow_headers)
        .expose_headers(expose_headers)
        .allow_credentials(settings.allow_credentials)
        .max_age(Duration::from_secs(settings.max_age))
}

/// The entries of `list` that parse as `T` (not `*`), warning of the others.
fn valid<T: std::str::FromStr>(list: &[String], what: &str) -> Vec<T> {
    list.iter()
        .filter(|entry| *entry != "*")
        .filter_map(|entry| match entry.parse() {
            Ok(value) => Some(value),
            Err(_) => {
                tracing::warn!("cors_settings: '{entry}' is not a valid {what}; left out");
                None
            }
        })
        .collect()
}
