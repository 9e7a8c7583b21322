//! `mlhost infer`: a client of the Open Inference Protocol for people and scripts.
//!
//! One request from a JSON file, `.npy` files or command-line values, over REST or gRPC, with
//! the outputs printed; or, with `--batch`, a file of JSON lines sent concurrently (see
//! [`batch`]).

pub(crate) mod batch;
pub(crate) mod inputs;
pub(crate) mod npy;
pub(crate) mod print;
pub(crate) mod transport;

use anyhow::{Context, bail};
use batch::{BatchOptions, run_batch, with_retries};
use clap::Args;
use inputs::{RequestSources, build_request};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use transport::{ClientOptions, InferenceClient, Protocol};

/// Options of `mlhost infer` (MLServer's `mlserver infer` names where they exist).
#[derive(Debug, Args)]
pub(crate) struct InferArgs {
    /// The model to call.
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// The model's version.
    #[arg(long)]
    pub model_version: Option<String>,
    /// The server: host:port or http://host:port[/prefix] (default localhost:8080 for REST,
    /// localhost:8081 for gRPC).
    #[arg(short, long, env = "MLHOST_INFER_URL")]
    pub url: Option<String>,
    /// The protocol.
    #[arg(short, long, value_enum, default_value = "rest")]
    pub transport: Protocol,
    /// A JSON inference request (`-` reads standard input).
    #[arg(short, long, value_name = "FILE", conflicts_with = "batch")]
    pub input: Option<PathBuf>,
    /// An input from the command line: NAME[:DATATYPE][:SHAPE]=VALUES, e.g. x:FP32:2x2=1,2,3,4
    /// (numbers default to FP64, the shape to the number of values).
    #[arg(long, value_name = "SPEC", conflicts_with = "batch")]
    pub tensor: Vec<String>,
    /// An input from a NumPy file: NAME=FILE.npy.
    #[arg(long, value_name = "NAME=FILE", conflicts_with = "batch")]
    pub npy: Vec<String>,
    /// An output to ask for (all of the model's default outputs when none is named).
    #[arg(long = "output", value_name = "NAME", conflicts_with = "batch")]
    pub outputs: Vec<String>,
    /// The request's id.
    #[arg(long, conflicts_with = "batch")]
    pub id: Option<String>,
    /// Print the whole response as the protocol's JSON.
    #[arg(long, conflicts_with = "batch")]
    pub json: bool,
    /// REST: send and receive tensor data as binary (the binary tensor data extension).
    #[arg(short, long = "binary-data")]
    pub binary_data: bool,
    /// A request header (gRPC metadata): "Name: value".
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The longest one call may take, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// Retries of a call that failed for a reason that may pass (no connection, a timeout, an
    /// overloaded server).
    #[arg(short, long, default_value_t = 3)]
    pub retries: u32,
    /// Batch mode: a file of JSON lines, one inference request per line (MLServer's
    /// `mlserver infer -i`); blank lines are skipped.
    #[arg(long, value_name = "FILE")]
    pub batch: Option<PathBuf>,
    /// Batch mode: where the results go, one JSON line per request (default: standard output).
    #[arg(short, long = "output-file", value_name = "FILE", requires = "batch")]
    pub output_file: Option<PathBuf>,
    /// Batch mode: requests in flight at once.
    #[arg(short, long, default_value_t = 10, requires = "batch")]
    pub workers: usize,
}

/// Runs `mlhost infer`; the exit code is non-zero when a request failed.
pub(crate) fn run(args: &InferArgs) -> anyhow::Result<ExitCode> {
    if !(args.timeout > 0.0 && args.timeout < 1e9) {
        bail!("--timeout must be a positive number of seconds");
    }
    let headers = args
        .headers
        .iter()
        .map(|header| parse_header(header, args.transport))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let url = args.url.clone().unwrap_or_else(|| {
        match args.transport {
            Protocol::Rest => "localhost:8080",
            Protocol::Grpc => "localhost:8081",
        }
        .to_string()
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = InferenceClient::new(ClientOptions {
            protocol: args.transport,
            url,
            timeout: Duration::from_secs_f64(args.timeout),
            headers,
            binary: args.binary_data,
        })?;
        match &args.batch {
            Some(input) => infer_batch(args, &client, input).await,
            None => infer_one(args, &client).await,
        }
    })
}

/// `Name: value`, checked as an HTTP header (REST) or as ASCII gRPC metadata.
fn parse_header(header: &str, transport: Protocol) -> anyhow::Result<(String, String)> {
    let (name, value) = header
        .split_once(':')
        .map(|(name, value)| (name.trim(), value.trim()))
        .with_context(|| format!("--header '{header}': write 'Name: value'"))?;
    let valid = match transport {
        Protocol::Rest => {
            http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && http::HeaderValue::from_str(value).is_ok()
        }
        Protocol::Grpc => {
            tonic::metadata::AsciiMetadataKey::from_bytes(name.to_lowercase().as_bytes()).is_ok()
                && value.parse::<tonic::metadata::AsciiMetadataValue>().is_ok()
        }
    };
    if !valid {
        bail!("--header '{header}' is not a valid {transport:?} header");
    }
    Ok((name.to_string(), value.to_string()))
}

async fn infer_one(args: &InferArgs, client: &InferenceClient) -> anyhow::Result<ExitCode> {
    let request = build_request(&RequestSources {
        json_file: args.input.as_deref(),
        npy: &args.npy,
        tensors: &args.tensor,
        outputs: &args.outputs,
        id: args.id.as_deref(),
    })?;
    let version = args.model_version.as_deref();
    let response = with_retries(args.retries, || {
        client.infer(&args.model, version, request.clone())
    })
    .await
    .map_err(|error| anyhow::anyhow!("{}", error.message))?;
    let text = if args.json {
        print::response_json(&response) + "\n"
    } else {
        print::response_text(&response)
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

async fn infer_batch(
    args: &InferArgs,
    client: &InferenceClient,
    input: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let options = BatchOptions {
        model: &args.model,
        version: args.model_version.as_deref(),
        workers: args.workers,
        retries: args.retries,
    };
    let mut output: Box<dyn Write> = match &args.output_file {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let summary = run_batch(client, &options, input, &mut output).await?;
    let seconds = summary.elapsed.as_secs_f64();
    let total = summary.succeeded + summary.failed;
    eprintln!(
        "mlhost infer: {total} requests, {} succeeded, {} failed, in {seconds:.2} s ({:.1} requests/s)",
        summary.succeeded,
        summary.failed,
        total as f64 / seconds.max(1e-9)
    );
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
