//! Wires the server together: engine, repository, inference core, front ends, shutdown.

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::protocol::grpc::{self, GrpcOptions};
use crate::protocol::rest::{self, RestOptions};
use crate::protocol::{InferenceService, ServerInfo};
use crate::repository::{ModelState, Repository};
use crate::wasm::{EngineOptions, WasmEngine};
use anyhow::Context;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

/// How long a shutdown waits for open gRPC streams.
const GRPC_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What `run` serves.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The server's settings, after environment and command-line overrides.
    pub settings: Settings,
    /// The folder whose models are served.
    pub models_root: PathBuf,
}

/// Runs the server until `shutdown` completes, then drains connections and stops the workers.
///
/// Every port is bound first (liveness answers at once); models load in the background and the
/// server reports ready when they have.
pub async fn run(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = Arc::new(config.settings);
    let ignored = settings.ignored_fields();
    if !ignored.is_empty() {
        tracing::warn!(
            "settings accepted for MLServer compatibility but not used by mlhost: {}",
            ignored.join(", ")
        );
    }
    if settings.logging_settings_ignored() {
        tracing::warn!(
            "logging_settings names a logging configuration mlhost does not read: give a level such as \"debug\""
        );
    }

    let engine = WasmEngine::new(&EngineOptions {
        instance_pool_size: settings.instance_pool_size,
        max_memory_bytes: settings.memory_limit_mb.saturating_mul(1024 * 1024),
        cache_dir: settings.compilation_cache(),
    })
    .map_err(|error| anyhow::anyhow!("cannot create the WebAssembly engine: {error:#}"))?;
    let mut metrics = Metrics::new(&settings.metrics_rest_server_prefix);
    // Resolve the series of every route and method now: requests then bump plain handles.
    let root = settings.root_path.trim_end_matches('/').to_string();
    let prefixed: Vec<(&str, String)> = crate::protocol::routes::ROUTES
        .iter()
        .flat_map(|route| {
            let method = route.method.http_name();
            let mut paths = vec![(method, route.path.to_string())];
            if !root.is_empty() {
                paths.push((method, format!("{root}{}", route.path)));
            }
            paths
        })
        .collect();
    metrics.resolve_rest_routes(
        prefixed
            .iter()
            .map(|(method, path)| (*method, path.as_str()))
            .chain([("GET", "unmatched"), ("POST", "unmatched")]),
    );
    metrics.resolve_grpc_methods(
        grpc::observe::SERVICE,
        grpc::observe::METHODS.iter().copied(),
    );
    let metrics = Arc::new(metrics);
    let repository = Arc::new(Repository::new(
        config.models_root.clone(),
        engine,
        settings.clone(),
        metrics.clone(),
    ));
    let service = Arc::new(InferenceService::new(
        repository.clone(),
        ServerInfo {
            name: settings.server_name.clone(),
            version: settings.server_version.clone(),
            extensions: crate::protocol::EXTENSIONS
                .iter()
                .map(|extension| extension.to_string())
                .chain(settings.extensions.iter().cloned())
                .collect(),
        },
    ));

    let address = (settings.host.as_str(), settings.http_port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.http_port))?;
    tracing::info!("REST server listening on http://{}", listener.local_addr()?);

    // One shutdown signal for both servers.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let wait_for_stop = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };

    let grpc_listener = tokio::net::TcpListener::bind((settings.host.as_str(), settings.grpc_port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.grpc_port))?;
    tracing::info!("gRPC server listening on {}", grpc_listener.local_addr()?);
    let grpc_options = GrpcOptions {
        max_message_bytes: settings
            .grpc_max_message_length
            .and_then(|length| usize::try_from(length).ok())
            .unwrap_or(grpc::DEFAULT_MAX_MESSAGE_BYTES),
        max_tensor_elements: settings.max_tensor_elements,
    };
    let grpc_server = tonic::transport::Server::builder()
        .layer(grpc::observe::ObserveLayer::new(metrics.clone()))
        .layer(tower::util::MapResponseLayer::new(
            grpc::oversized_message_status,
        ))
        .add_service(grpc::service(service.clone(), &grpc_options))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
            wait_for_stop(stopped.clone()),
        );
    let grpc_task = tokio::spawn(grpc_server);

    let options = RestOptions {
        root_path: settings.root_path.clone(),
        max_body_bytes: usize::try_from(settings.max_request_body_mb.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX),
        max_tensor_elements: settings.max_tensor_elements,
        gzip_enabled: settings.gzip_enabled,
        cors: settings.cors_settings.clone(),
    };
    let metrics_task = match &settings.metrics_endpoint {
        Some(endpoint) => {
            let listener =
                tokio::net::TcpListener::bind((settings.host.as_str(), settings.metrics_port))
                    .await
                    .with_context(|| {
                        format!(
                            "cannot listen on {}:{}",
                            settings.host, settings.metrics_port
                        )
                    })?;
            tracing::info!(
                "metrics server listening on http://{}{endpoint}",
                listener.local_addr()?
            );
            let router = metrics_router(endpoint, metrics.clone(), repository.clone());
            Some(tokio::spawn(
                axum::serve(listener, router)
                    .with_graceful_shutdown(wait_for_stop(stopped.clone()))
                    .into_future(),
            ))
        }
        None => None,
    };
    let loading = {
        let (service, repository, settings) =
            (service.clone(), repository.clone(), settings.clone());
        let root = config.models_root.clone();
        tokio::spawn(async move {
            if settings.load_models_at_startup {
                tracing::info!(root = %root.display(), "loading models");
                if let Err(error) = repository.load_all().await {
                    tracing::error!(root = %root.display(), "{error}");
                }
            }
            service.mark_started();
            tracing::info!("server ready");
        })
    };

    axum::serve(listener, rest::router(service, &options, metrics))
        .with_graceful_shutdown(wait_for_stop(stopped))
        .await
        .context("the REST server failed")?;
    // In-flight RPCs drain; a stream a client keeps open does not hold the shutdown forever.
    match tokio::time::timeout(GRPC_DRAIN_TIMEOUT, grpc_task).await {
        Ok(result) => result
            .context("the gRPC server panicked")?
            .context("the gRPC server failed")?,
        Err(_) => {
            tracing::warn!("gRPC streams still open after {GRPC_DRAIN_TIMEOUT:?}: closing them")
        }
    }

    if let Some(task) = metrics_task {
        task.abort();
    }
    loading.abort();
    let _ = loading.await;
    tokio::task::spawn_blocking(move || {
        for state in repository.drain() {
            if let ModelState::Ready(model) = state
                && let Ok(model) = Arc::try_unwrap(model)
            {
                drop(model.batcher);
                if let Ok(pool) = Arc::try_unwrap(model.pool) {
                    pool.shutdown();
                }
            }
        }
    })
    .await
    .context("stopping the workers failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// The metrics server: `endpoint` answers the Prometheus exposition of every metric, with the
/// models-by-state gauge read from the repository at each scrape.
fn metrics_router(
    endpoint: &str,
    metrics: Arc<Metrics>,
    repository: Arc<Repository>,
) -> axum::Router {
    let endpoint = if endpoint.starts_with('/') {
        endpoint.to_string()
    } else {
        format!("/{endpoint}")
    };
    axum::Router::new().route(
        &endpoint,
        axum::routing::get(move || {
            let (metrics, repository) = (metrics.clone(), repository.clone());
            async move {
                metrics.set_models_by_state(&repository.state_counts());
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    )
}
