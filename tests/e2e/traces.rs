//! OpenTelemetry traces, end to end: a small OTLP/gRPC collector (opentelemetry-proto's trace
//! service, served by tonic in the test) receives what mlhost exports to `tracing_server`; the
//! spans' names, their parents (the `traceparent` the client sent) and the sampling settings
//! (Triton's trace extension) are checked on what arrives. And the run-time log settings
//! (Triton's logging extension).

use crate::support::{Connection, Response, Server, model_folder};
use mlhost::pb;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LINEAR: &str =
    r#"{"kind": "linear", "coefficients": [[2.0, -1.0]], "intercepts": [1.0], "input_name": "x"}"#;

/// The spans the collector received, and the services that sent them.
#[derive(Default, Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    services: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource_spans in request.into_inner().resource_spans {
            let name = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| text(attribute.value.as_ref()?.value.as_ref()?));
            self.services.lock().unwrap().extend(name);
            for scope_spans in resource_spans.scope_spans {
                self.spans.lock().unwrap().extend(scope_spans.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn text(value: &any_value::Value) -> Option<String> {
    match value {
        any_value::Value::StringValue(text) => Some(text.clone()),
        _ => None,
    }
}

impl Collector {
    /// A collector listening on a free port of 127.0.0.1.
    async fn start() -> (Collector, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let collector = Collector::default();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (collector, address)
    }

    /// The spans of the trace whose request span says `request_id`, once it has arrived.
    async fn trace_of(&self, request_id: &str) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            {
                let spans = self.spans.lock().unwrap();
                if let Some(root) = spans.iter().find(|span| {
                    attribute(span, "mlhost.request_id").as_deref() == Some(request_id)
                }) {
                    return spans
                        .iter()
                        .filter(|span| span.trace_id == root.trace_id)
                        .cloned()
                        .collect();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no trace of {request_id}: {:?}",
                self.names()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The request ids of the request spans received.
    fn request_ids(&self) -> Vec<String> {
        let spans = self.spans.lock().unwrap();
        let mut ids: Vec<String> = spans
            .iter()
            .filter_map(|span| attribute(span, "mlhost.request_id"))
            .collect();
        ids.sort();
        ids
    }

    fn names(&self) -> Vec<String> {
        let spans = self.spans.lock().unwrap();
        spans.iter().map(|span| span.name.clone()).collect()
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|attribute| attribute.key == key)?;
    match value.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(text) => Some(text.clone()),
        any_value::Value::IntValue(number) => Some(number.to_string()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The one span named `name` of `trace`.
fn named<'a>(trace: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = trace.iter().filter(|span| span.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "one {name} in {:?}",
        trace.iter().map(|span| &span.name).collect::<Vec<_>>()
    );
    found[0]
}

/// Checks that `trace` is a request span `root` under the remote parent `parent` (hex; `None`:
/// a root) with `children` under it, and that each stage span lies within the request's.
fn check_trace(trace: &[Span], root: &str, parent: Option<&str>, children: &[(&str, &str)]) {
    let request = named(trace, root);
    assert_eq!(request.kind, 2, "a server span");
    match parent {
        Some(parent) => assert_eq!(hex(&request.parent_span_id), parent),
        None => assert!(request.parent_span_id.is_empty()),
    }
    for (name, under) in children {
        let span = named(trace, name);
        let expected = if *under == root {
            &request.span_id
        } else {
            &named(trace, under).span_id
        };
        assert_eq!(&span.parent_span_id, expected, "{name} is under {under}");
        assert!(
            span.start_time_unix_nano >= request.start_time_unix_nano
                && span.end_time_unix_nano <= request.end_time_unix_nano
                && span.start_time_unix_nano <= span.end_time_unix_nano,
            "{name} lies within the request"
        );
    }
}

fn models() -> tempfile::TempDir {
    model_folder(&[
        (
            "batched/model-settings.json",
            r#"{"implementation": "linear", "max_batch_size": 8, "max_batch_time": 0.01}"#,
        ),
        ("batched/linear.json", LINEAR),
        (
            "plain/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("plain/linear.json", LINEAR),
    ])
}

fn infer(server: &Server, model: &str, id: &str, traceparent: Option<&str>) -> Response {
    let body =
        json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1.0, 2.0]}]});
    let mut headers = vec![("Content-Type", "application/json"), ("x-request-id", id)];
    headers.extend(traceparent.map(|value| ("traceparent", value)));
    let response = tokio::task::block_in_place(|| {
        Connection::open(server.address).request(
            "POST",
            &format!("/v2/models/{model}/infer"),
            &headers,
            body.to_string().as_bytes(),
        )
    });
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    response
}

