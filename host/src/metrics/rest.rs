//! The REST server's series: requests by method, route template and status, their latency,
//! and the requests in progress; with each route's handles resolved ahead for the statuses it
//! commonly answers, so that a request bumps them without a family's lock.

use super::{HistogramFamily, seconds_family};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The statuses whose REST series are resolved ahead.
const COMMON_STATUSES: [u16; 8] = [200, 400, 404, 413, 422, 500, 503, 504];

/// Labels of REST request metrics: the route template (not the raw path, which would make a
/// series per model name typed by a client) and the answer's status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestLabels {
    method: String,
    path: String,
    status_code: String,
}

/// Labels of in-flight REST requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestRouteLabels {
    method: String,
    path: String,
}

impl RestRouteLabels {
    fn with_status(&self, status: u16) -> RestLabels {
        RestLabels {
            method: self.method.clone(),
            path: self.path.clone(),
            status_code: status.to_string(),
        }
    }
}

/// A REST route's series, resolved ahead.
struct RouteSeries {
    route: RestRouteLabels,
    in_progress: Gauge,
    statuses: Vec<(u16, Counter, Histogram)>,
}

/// A REST request in progress: leaves the in-progress gauge when dropped.
pub(crate) struct InFlight {
    gauge: Gauge,
    series: Result<Arc<RouteSeries>, RestRouteLabels>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The REST families and the routes' series resolved ahead.
pub(super) struct RestMetrics {
    requests: Family<RestLabels, Counter>,
    duration: HistogramFamily<RestLabels>,
    in_progress: Family<RestRouteLabels, Gauge>,
    /// Routes' series by path template (then method), filled before serving.
    routes: HashMap<String, Vec<Arc<RouteSeries>>>,
}

impl RestMetrics {
    /// Creates the families and registers them in `registry`, named with `prefix`.
    pub(super) fn register(registry: &mut Registry, prefix: &str) -> Self {
        let rest = RestMetrics {
            requests: Family::default(),
            duration: seconds_family(),
            in_progress: Family::default(),
            routes: HashMap::new(),
        };
        registry.register(
            format!("{prefix}_requests"),
            "REST requests, by method, route and status code",
            rest.requests.clone(),
        );
        registry.register(
            format!("{prefix}_requests_duration_seconds"),
            "Latency of REST requests, by method, route and status code",
            rest.duration.clone(),
        );
        registry.register(
            format!("{prefix}_requests_in_progress"),
            "REST requests being answered, by method and route",
            rest.in_progress.clone(),
        );
        rest
    }

    /// Resolves ahead the series of `routes` (method, path template).
    pub(super) fn resolve_routes<'a>(
        &mut self,
        routes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        for (method, path) in routes {
            let route = RestRouteLabels {
                method: method.to_string(),
                path: path.to_string(),
            };
            let series = self.route_series(route);
            self.routes
                .entry(path.to_string())
                .or_default()
                .push(Arc::new(series));
        }
    }

    /// A route's handles for the common statuses.
    fn route_series(&self, route: RestRouteLabels) -> RouteSeries {
        let statuses = COMMON_STATUSES
            .iter()
            .map(|&status| {
                let labels = route.with_status(status);
                (
                    status,
                    self.requests.get_or_create(&labels).clone(),
                    self.duration.get_or_create(&labels).clone(),
                )
            })
            .collect();
        RouteSeries {
            in_progress: self.in_progress.get_or_create(&route).clone(),
            statuses,
            route,
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
            .ok_or_else(|| RestRouteLabels {
                method: method.to_string(),
                path: path.to_string(),
            });
        let gauge = match &series {
            Ok(series) => series.in_progress.clone(),
            Err(route) => self.in_progress.get_or_create(route).clone(),
        };
        gauge.inc();
        InFlight { gauge, series }
    }

    /// Records a request answered with `status` after `took`.
    pub(super) fn finished(&self, in_flight: InFlight, status: u16, took: Duration) {
        let resolved = in_flight.series.as_ref().ok().and_then(|series| {
            series
                .statuses
                .iter()
                .find(|(known, _, _)| *known == status)
        });
        if let Some((_, requests, duration)) = resolved {
            requests.inc();
            duration.observe(took.as_secs_f64());
            return;
        }
        let route = match &in_flight.series {
            Ok(series) => &series.route,
            Err(route) => route,
        };
        let labels = route.with_status(status);
        self.requests.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }
}
