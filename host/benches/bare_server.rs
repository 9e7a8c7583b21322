//! A bare inference server on mlhost's own stack, without a model: what tokio, axum, serde_json
//! and tonic cost per request, to measure mlhost against (`scripts/bench-hot-path`).
//!
//! - REST (axum over hyper's HTTP/1.1, `TCP_NODELAY`, the multi-threaded tokio runtime as
//!   `mlhost serve` builds it): `POST /v2/models/{model}[/versions/{version}]/infer` parses the
//!   V2 JSON body into a `serde_json::Value` — or, with `Inference-Header-Content-Length`, the
//!   binary tensor extension's JSON header and takes the bytes after it — and answers a small V2
//!   JSON response.
//! - gRPC (tonic, on a listener whose connections get `TCP_NODELAY`, as mlhost's):
//!   `inference.GRPCInferenceService/ModelInfer` decodes the `ModelInferRequest` and answers a
//!   small `ModelInferResponse`; every other method is `UNIMPLEMENTED`.
//!
//! ```text
//! bare_server serve [--host 127.0.0.1] [--http-port 0] [--grpc-port 0]
//!     serves until killed; prints {"http": <port>, "grpc": <port>} on one line once bound
//! bare_server bodies <model metadata .json> <folder>
//!     writes one single-row request for the model (its V2 metadata, as GET /v2/models/{m}
//!     answers it) three ways: request.json (V2 JSON), request.bin (the binary extension: JSON
//!     header, then the raw data; the header's length in request.bin.header-length) and
//!     request.grpc (a gRPC-framed ModelInferRequest with raw_input_contents, as tritonclient
//!     sends it)
//! ```
//!
//! Run without a command (as `cargo bench` does), it prints this usage and exits: it is a tool
//! of `scripts/bench-hot-path`, which builds it with
//! `cargo build --release -p mlhost --bench bare_server`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use mlhost_proto::inference as pb;
use pb::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use serde_json::{Value, json};
use std::io::Write;
use tokio::net::TcpListener;
use tonic::{Request, Response as GrpcResponse, Status};

const USAGE: &str = "usage: bare_server serve [--host H] [--http-port P] [--grpc-port P]
       bare_server bodies <model metadata .json> <folder>
(a tool of scripts/bench-hot-path; nothing to run under `cargo bench`)";

/// The binary tensor extension's header: the length of the JSON part of the body.
const HEADER_LENGTH: &str = "inference-header-content-length";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("bodies") if args.len() == 3 => bodies(
            std::path::Path::new(&args[1]),
            std::path::Path::new(&args[2]),
        ),
        _ => {
            println!("{USAGE}");
            Ok(())
        }
    };
    if let Err(error) = result {
        eprintln!("bare_server: {error}");
        std::process::exit(1);
    }
}

/// The value of `--name` in `args`, else `default`.
fn option<'a>(args: &'a [String], name: &str, default: &'a str) -> &'a str {
    args.iter()
        .position(|arg| arg == name)
        .and_then(|at| args.get(at + 1))
        .map_or(default, String::as_str)
}

/// Serves REST and gRPC until the process is killed.
fn serve(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let host = option(args, "--host", "127.0.0.1").to_string();
    let http_port: u16 = option(args, "--http-port", "0").parse()?;
    let grpc_port: u16 = option(args, "--grpc-port", "0").parse()?;
    // The runtime `mlhost serve` builds: multi-threaded, one worker thread per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bare-async")
        .build()?;
    runtime.block_on(async move {
        let rest = TcpListener::bind((host.as_str(), http_port)).await?;
        let grpc = TcpListener::bind((host.as_str(), grpc_port)).await?;
        println!(
            "{}",
            json!({"http": rest.local_addr()?.port(), "grpc": grpc.local_addr()?.port()})
        );
        std::io::stdout().flush()?;
        let grpc = tonic::transport::Server::builder()
            .add_service(GrpcInferenceServiceServer::new(Bare))
            .serve_with_incoming(no_delay_stream(grpc));
        let grpc = tokio::spawn(grpc);
        let router = Router::new()
            .route("/v2/models/{model}/infer", post(infer))
            .route("/v2/models/{model}/versions/{version}/infer", post(infer));
        axum::serve(rest.tap_io(|stream| set_no_delay(stream)), router).await?;
        grpc.await??;
        Ok(())
    })
}

