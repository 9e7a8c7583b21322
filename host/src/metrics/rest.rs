//! The REST server's series, as starlette_exporter (MLServer's) names them:
//! `{prefix}_requests` and `{prefix}_request_duration_seconds` by method, route template,
//! status and `app_name`, and `{prefix}_requests_in_progress` by method and `app_name`. Each
//! route has slots for its handles, filled when a status is first answered, so that a request
//! bumps them without a family's lock and an idle server exports no series.

use super::{APP_NAME, HistogramFamily, default_family};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The statuses with a slot of their own on each route; others take a family's lock.
const COMMON_STATUSES: [u16; 8] = [200, 400, 404, 413, 422, 500, 503, 504];

/// Labels of REST request metrics: the route template (not the raw path, which would make a
/// series per model name typed by a client), the answer's status, and the app.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestLabels {
    method: String,
    path: String,
    status_code: String,
    app_name: String,
}

/// Labels of in-progress REST requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProgressLabels {
    method: String,
    app_name: String,
}

/// A route as labelled: its method and its template, with MLServer's parameter names.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Route {
    method: String,
    path: String,
}

impl Route {
    fn new(method: &str, template: &str) -> Self {
        Route {
            method: method.to_string(),
            path: mlserver_template(template),
        }
    }

    fn with_status(&self, status: u16) -> RestLabels {
        RestLabels {
            method: self.method.clone(),
            path: self.path.clone(),
            status_code: status.to_string(),
            app_name: APP_NAME.to_string(),
        }
    }
}

/// A route template as MLServer labels it: without the `root_path` prefix (every route starts
/// at `/v2`), with MLServer's parameter names (`{model_name}`, `{model_version}`).
fn mlserver_template(template: &str) -> String {
    let unprefixed = match template.rfind("/v2/") {
        Some(start) => &template[start..],
        None if template.ends_with("/v2") => &template[template.len() - 3..],
        None => template,
    };
    unprefixed
        .replace("{model}", "{model_name}")
        .replace("{version}", "{model_version}")
}

/// A route's slots, one per common status.
struct RouteSeries {
    route: Route,
    statuses: Vec<(u16, OnceLock<(Counter, Histogram)>)>,
}

/// A REST request in progress: leaves the in-progress gauge when dropped.
pub(crate) struct InFlight {
    gauge: Gauge,
    series: Result<Arc<RouteSeries>, Route>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The REST families and the routes' slots.
pub(super) struct RestMetrics {
    requests: Family<RestLabels, Counter>,
    duration: HistogramFamily<RestLabels>,
    in_progress: Family<ProgressLabels, Gauge>,
    /// The in-progress gauges of GET and POST, made on first use.
    progress_slots: [(&'static str, OnceLock<Gauge>); 2],
    /// Routes' slots by path template (then method), filled before serving.
    routes: HashMap<String, Vec<Arc<RouteSeries>>>,
}

impl RestMetrics {
    /// Creates the families and registers them in `registry`, named with `prefix`.
    pub(super) fn register(registry: &mut Registry, prefix: &str) -> Self {
        let rest = RestMetrics {
            requests: Family::default(),
            duration: default_family(),
            in_progress: Family::default(),
            progress_slots: [("GET", OnceLock::new()), ("POST", OnceLock::new())],
            routes: HashMap::new(),
        };
        registry.register(
            format!("{prefix}_requests"),
            "Total HTTP requests",
            rest.requests.clone(),
        );
        registry.register(
            format!("{prefix}_request_duration_seconds"),
            "HTTP request duration, in seconds",
            rest.duration.clone(),
        );
        registry.register(
            format!("{prefix}_requests_in_progress"),
            "Total HTTP requests currently in progress",
            rest.in_progress.clone(),
        );
        rest
    }

    /// Makes the slots of `routes` (method, path template).
    pub(super) fn resolve_routes<'a>(
        &mut self,
        routes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        for (method, path) in routes {
            let series = RouteSeries {
                route: Route::new(method, path),
                statuses: COMMON_STATUSES
                    .iter()
                    .map(|&status| (status, OnceLock::new()))
                    .collect(),
            };
            self.routes
                .entry(path.to_string())
                .or_default()
                .push(Arc::new(series));
        }
    }

    /// The in-progress gauge of `method`.
    fn progress_gauge(&self, method: &str) -> Gauge {
        let make = || {
            self.in_progress
                .get_or_create(&ProgressLabels {
                    method: method.to_string(),
                    app_name: APP_NAME.to_string(),
                })
                .clone()
        };
        match self
            .progress_slots
            .iter()
            .find(|(known, _)| *known == method)
        {
            Some((_, slot)) => slot.get_or_init(make).clone(),
            None => make(),
        }
    }

    /// Marks a request as started (see [`super::Metrics::rest_started`]).
    pub(super) fn started(&self, method: &str, path: &str) -> InFlight {
        // A lookup in a map that never changes: no lock. Unknown routes take the slow path.
        let series = self
            .routes
            .get(path)
            .and_then(|series| series.iter().find(|series| series.route.method == method))
            .cloned()
            .ok_or_else(|| Route::new(method, path));
        let gauge = self.progress_gauge(method);
        gauge.inc();
        InFlight { gauge, series }
    }

    /// Records a request answered with `status` after `took`.
    pub(super) fn finished(&self, in_flight: InFlight, status: u16, took: Duration) {
        let make = |route: &Route| {
            let labels = route.with_status(status);
            (
                self.requests.get_or_create(&labels).clone(),
                self.duration.get_or_create(&labels).clone(),
            )
        };
        let record = |(requests, duration): &(Counter, Histogram)| {
            requests.inc();
            duration.observe(took.as_secs_f64());
        };
        match &in_flight.series {
            Ok(series) => match series.statuses.iter().find(|(known, _)| *known == status) {
                Some((_, slot)) => record(slot.get_or_init(|| make(&series.route))),
                None => record(&make(&series.route)),
            },
            Err(route) => record(&make(route)),
        }
    }
}