fn start(collector: SocketAddr, env: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let dir = models();
    let server_env = format!("{collector}");
    let mut all = vec![("MLHOST_TRACING_SERVER", server_env.as_str())];
    all.extend_from_slice(env);
    let server = tokio::task::block_in_place(|| Server::start_with(dir.path(), &[], &all));
    (dir, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_traced_by_stage_under_the_traceparent_they_carry() {
    let (collector, address) = Collector::start().await;
    let (_dir, server) = start(address, &[]);

    // REST, to a model that batches, under a sampled remote parent.
    let (trace, parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    infer(
        &server,
        "batched",
        "rest-1",
        Some(&format!("00-{trace}-{parent}-01")),
    );
    let spans = collector.trace_of("rest-1").await;
    assert_eq!(hex(&spans[0].trace_id), trace, "the traceparent's trace");
    let root = "POST /v2/models/{model_name}/infer";
    check_trace(
        &spans,
        root,
        Some(parent),
        &[
            ("receive", root),
            ("decode", root),
            ("queue", root),
            ("batch", "queue"),
            ("compute", root),
            ("compute_input", "compute"),
            ("compute_infer", "compute"),
            ("compute_output", "compute"),
            ("encode", root),
        ],
    );
    let request = named(&spans, root);
    assert_eq!(attribute(request, "model.name").as_deref(), Some("batched"));
    assert_eq!(
        attribute(request, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        collector.services.lock().unwrap()[0],
        "mlhost",
        "the server's name"
    );

    // gRPC, its traceparent in the call's metadata.
    let (grpc_trace, grpc_parent) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let mut client = pb::grpc_inference_service_client::GrpcInferenceServiceClient::connect(
        format!("http://{}", server.grpc_address),
    )
    .await
    .unwrap();
    let mut call = tonic::Request::new(pb::ModelInferRequest {
        model_name: "plain".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "x".into(),
            datatype: "FP64".into(),
            shape: vec![1, 2],
            contents: Some(pb::InferTensorContents {
                fp64_contents: vec![1.0, 2.0],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    });
    let metadata = call.metadata_mut();
    metadata.insert(
        "traceparent",
        format!("00-{grpc_trace}-{grpc_parent}-01").parse().unwrap(),
    );
    metadata.insert("x-request-id", "grpc-1".parse().unwrap());
    client.model_infer(call).await.unwrap();
    let spans = collector.trace_of("grpc-1").await;
    assert_eq!(hex(&spans[0].trace_id), grpc_trace);
    let root = "/inference.GRPCInferenceService/ModelInfer";
    check_trace(
        &spans,
        root,
        Some(grpc_parent),
        &[
            ("receive", root),
            ("decode", root),
            ("queue", root),
            ("compute", root),
            ("compute_infer", "compute"),
            ("encode", root),
        ],
    );
    assert!(
        spans.iter().all(|span| span.name != "batch"),
        "plain does not batch"
    );
    assert_eq!(
        attribute(named(&spans, root), "rpc.grpc.status_code").as_deref(),
        Some("0")
    );

    // Without a traceparent, a trace of its own; with an unsampled one, none.
    infer(
        &server,
        "plain",
        "unsampled",
        Some(&format!("00-{trace}-{parent}-00")),
    );
    infer(&server, "plain", "root-1", None);
    let spans = collector.trace_of("root-1").await;
    check_trace(
        &spans,
        "POST /v2/models/{model_name}/infer",
        None,
        &[("compute", "POST /v2/models/{model_name}/infer")],
    );
    assert_ne!(hex(&spans[0].trace_id), trace);
    let traced = collector.request_ids();
    assert!(!traced.contains(&"unsampled".to_string()), "{traced:?}");
    // The health probes are not traced, as MLServer's.
    tokio::task::block_in_place(|| server.get("/v2/health/ready"));
    infer(&server, "plain", "after-probe", None);
    collector.trace_of("after-probe").await;
    assert!(
        collector
            .names()
            .iter()
            .all(|name| !name.contains("health")),
        "{:?}",
        collector.names()
    );
}

/// `POST path` with `body` on a new connection.
fn post(server: &Server, path: &str, body: serde_json::Value) -> Response {
    tokio::task::block_in_place(|| server.post_json(path, &body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triton_s_trace_settings_change_the_sampling_at_run_time() {
    let (collector, address) = Collector::start().await;
    let (_dir, server) = start(address, &[]);
    let settings = tokio::task::block_in_place(|| server.get("/v2/trace/setting")).json();
    assert_eq!(settings["trace_level"], json!(["TIMESTAMPS"]));
    assert_eq!(settings["trace_rate"], "1");
    assert_eq!(settings["trace_count"], "-1");
    assert_eq!(settings["trace_mode"], "opentelemetry");
    assert_eq!(settings["url"], format!("http://{address}"));

    // One request in two; then none; then all again, two at most.
    let changed = post(&server, "/v2/trace/setting", json!({"trace_rate": "2"}));
    assert_eq!(changed.json()["trace_rate"], "2");
    for id in ["r1", "r2", "r3", "r4"] {
        infer(&server, "plain", id, None);
    }
    post(
        &server,
        "/v2/trace/setting",
        json!({"trace_level": ["OFF"]}),
    );
    infer(&server, "plain", "r5", None);
    let on = post(
        &server,
        "/v2/trace/setting",
        json!({"trace_level": ["TIMESTAMPS"], "trace_rate": "1", "trace_count": "2"}),
    );
    assert_eq!(on.json()["trace_count"], "2");
    // A model's own settings: batched is not traced, plain still is.
    let model = post(
        &server,
        "/v2/models/batched/trace/setting",
        json!({"trace_level": ["OFF"]}),
    );
    assert_eq!(model.json()["trace_level"], json!(["OFF"]));
    infer(&server, "batched", "r6", None);
    infer(&server, "plain", "r7", None);
    infer(&server, "plain", "r8", None);
    infer(&server, "plain", "r9", None);
    collector.trace_of("r8").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(collector.request_ids(), ["r2", "r4", "r7", "r8"]);
    let left = tokio::task::block_in_place(|| server.get("/v2/trace/setting")).json();
    assert_eq!(left["trace_count"], "0", "the count is spent");

    // What the extension cannot do is said plainly.
    for (body, expected) in [
        (
            json!({"trace_level": ["TENSORS"]}),
            "TENSORS is not supported",
        ),
        (json!({"trace_file": "/tmp/trace.json"}), "not to a file"),
        (json!({"log_frequency": "10"}), "not to a file"),
        (
            json!({"trace_rate": "zero"}),
            "Unable to parse 'trace_rate'",
        ),
        (json!({"sample": 1}), "unknown trace setting 'sample'"),
    ] {
        let response = post(&server, "/v2/trace/setting", body);
        assert_eq!(response.status, 400);
        assert!(response.error().contains(expected), "{}", response.error());
    }
    let unknown = post(&server, "/v2/models/nope/trace/setting", json!({}));
    assert_eq!(unknown.status, 404);
}

#[test]
fn tracing_without_a_collector_is_off_and_says_how_to_turn_it_on() {
    let dir = models();
    let server = Server::start(dir.path());
    let settings = server.get("/v2/trace/setting").json();
    assert_eq!(settings["trace_level"], json!(["OFF"]));
    let response = server.post_json("/v2/trace/setting", &json!({"trace_level": ["TIMESTAMPS"]}));
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("set tracing_server"),
        "{}",
        response.error()
    );
}

#[test]
fn triton_s_log_settings_change_the_log_at_run_time() {
    let dir = models();
    let server = Server::start(dir.path());
    let settings = server.get("/v2/logging").json();
    assert_eq!(
        settings,
        json!({"log_file": "", "log_info": true, "log_warning": true, "log_error": true,
               "log_verbose_level": 0, "log_format": "default"})
    );
    let running = |server: &Server| {
        server
            .logs()
            .iter()
            .filter(|line| line.contains("running a batch"))
            .count()
    };
    let body =
        json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1.0, 2.0]}]});
    assert_eq!(
        server.post_json("/v2/models/batched/infer", &body).status,
        200
    );
    assert_eq!(running(&server), 0, "a debug line, off at info");

    // Verbose: mlhost's debug lines appear.
    let verbose = server.post_json("/v2/logging", &json!({"log_verbose_level": 1}));
    assert_eq!(verbose.json()["log_verbose_level"], 1);
    assert_eq!(
        server.post_json("/v2/models/batched/infer", &body).status,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(&server) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(running(&server), 1, "the batch's debug line");

    // Info off: a model that fails to load would still say so (error), the info lines stop.
    let quiet = server.post_json(
        "/v2/logging",
        &json!({"log_info": false, "log_verbose_level": 0}),
    );
    assert_eq!(quiet.json()["log_info"], false);
    let before = server.logs().len();
    let unload = server.post_json("/v2/repository/models/plain/unload", &json!({}));
    assert_eq!(unload.status, 200);
    std::thread::sleep(Duration::from_millis(300));
    let after: Vec<String> = server.logs()[before..].to_vec();
    assert!(
        after.iter().all(|line| !line.contains(" INFO ")),
        "{after:?}"
    );

    for (body, expected) in [
        (
            json!({"log_info": "false"}),
            "expect boolean for 'log_info'",
        ),
        (json!({"log_verbose_level": -1}), "expect unsigned integer"),
        (json!({"log_file": "/tmp/x.log"}), "logs to stderr only"),
        (json!({"log_format": "json"}), "chosen at start"),
        (json!({"log_level": 1}), "unknown log setting 'log_level'"),
    ] {
        let response = server.post_json("/v2/logging", &body);
        assert_eq!(response.status, 400, "{body}");
        assert!(response.error().contains(expected), "{}", response.error());
    }
    assert_eq!(
        server.get("/v2/logging").json()["log_info"],
        false,
        "refused changes change nothing"
    );
}

#[test]
fn unusable_tracing_settings_stop_the_server_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for (variable, value, expected) in [
        (
            "MLHOST_TRACING_SAMPLE_RATIO",
            "1.5",
            "`tracing_sample_ratio`: 1.5 is not between 0 and 1",
        ),
        (
            "MLSERVER_TRACING_SERVER",
            "https://collector:4317",
            "TLS is not supported",
        ),
        (
            "MLHOST_TRACING_SERVER",
            "not a host",
            "cannot export traces to tracing_server",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_mlhost"))
            .args(["serve", "--host", "127.0.0.1", "--http-port", "0"])
            .args(["--grpc-port", "0", "--metrics-port", "0", "--models"])
            .arg(dir.path())
            .env(variable, value)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{variable}={value}: {stderr}");
    }
}
