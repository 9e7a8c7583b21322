//! The `mlhost` binary: parse the command line, load settings, set up logs, serve.

use anyhow::Context;
use clap::Parser;
use mlhost::cli::{Cli, Command};
use mlhost::config::load_settings;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mlhost: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let Command::Serve(args) = cli.command;
    let settings_file = args.models.join("settings.json");
    let mut settings = load_settings(Some(&settings_file), |name| std::env::var(name).ok())?;
    args.apply(&mut settings);
    init_logging(&settings);

    let models_root = args.models.join(&settings.model_repository_root);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mlhost-async")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(mlhost::app::run(
        mlhost::app::ServeConfig {
            settings,
            models_root,
        },
        mlhost::shutdown::signal(),
    ));
    // Loads still running on blocking threads are abandoned rather than awaited.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

fn init_logging(settings: &mlhost::config::Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(settings.log_filter()))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.use_structured_logging {
        // One JSON object per line; a request's lines carry its span (`request` with its `id`).
        logs.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}
