//! Wires the server together: engine, repository, inference core, front ends, shutdown.
//!
//! [`run`] goes through named steps: assemble the parts ([`assemble`]), bind every port
//! ([`listeners`]) and report them ([`port_file`]), start the front ends ([`servers`]), load the
//! models, serve REST until the shutdown signal, then drain ([`drain`]); every port's connections
//! are accepted, limited and timed out by [`connections`].

mod assemble;
mod connections;
mod drain;
mod listeners;
mod port_file;
mod servers;

use crate::config::{self, Settings};
use crate::core::{InferenceService, ServerInfo};
use crate::modelmesh::ModelMesh;
use crate::repository::Repository;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `run` serves.
#[derive(Debug, Clone)]
pub(crate) struct ServeConfig {
    /// The server's settings, after environment and command-line overrides.
    pub settings: Settings,
    /// The folder whose models are served.
    pub models_root: PathBuf,
    /// Where to write the bound ports once every port is bound (`--port-file`), if anywhere.
    pub port_file: Option<PathBuf>,
}

/// Runs the server until `shutdown` completes, then drains connections and stops the workers.
///
/// Every port is bound first (liveness answers at once); models load in the background and the
/// server reports ready when they have.
pub(crate) async fn run(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = Arc::new(config.settings);
    crate::repository::set_warm_up(crate::core::warm_up_call());
    warn_about_ignored_settings(&settings);
    let engine = assemble::engine(&settings)?;
    assemble::native_backends(&settings);
    let metrics = assemble::metrics(&settings);
    let repository = Arc::new(Repository::new(
        config.models_root.clone(),
        engine,
        settings.clone(),
        metrics.clone(),
    ));
    let service = Arc::new(
        InferenceService::new(repository.clone(), server_info(&settings))
            .with_budget(crate::core::budget::ByteBudget::new(
                settings.buffered_bytes(),
            ))
            .with_cache(response_cache(&settings, &metrics)),
    );

    let listeners = listeners::Listeners::bind(&settings).await?;
    let stop = servers::StopSignal::spawn(shutdown);
    if let Some(path) = &config.port_file {
        port_file::write(path, &listeners.ports)?;
    }
    let running = drain::Running {
        grpc: servers::start_grpc(
            listeners.grpc,
            &settings,
            service.clone(),
            metrics.clone(),
            &stop,
        ),
        metrics: listeners.metrics.map(|(listener, endpoint)| {
            servers::start_metrics(
                listener,
                &settings,
                &endpoint,
                metrics.clone(),
                repository.clone(),
                &stop,
            )
        }),
        modelmesh: match listeners.modelmesh {
            Some(listener) => {
                let mesh = ModelMesh::new(service.clone(), repository.clone(), &settings)?;
                Some(servers::start_modelmesh(listener, &settings, mesh, &stop))
            }
            None => None,
        },
        loading: start_loading(
            service.clone(),
            repository.clone(),
            &settings,
            &config.models_root,
        ),
    };

    servers::serve_rest(listeners.rest, &settings, service, metrics, &stop).await;
    let grace_end = stop.wait().await + config::seconds(settings.shutdown_grace_period_seconds);
    drain::drain(running, repository, grace_end).await
}

/// Warns about settings accepted for MLServer compatibility that mlhost does not use.
fn warn_about_ignored_settings(settings: &Settings) {
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
}

/// The response cache, when `cache_enabled` asks for one.
fn response_cache(
    settings: &Settings,
    metrics: &crate::metrics::Metrics,
) -> Option<crate::core::cache::ResponseCache> {
    settings.cache_enabled.then(|| {
        let bytes = settings.max_cache_mb.saturating_mul(1 << 20);
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        crate::core::cache::ResponseCache::new(settings.cache_size, bytes, metrics.cache())
    })
}

/// The server's name, version and extensions (the protocol's own, then the configured ones).
fn server_info(settings: &Settings) -> ServerInfo {
    ServerInfo {
        name: settings.server_name.clone(),
        version: settings.server_version.clone(),
        extensions: crate::core::EXTENSIONS
            .iter()
            .map(|extension| extension.to_string())
            .chain(settings.extensions.iter().cloned())
            .collect(),
    }
}

/// Loads the models in the background (when the settings ask for it at start-up), then marks the
/// server ready.
fn start_loading(
    service: Arc<InferenceService>,
    repository: Arc<Repository>,
    settings: &Settings,
    models_root: &Path,
) -> tokio::task::JoinHandle<()> {
    let load_at_startup = settings.load_models_at_startup;
    let root = models_root.to_path_buf();
    tokio::spawn(async move {
        if load_at_startup {
            tracing::info!(root = %root.display(), "loading models");
            if let Err(error) = repository.load_all().await {
                tracing::error!(root = %root.display(), "{error}");
            }
        }
        service.mark_started();
        tracing::info!("server ready");
    })
}