/// The connections `listener` accepts, each with `TCP_NODELAY` (as mlhost's gRPC listener).
fn no_delay_stream(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener)
        .map(|accepted| accepted.inspect(set_no_delay))
}

fn set_no_delay(stream: &tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
}

/// `POST .../infer`: the body parsed (JSON, or the binary extension's JSON header and data),
/// a small V2 answer.
async fn infer(
    Path(path): Path<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json_length = match headers.get(HEADER_LENGTH).map(|value| {
        value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok())
    }) {
        None => body.len(),
        Some(Some(length)) if length <= body.len() => length,
        Some(_) => return bad_request("bad Inference-Header-Content-Length".to_string()),
    };
    let (header_json, binary) = body.split_at(json_length);
    let request: Value = match serde_json::from_slice(header_json) {
        Ok(request) => request,
        Err(error) => return bad_request(error.to_string()),
    };
    let Some(inputs) = request.get("inputs").and_then(Value::as_array) else {
        return bad_request("no inputs".to_string());
    };
    let model = path.first().map_or("", |(_, model)| model.as_str());
    let answer = json!({
        "model_name": model,
        "id": request.get("id").cloned().unwrap_or(Value::Null),
        "outputs": [{
            "name": "predict",
            "datatype": "INT64",
            "shape": [1],
            "data": [inputs.len() + binary.len()],
        }],
    });
    match serde_json::to_vec(&answer) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": message })),
    )
        .into_response()
}

/// The bare gRPC service: `ModelInfer` only.
struct Bare;

type Reply<T> = Result<GrpcResponse<T>, Status>;

fn unimplemented<T>() -> Reply<T> {
    Err(Status::unimplemented(
        "the bare server answers ModelInfer only",
    ))
}

