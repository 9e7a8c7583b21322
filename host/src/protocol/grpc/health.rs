//! `grpc.health.v1.Health` (Check and Watch) on the gRPC port, as Kubernetes' gRPC probes and
//! grpc-health-probe call it, with tonic-health's service and messages.
//!
//! The service names: `""` (and `inference.GRPCInferenceService`) is the server, SERVING once
//! its start-up loading has ended; a model's name is that model (its default version), and
//! `name/version` one version of it, SERVING while it is ready and NOT_SERVING while it loads,
//! failed or is unloaded. Any other name is unknown: Check answers NOT_FOUND and Watch
//! SERVICE_UNKNOWN, as the health protocol says. Statuses are read from the core at each call,
//! never copied: Watch waits on the repository's state changes
//! ([`InferenceService::watch_states`]) and sends a status each time it differs from the last it
//! sent. Once the server stops, every service is NOT_SERVING and Watch streams end.

use crate::core::InferenceService;
use futures_util::stream;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The service name that also stands for the whole server, besides `""`.
const INFERENCE_SERVICE: &str = "inference.GRPCInferenceService";

/// The statuses of the server and its models, for the health protocol.
pub(crate) struct HealthService {
    core: Arc<InferenceService>,
    /// True once the server is stopping.
    stopping: watch::Receiver<bool>,
}

/// The tonic service of `grpc.health.v1.Health` over `core`; every status is NOT_SERVING once
/// `stopping` turns true.
pub(crate) fn service(
    core: Arc<InferenceService>,
    stopping: watch::Receiver<bool>,
) -> HealthServer<HealthService> {
    HealthServer::new(HealthService { core, stopping })
}

/// The status of `service` now: `None` when the name is unknown.
fn status(core: &InferenceService, stopping: bool, service: &str) -> Option<ServingStatus> {
    let serving = |ready: bool| {
        if ready && !stopping {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        }
    };
    if service.is_empty() || service == INFERENCE_SERVICE {
        return Some(serving(core.is_ready()));
    }
    // The whole name as a model first: a model's name may hold a '/'.
    let ready = core.model_health(service, None).or_else(|| {
        let (name, version) = service.rsplit_once('/')?;
        core.model_health(name, Some(version))
    })?;
    Some(serving(ready))
}

fn answer(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status.into(),
    }
}

/// The messages of one Watch call.
type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

/// What one Watch call keeps between its messages.
struct Watching {
    core: Arc<InferenceService>,
    service: String,
    states: watch::Receiver<()>,
    stopping: watch::Receiver<bool>,
    /// The status last sent.
    sent: Option<ServingStatus>,
}

impl Watching {
    /// The next status to send: the current one as soon as it differs from the last sent;
    /// `None` once the server stops (after NOT_SERVING is sent) or the repository is gone.
    async fn next(&mut self) -> Option<ServingStatus> {
        loop {
            // Marked seen before the status is read: a change after the read wakes the wait.
            self.states.borrow_and_update();
            let stopping = *self.stopping.borrow_and_update();
            let now = status(&self.core, stopping, &self.service)
                .unwrap_or(ServingStatus::ServiceUnknown);
            if self.sent != Some(now) {
                self.sent = Some(now);
                return Some(now);
            }
            if stopping {
                return None;
            }
            tokio::select! {
                changed = self.states.changed() => changed.ok()?,
                changed = self.stopping.changed() => {
                    // The stop signal's sender gone without a stop: wait on the states only.
                    if changed.is_err() {
                        self.states.changed().await.ok()?;
                    }
                }
            }
        }
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        let stopping = *self.stopping.borrow();
        match status(&self.core, stopping, &service) {
            Some(status) => Ok(Response::new(answer(status))),
            None => Err(Status::not_found(format!(
                "unknown service '{}': ask for \"\" (the server), a model's name or name/version",
                crate::codec::quoted(&service)
            ))),
        }
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let watching = Watching {
            core: self.core.clone(),
            service: request.into_inner().service,
            states: self.core.watch_states(),
            stopping: self.stopping.clone(),
            sent: None,
        };
        let statuses = stream::unfold(watching, |mut watching| async move {
            let status = watching.next().await?;
            Some((Ok(answer(status)), watching))
        });
        Ok(Response::new(Box::pin(statuses)))
    }
}
