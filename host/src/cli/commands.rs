//! What each command does: serve (settings, logging, the async runtime around [`crate::app`]),
//! init and build ([`crate::author`]), infer ([`crate::client`]).

use super::{BuildArgs, Cli, Command, InitArgs, ServeArgs};
use crate::config::{Settings, load_settings};
use anyhow::Context;
use clap::Parser;
use std::process::ExitCode;

/// The `mlhost` command: parses the command line, runs the command, and prints its error (with
/// its causes) if it fails.
pub fn run_cli() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mlhost: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if !matches!(cli.command, Command::Serve(_)) {
        // The tools print their results; warnings (e.g. an unusable compile cache) go to stderr.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .with_writer(std::io::stderr)
            .log_internal_errors(false)
            .init();
    }
    match cli.command {
        Command::Serve(args) => serve(args).map(|()| ExitCode::SUCCESS),
        Command::Init(args) => init(args).map(|()| ExitCode::SUCCESS),
        Command::Build(args) => build(args).map(|()| ExitCode::SUCCESS),
        Command::Infer(args) => crate::client::run(&args),
        Command::Convert(args) => super::convert::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Import(args) => super::import::run(&args),
    }
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let dir = crate::author::init::init(&crate::author::init::InitOptions {
        name: args.name.clone(),
        language: args.lang,
        dir: args.dir,
        sdk: args.sdk,
    })?;
    let shown = dir.display();
    println!(
        "created {shown}: a {:?} runtime named '{}'",
        args.lang, args.name
    );
    println!("next:");
    println!("  cd {shown}");
    println!(
        "  mlhost build                        # builds build/{}.wasm",
        args.name
    );
    println!("  mlhost serve --models .");
    println!(
        "  mlhost infer {} -i request.json    # in another terminal",
        args.name
    );
    Ok(())
}

fn build(args: BuildArgs) -> anyhow::Result<()> {
    let outcome = crate::author::builder::build(&crate::author::builder::BuildOptions {
        dir: args.dir,
        precompile: args.precompile,
    })?;
    println!(
        "built {} ({:.1} KiB): implements mlhost:runtime/runtime@{}",
        outcome.component.display(),
        outcome.size as f64 / 1024.0,
        outcome.report.version
    );
    println!("imports: {}", outcome.report.imports.join(", "));
    if let Some(elapsed) = outcome.precompiled {
        println!(
            "precompiled for this machine in {:.2} s (into the compile cache)",
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings_file = args.models.join("settings.json");
    let mut settings = load_settings(Some(&settings_file), |name| args.env(name))?;
    args.apply(&mut settings);
    init_logging(&settings);
    crate::config::set_strict(settings.strict_settings);
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }

    let models_root = args.models.join(&settings.model_repository_root);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mlhost-async")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        // The exporter's gRPC channel runs on this runtime.
        crate::telemetry::start(
            settings.tracing_server.as_deref(),
            settings.tracing_sample_ratio,
            &settings.server_name,
            &settings.server_version,
        )?;
        let served = crate::app::run(
            crate::app::ServeConfig {
                settings,
                models_root,
                port_file: args.port_file,
            },
            crate::shutdown::signal(),
        )
        .await;
        // The traces of the last requests are sent before the process ends.
        crate::telemetry::flush(std::time::Duration::from_secs(2)).await;
        served
    });
    // Loads still running on blocking threads are abandoned rather than awaited.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

fn init_logging(settings: &Settings) {
    // RUST_LOG when it is a valid filter, else the settings'.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|filter| {
            !filter.trim().is_empty() && tracing_subscriber::EnvFilter::try_new(filter).is_ok()
        })
        .unwrap_or_else(|| settings.log_filter());
    crate::telemetry::logging::init(&filter, settings.use_structured_logging);
}