#[tonic::async_trait]
impl GrpcInferenceService for Bare {
    async fn model_infer(
        &self,
        request: Request<pb::ModelInferRequest>,
    ) -> Reply<pb::ModelInferResponse> {
        let request = request.into_inner();
        let received = request.inputs.len() + request.raw_input_contents.len();
        Ok(GrpcResponse::new(pb::ModelInferResponse {
            model_name: request.model_name,
            id: request.id,
            outputs: vec![pb::model_infer_response::InferOutputTensor {
                name: "predict".to_string(),
                datatype: "INT64".to_string(),
                shape: vec![1],
                contents: Some(pb::InferTensorContents {
                    int64_contents: vec![received as i64],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }))
    }

    async fn server_live(
        &self,
        _: Request<pb::ServerLiveRequest>,
    ) -> Reply<pb::ServerLiveResponse> {
        unimplemented()
    }

    async fn server_ready(
        &self,
        _: Request<pb::ServerReadyRequest>,
    ) -> Reply<pb::ServerReadyResponse> {
        unimplemented()
    }

    async fn model_ready(
        &self,
        _: Request<pb::ModelReadyRequest>,
    ) -> Reply<pb::ModelReadyResponse> {
        unimplemented()
    }

    async fn server_metadata(
        &self,
        _: Request<pb::ServerMetadataRequest>,
    ) -> Reply<pb::ServerMetadataResponse> {
        unimplemented()
    }

    async fn model_metadata(
        &self,
        _: Request<pb::ModelMetadataRequest>,
    ) -> Reply<pb::ModelMetadataResponse> {
        unimplemented()
    }

    async fn repository_index(
        &self,
        _: Request<pb::RepositoryIndexRequest>,
    ) -> Reply<pb::RepositoryIndexResponse> {
        unimplemented()
    }

    async fn repository_model_load(
        &self,
        _: Request<pb::RepositoryModelLoadRequest>,
    ) -> Reply<pb::RepositoryModelLoadResponse> {
        unimplemented()
    }

    async fn repository_model_unload(
        &self,
        _: Request<pb::RepositoryModelUnloadRequest>,
    ) -> Reply<pb::RepositoryModelUnloadResponse> {
        unimplemented()
    }

    async fn model_config(
        &self,
        _: Request<pb::ModelConfigRequest>,
    ) -> Reply<pb::ModelConfigResponse> {
        unimplemented()
    }

    async fn model_statistics(
        &self,
        _: Request<pb::ModelStatisticsRequest>,
    ) -> Reply<pb::ModelStatisticsResponse> {
        unimplemented()
    }
}

/// One input of a model's metadata, as one row of example values: its JSON values and the same
/// as little-endian bytes.
struct Input {
    name: String,
    datatype: String,
    shape: Vec<i64>,
    json: Vec<Value>,
    bytes: Vec<u8>,
}

impl Input {
    /// The input `metadata` describes, with each variable dimension (-1) as 1. Numbers cycle
    /// through an iris flower's measurements (whole numbers for integer inputs).
    fn from_metadata(metadata: &Value) -> Result<Input, String> {
        let name = metadata["name"].as_str().ok_or("an input without a name")?;
        let datatype = metadata["datatype"]
            .as_str()
            .ok_or("an input without a datatype")?;
        let shape: Vec<i64> = metadata["shape"]
            .as_array()
            .ok_or("an input without a shape")?
            .iter()
            .map(|dim| dim.as_i64().filter(|&dim| dim >= 0).unwrap_or(1))
            .collect();
        let count: i64 = shape.iter().product();
        let values = [5.1f64, 3.5, 1.4, 0.2];
        let (mut json, mut bytes) = (Vec::new(), Vec::new());
        for index in 0..usize::try_from(count).map_err(|_| "a negative shape")? {
            let value = values[index % values.len()];
            let whole = value.round() as i64;
            match datatype {
                "FP32" => bytes.extend((value as f32).to_le_bytes()),
                "FP64" => bytes.extend(value.to_le_bytes()),
                "INT32" => bytes.extend((whole as i32).to_le_bytes()),
                "INT64" => bytes.extend(whole.to_le_bytes()),
                other => return Err(format!("input '{name}': datatype {other} is not supported")),
            }
            json.push(if datatype.starts_with("FP") {
                json!(value)
            } else {
                json!(whole)
            });
        }
        Ok(Input {
            name: name.to_string(),
            datatype: datatype.to_string(),
            shape,
            json,
            bytes,
        })
    }
}

/// `bodies`: one single-row request for the model `metadata_file` describes, as V2 JSON, the
/// binary extension and a gRPC-framed message, written to `folder`.
fn bodies(
    metadata_file: &std::path::Path,
    folder: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let metadata: Value = serde_json::from_slice(&std::fs::read(metadata_file)?)?;
    let model = metadata["name"].as_str().ok_or("metadata without a name")?;
    let inputs = metadata["inputs"]
        .as_array()
        .ok_or("metadata without inputs")?
        .iter()
        .map(Input::from_metadata)
        .collect::<Result<Vec<_>, _>>()?;
    let plain: Vec<Value> = inputs
        .iter()
        .map(|input| {
            json!({"name": input.name, "datatype": input.datatype, "shape": input.shape,
                   "data": input.json})
        })
        .collect();
    std::fs::create_dir_all(folder)?;
    std::fs::write(
        folder.join("request.json"),
        serde_json::to_vec(&json!({ "inputs": plain }))?,
    )?;

    let described: Vec<Value> = inputs
        .iter()
        .map(|input| {
            json!({"name": input.name, "datatype": input.datatype, "shape": input.shape,
                   "parameters": {"binary_data_size": input.bytes.len()}})
        })
        .collect();
    let mut binary = serde_json::to_vec(&json!({ "inputs": described }))?;
    let header_length = binary.len();
    for input in &inputs {
        binary.extend_from_slice(&input.bytes);
    }
    std::fs::write(folder.join("request.bin"), binary)?;
    std::fs::write(
        folder.join("request.bin.header-length"),
        header_length.to_string(),
    )?;

    let message = pb::ModelInferRequest {
        model_name: model.to_string(),
        inputs: inputs
            .iter()
            .map(|input| pb::model_infer_request::InferInputTensor {
                name: input.name.clone(),
                datatype: input.datatype.clone(),
                shape: input.shape.clone(),
                ..Default::default()
            })
            .collect(),
        raw_input_contents: inputs.iter().map(|input| input.bytes.clone()).collect(),
        ..Default::default()
    };
    let encoded = prost::Message::encode_to_vec(&message);
    // gRPC's framing: not compressed, the message's length (big-endian), the message.
    let mut framed = vec![0u8];
    framed.extend(u32::try_from(encoded.len())?.to_be_bytes());
    framed.extend(encoded);
    std::fs::write(folder.join("request.grpc"), framed)?;
    Ok(())
}
