//! The end of a run: once REST has stopped, let gRPC drain, stop the background tasks and then
//! the models' workers.

use crate::repository::{ModelState, Repository, Runner};
use anyhow::Context;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The background tasks of a running server, besides REST (which runs in the foreground).
pub(super) struct Running {
    /// The gRPC server.
    pub(super) grpc: JoinHandle<Result<(), tonic::transport::Error>>,
    /// The metrics server, when it is on.
    pub(super) metrics: Option<JoinHandle<()>>,
    /// ModelMesh's model-runtime SPI, when it is served.
    pub(super) modelmesh: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    /// The start-up loading of the models.
    pub(super) loading: JoinHandle<()>,
}

/// Waits for the gRPC server to drain (until `grace_end`, the end of the shutdown's grace
/// period), stops the metrics server and any loading still going, then stops every model's
/// batcher and worker pool.
pub(super) async fn drain(
    running: Running,
    repository: Arc<Repository>,
    grace_end: Instant,
) -> anyhow::Result<()> {
    // In-flight RPCs drain; a stream a client keeps open does not hold the shutdown forever.
    match tokio::time::timeout_at(grace_end, running.grpc).await {
        Ok(result) => result
            .context("the gRPC server panicked")?
            .context("the gRPC server failed")?,
        Err(_) => {
            tracing::warn!(
                "gRPC calls still open at the end of the shutdown's grace period: closing them"
            )
        }
    }

    if let Some(task) = running.metrics {
        task.abort();
    }
    if let Some(task) = running.modelmesh {
        task.abort();
    }
    running.loading.abort();
    let _ = running.loading.await;
    tokio::task::spawn_blocking(move || stop_workers(&repository))
        .await
        .context("stopping the workers failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Stops the batcher and worker pool of every ready model nobody else still holds.
fn stop_workers(repository: &Repository) {
    for state in repository.drain() {
        if let ModelState::Ready(model) = state
            && let Ok(model) = Arc::try_unwrap(model)
            && let Runner::Workers { pool, batcher } = model.runner
        {
            drop(batcher);
            if let Ok(pool) = Arc::try_unwrap(pool) {
                pool.shutdown();
            }
        }
    }
}
