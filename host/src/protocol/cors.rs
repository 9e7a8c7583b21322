//! CORS for the REST API, from MLServer's `cors_settings` (Starlette's semantics).

use crate::config::CorsSettings;
use axum::http::{HeaderName, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer, ExposeHeaders};

/// The CORS layer the settings describe. Entries that are not valid header names, methods or
/// origins are left out with a warning.
pub(crate) fn layer(settings: &CorsSettings) -> CorsLayer {
    let any = |list: &[String]| list.iter().any(|entry| entry == "*");
    let origins: Vec<HeaderValue> = valid(&settings.allow_origins, "origin");
    let regex = settings
        .allow_origin_regex
        .as_deref()
        // The whole origin must match, as Starlette's `fullmatch`.
        .and_then(|pattern| regex::Regex::new(&format!("^(?:{pattern})$")).ok());
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
