//! The command line: `mlhost serve`.

use crate::config::Settings;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// mlhost: serve machine-learning models over the Open Inference Protocol.
#[derive(Debug, Parser)]
#[command(name = "mlhost", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every model found below a folder (MLServer's `mlserver start`).
    #[command(alias = "start")]
    Serve(ServeArgs),
}

/// Options of `mlhost serve`; each overrides the same field of settings.json and the environment.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The model repository: every model-settings.json below it is served. Its settings.json,
    /// if any, configures the server.
    #[arg(long = "models", value_name = "DIR", default_value = ".")]
    pub models: PathBuf,
    /// The address to listen on.
    #[arg(long)]
    pub host: Option<String>,
    /// The REST port (0 picks a free one).
    #[arg(long)]
    pub http_port: Option<u16>,
    /// The gRPC port.
    #[arg(long)]
    pub grpc_port: Option<u16>,
    /// The metrics port.
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// Worker threads (model instances) per model.
    #[arg(long)]
    pub parallel_workers: Option<usize>,
    /// Log level or `tracing` filter (e.g. `debug`, `mlhost=trace`).
    #[arg(long)]
    pub log_level: Option<String>,
}

impl ServeArgs {
    /// Applies the flags that were given over the loaded settings.
    pub fn apply(&self, settings: &mut Settings) {
        if let Some(host) = &self.host {
            settings.host = host.clone();
        }
        if let Some(port) = self.http_port {
            settings.http_port = port;
        }
        if let Some(port) = self.grpc_port {
            settings.grpc_port = port;
        }
        if let Some(port) = self.metrics_port {
            settings.metrics_port = port;
        }
        if let Some(workers) = self.parallel_workers {
            settings.parallel_workers = workers;
        }
        if let Some(level) = &self.log_level {
            settings.logging_settings = Some(serde_json::Value::String(level.clone()));
        }
    }
}
