//! The command line: `mlhost serve`, `init`, `build`, `infer`, `convert` and `import`, their
//! arguments here and what each command does in [`commands`] (`convert` and `import` in their
//! own modules).

mod commands;
mod convert;
mod import;

pub use commands::run_cli;

use crate::config::Settings;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// mlhost: serve machine-learning models over the Open Inference Protocol.
#[derive(Debug, Parser)]
#[command(name = "mlhost", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve every model found below a folder (MLServer's `mlserver start`).
    #[command(alias = "start")]
    Serve(ServeArgs),
    /// Start a new model runtime project (Rust, Python or JavaScript).
    Init(InitArgs),
    /// Build a runtime project to a component, check it, and report its size.
    Build(BuildArgs),
    /// Send inference requests to a running server and print the outputs.
    Infer(crate::client::InferArgs),
    /// Convert a pickled scikit-learn model to model.onnx beside it (skl2onnx, checked against
    /// the pickle's answers).
    Convert(convert::ConvertArgs),
    /// Write an mlhost repository from an MLServer one, and report how each model was imported.
    Import(import::ImportArgs),
}

/// Options of `mlhost init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The runtime's name: also the model's name and the project folder's.
    pub name: String,
    /// The language to write the runtime in.
    #[arg(long, value_enum, default_value = "rust")]
    pub lang: crate::author::Language,
    /// Where to create the project (default: ./NAME).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Rust: the guest SDK folder to depend on (default: the SDK mlhost was built with).
    #[arg(long, value_name = "DIR")]
    pub sdk: Option<PathBuf>,
}

/// Options of `mlhost build`.
#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Also compile the component for this machine into the compile cache, so that `serve`
    /// starts without compiling it.
    #[arg(long)]
    pub precompile: bool,
}

/// Options of `mlhost serve`; each overrides the same field of settings.json and the environment
/// (except `--port-file`, which is not a setting).
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
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
    /// The gRPC port (0 picks a free one).
    #[arg(long)]
    pub grpc_port: Option<u16>,
    /// The metrics port (0 picks a free one).
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// Worker threads (model instances) per model, 0 to 1024 (as in settings.json).
    #[arg(long, value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub parallel_workers: Option<u16>,
    /// Log level or `tracing` filter (e.g. `debug`, `mlhost=trace`).
    #[arg(long)]
    pub log_level: Option<String>,
    /// Once every port is bound, write them to this file as JSON
    /// (`{"http": 8080, "grpc": 8081, "metrics": 8082}`, `metrics` null when the metrics server
    /// is off), atomically: how a script learns the ports picked for port 0.
    #[arg(long, value_name = "PATH", env = "MLHOST_PORT_FILE")]
    pub port_file: Option<PathBuf>,
    /// Refuse unknown fields and numbers written as strings in settings.json and
    /// model-settings.json (`strict_settings`), instead of warning and coercing as MLServer does.
    #[arg(long)]
    pub strict: bool,
}

impl ServeArgs {
    /// An environment variable as the settings see it: `--strict` is `MLHOST_STRICT_SETTINGS`.
    pub(crate) fn env(&self, name: &str) -> Option<String> {
        if self.strict && name == "MLHOST_STRICT_SETTINGS" {
            return Some("true".to_string());
        }
        std::env::var(name).ok()
    }

    /// Applies the flags that were given over the loaded settings.
    pub(crate) fn apply(&self, settings: &mut Settings) {
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
            settings.parallel_workers = usize::from(workers);
        }
        if let Some(level) = &self.log_level {
            settings.logging_settings = Some(serde_json::Value::String(level.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(workers: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["mlhost", "serve", "--parallel-workers", workers])
    }

    #[test]
    fn parallel_workers_are_range_checked_on_the_command_line() {
        for fine in ["0", "1", "1024"] {
            let Command::Serve(args) = serve(fine).unwrap().command else {
                panic!("serve");
            };
            assert_eq!(args.parallel_workers.map(usize::from), fine.parse().ok());
        }
        for wrong in ["1025", "100000", "x"] {
            let error = serve(wrong).unwrap_err().to_string();
            assert!(error.contains("--parallel-workers"), "{error}");
        }
        assert!(
            serve("100000")
                .unwrap_err()
                .to_string()
                .contains("0..=1024")
        );
    }
}
