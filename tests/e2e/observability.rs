//! Metrics on their own port, request ids in logs and responses, and the OpenAPI document.

use crate::support::{Connection, Server, model_folder};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A repository with a plain linear model, a batching one, and the hostile test runtime.
pub(crate) fn repository(settings: &str) -> tempfile::TempDir {
    let linear =
        r#"{"kind": "linear", "coefficients": [[2.0]], "intercepts": [1.0], "input_name": "x"}"#;
    let dir = model_folder(&[
        ("settings.json", settings),
        (
            "plain/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("plain/linear.json", linear),
        (
            "batched/model-settings.json",
            r#"{"implementation": "linear", "max_batch_size": 64, "max_batch_time": 0.2}"#,
        ),
        ("batched/linear.json", linear),
        (
            "hostile/model-settings.json",
            r#"{"implementation": "hostile.wasm", "memory_limit_mb": 64, "timeout_seconds": 2}"#,
        ),
    ]);
    let component = crate::support::linear_component().with_file_name("mlhost_test_hostile.wasm");
    std::fs::copy(component, dir.path().join("hostile/hostile.wasm")).unwrap();
    dir
}

/// The samples of a Prometheus text exposition (0.0.4): `name{labels}` → value. Checks the
/// format as it goes: every sample belongs to a family declared by `# TYPE`, and there is no
/// OpenMetrics `# EOF`.
pub(crate) fn samples(text: &str) -> HashMap<String, f64> {
    assert!(!text.contains("# EOF"), "0.0.4 text has no # EOF");
    let mut families = Vec::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(declaration) = line.strip_prefix("# TYPE ") {
            families.push(declaration.split(' ').next().unwrap().to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            families
                .iter()
                .any(|family| name.starts_with(family.as_str())),
            "{name} has no # TYPE"
        );
        samples.insert(series.to_string(), value.parse().unwrap());
    }
    samples
}

fn scrape(server: &Server) -> HashMap<String, f64> {
    let response = server.scrape("/metrics");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    samples(std::str::from_utf8(&response.body).unwrap())
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    let value = |samples: &HashMap<String, f64>| samples.get(series).copied().unwrap_or(0.0);
    value(after) - value(before)
}

fn x(values: &[f64]) -> Value {
    json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [values.len(), 1], "data": values}]})
}

fn attack(name: &str, extra: Value) -> Value {
    let mut parameters = json!({"attack": name});
    parameters
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    json!({"parameters": parameters,
           "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]})
}

const INFER: &str = "/v2/models/{model_name}/infer";

#[test]
fn counters_move_by_exactly_what_was_done() {
    let models = repository("{}");
    let server = Server::start(models.path());
    let before = scrape(&server);
    assert_eq!(before.get(r#"mlhost_models{state="READY"}"#), Some(&3.0));
    for _ in 0..3 {
        assert_eq!(
            server
                .post_json("/v2/models/plain/infer", &x(&[1.0, 2.0]))
                .status,
            200
        );
    }
    // Two failures: a request the runtime refuses, and one the host refuses.
    let two_columns =
        json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]});
    assert_eq!(
        server
            .post_json("/v2/models/plain/infer", &two_columns)
            .status,
        400
    );
    assert_eq!(
        server
            .post_json("/v2/models/plain/infer", &json!({"inputs": []}))
            .status,
        400
    );
    // Four requests at once through the batching model.
    let handles: Vec<_> = (0..4)
        .map(|index| {
            let connection = server.connect();
            std::thread::spawn(move || {
                let mut connection: Connection = connection;
                let body = serde_json::to_vec(&x(&[index as f64])).unwrap();
                connection.post("/v2/models/batched/infer", &body).status
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), 200);
    }
    // A trap, a deadline and a memory limit, each costing the hostile model its instance.
    assert_eq!(
        server
            .post_json("/v2/models/hostile/infer", &attack("trap", json!({})))
            .status,
        500
    );
    let deadline = server.post_json(
        "/v2/models/hostile/infer",
        &attack("loop", json!({"timeout": 200_000})),
    );
    assert_eq!(deadline.status, 504);
    assert_eq!(
        server
            .post_json("/v2/models/hostile/infer", &attack("grow", json!({})))
            .status,
        500
    );
    // A worker re-creates its instance after answering; its next request waits for that.
    assert_eq!(
        server
            .post_json("/v2/models/hostile/infer", &attack("", json!({})))
            .status,
        200
    );
    let after = scrape(&server);

    // MLServer's inference families are labelled {model, version}; the others by model_name.
    let infer = |model: &str| format!(r#"model="{model}",version="""#);
    let plain = r#"model_name="plain",model_version="""#;
    let hostile = r#"model_name="hostile",model_version="""#;
    let batched = r#"model_name="batched",model_version="""#;
    let d = |series: &str| delta(&before, &after, series);
    let success = |model| {
        d(&format!(
            "model_infer_request_success_total{{{}}}",
            infer(model)
        ))
    };
    let failure = |model| {
        d(&format!(
            "model_infer_request_failure_total{{{}}}",
            infer(model)
        ))
    };
    assert_eq!(success("plain"), 3.0);
    assert_eq!(failure("plain"), 2.0);
    assert_eq!(success("batched"), 4.0);
    assert_eq!(failure("hostile"), 3.0);
    assert_eq!(
        d(&format!(
            "model_infer_request_duration_count{{{}}}",
            infer("plain")
        )),
        5.0,
        "every request timed, success or failure"
    );
    assert!(
        d(&format!(
            "model_infer_request_duration_sum{{{}}}",
            infer("plain")
        )) > 0.0
    );
    assert_eq!(
        d(&format!("mlhost_instances_recreated_total{{{hostile}}}")),
        3.0
    );
    assert_eq!(
        d(&format!("mlhost_deadline_exceeded_total{{{hostile}}}")),
        1.0
    );
    assert_eq!(
        d(&format!("mlhost_memory_limit_exceeded_total{{{hostile}}}")),
        1.0
    );
    assert_eq!(
        d(&format!("mlhost_model_compute_seconds_count{{{plain}}}")),
        3.0
    );
    assert_eq!(
        d(&format!("mlhost_model_queue_seconds_count{{{plain}}}")),
        3.0
    );
    assert_eq!(
        d(&format!("mlhost_worker_queue_count{{{plain}}}")),
        4.0,
        "calls that reached the workers"
    );
    // MLServer's queue histogram has no labels: every model's calls.
    let calls: f64 = [plain, batched, hostile]
        .iter()
        .map(|labels| d(&format!("mlhost_worker_queue_count{{{labels}}}")))
        .sum();
    assert_eq!(d("parallel_request_queue_count"), calls);
    assert_eq!(d(&format!("batch_request_queue_count{{{batched}}}")), 4.0);
    let batches = d(&format!("mlhost_batch_rows_count{{{batched}}}"));
    assert!(
        (1.0..=4.0).contains(&batches),
        "4 requests ran in 1 to 4 batches (they merge only while the worker is busy): {batches}"
    );
    assert_eq!(d(&format!("mlhost_batch_rows_sum{{{batched}}}")), 4.0);
    let rest = |status: u16| {
        d(&format!(
            r#"rest_server_requests_total{{method="POST",path="{INFER}",status_code="{status}",app_name="mlserver"}}"#
        ))
    };
    assert_eq!(rest(200), 8.0);
    assert_eq!(rest(400), 2.0);
    assert_eq!(rest(500), 2.0);
    assert_eq!(rest(504), 1.0);
    assert_eq!(
        d(&format!(
            r#"rest_server_request_duration_seconds_count{{method="POST",path="{INFER}",status_code="200",app_name="mlserver"}}"#
        )),
        8.0
    );
    assert_eq!(
        after.get(r#"rest_server_requests_in_progress{method="POST",app_name="mlserver"}"#),
        Some(&0.0)
    );
    assert_eq!(
        after.get(r#"mlhost_model_load_seconds_count{model_name="plain",model_version=""}"#),
        Some(&1.0)
    );

    // As MLServer's exporter: paths no route matches and health probes make no series.
    assert_eq!(server.get("/no/such/path").status, 404);
    assert_eq!(server.get("/v2/health/live").status, 200);
    let later = scrape(&server);
    assert!(
        later
            .keys()
            .all(|series| !series.contains("/no/such") && !series.contains("/v2/health")),
        "{later:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_calls_are_counted_by_method_and_code() {
    use mlhost::pb;
    let models = repository("{}");
    let server = Server::start(models.path());
    let before = scrape(&server);
    let mut client = pb::grpc_inference_service_client::GrpcInferenceServiceClient::connect(
        format!("http://{}", server.grpc_address),
    )
    .await
    .unwrap();
    client.server_live(pb::ServerLiveRequest {}).await.unwrap();
    client.server_live(pb::ServerLiveRequest {}).await.unwrap();
    let missing = pb::ModelMetadataRequest {
        name: "nothing".into(),
        version: String::new(),
    };
    client.model_metadata(missing).await.unwrap_err();
    let after = scrape(&server);
    let labels = |method: &str| {
        format!(
            r#"grpc_type="UNARY",grpc_service="inference.GRPCInferenceService",grpc_method="{method}""#
        )
    };
    let d = |series: String| delta(&before, &after, &series);
    assert_eq!(
        d(format!(
            "grpc_server_started_total{{{}}}",
            labels("ServerLive")
        )),
        2.0
    );
    assert_eq!(
        d(format!(
            r#"grpc_server_handled_total{{{},grpc_code="OK"}}"#,
            labels("ServerLive")
        )),
        2.0
    );
    assert_eq!(
        d(format!(
            r#"grpc_server_handled_total{{{},grpc_code="NOT_FOUND"}}"#,
            labels("ModelMetadata")
        )),
        1.0
    );
    assert_eq!(
        d(format!(
            "grpc_server_handling_seconds_count{{{}}}",
            labels("ServerLive")
        )),
        2.0
    );
}

#[test]
fn the_metrics_endpoint_follows_its_settings() {
    let models =
        repository(r#"{"metrics_endpoint": "/custom", "metrics_rest_server_prefix": "api"}"#);
    let server = Server::start(models.path());
    assert_eq!(server.scrape("/metrics").status, 404);
    server.get("/v2");
    let text = String::from_utf8(server.scrape("/custom").body).unwrap();
    assert!(
        text.contains(
            r#"api_requests_total{method="GET",path="/v2",status_code="200",app_name="mlserver"} 1"#
        ),
        "{text}"
    );

    let models = repository(r#"{"metrics_endpoint": null}"#);
    let server = Server::start(models.path());
    assert!(
        server
            .logs()
            .iter()
            .all(|line| !line.contains("metrics server"))
    );
}

#[test]
fn every_log_line_of_a_request_names_it_and_logs_can_be_json() {
    let models = repository(r#"{"use_structured_logging": true}"#);
    let server = Server::start(models.path());
    let body = serde_json::to_vec(&attack("chatter", json!({}))).unwrap();
    let response = server.connect().request(
        "POST",
        "/v2/models/hostile/infer",
        &[
            ("Content-Type", "application/json"),
            ("X-Request-Id", "req-42"),
        ],
        &body,
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-request-id"), Some("req-42"));
    // A generated id when the client gives none.
    let other = server.post_json("/v2/models/plain/infer", &x(&[1.0]));
    assert_eq!(other.header("x-request-id").map(str::len), Some(16));

    std::thread::sleep(std::time::Duration::from_millis(200));
    let lines: Vec<Value> = server
        .logs()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    // The runtime's own output, written on a worker thread, carries the request's id.
    let guest_lines: Vec<&Value> = lines
        .iter()
        .filter(|line| line["span"]["id"] == json!("req-42"))
        .collect();
    assert!(!guest_lines.is_empty(), "{lines:?}");
    assert!(
        guest_lines.iter().any(|line| line["fields"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("chatter")
            || line["fields"].to_string().contains("stdout")),
        "{guest_lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|line| line["level"].is_string() && line["timestamp"].is_string())
    );
}

/// Every failure on the server's side is logged once, with its cause, under the request's id;
/// a client's mistake is not.
#[test]
fn server_failures_are_logged_once_with_their_cause_and_request_id() {
    let models = repository(r#"{"use_structured_logging": true}"#);
    let server = Server::start(models.path());
    let body = serde_json::to_vec(&attack("trap", json!({}))).unwrap();
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Request-Id", "req-trap"),
    ];
    let response = server
        .connect()
        .request("POST", "/v2/models/hostile/infer", &headers, &body);
    assert_eq!(response.status, 500);
    let bad = serde_json::to_vec(&json!({"inputs": []})).unwrap();
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Request-Id", "req-bad"),
    ];
    let response = server
        .connect()
        .request("POST", "/v2/models/plain/infer", &headers, &bad);
    assert_eq!(response.status, 400);

    std::thread::sleep(std::time::Duration::from_millis(200));
    let lines: Vec<Value> = server
        .logs()
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let failures = |id: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|line| {
                line["span"]["id"] == json!(id) && line["fields"]["message"] == "request failed"
            })
            .collect()
    };
    let trapped = failures("req-trap");
    assert_eq!(trapped.len(), 1, "{lines:?}");
    assert_eq!(trapped[0]["level"], "ERROR");
    let error = trapped[0]["fields"]["error"].as_str().unwrap_or("");
    assert!(error.contains("trapped"), "{error}");
    assert!(failures("req-bad").is_empty(), "{lines:?}");
}

#[test]
fn the_openapi_document_lists_exactly_the_routes_that_answer() {
    let server = Server::start(&crate::support::example_models());
    let document = server.get("/v2/docs/dataplane.json").json();
    assert_eq!(document["openapi"], json!("3.0.3"));
    let paths = document["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{model}", "iris").replace("{version}", "1");
            let response = server.connect().request(
                &method.to_uppercase(),
                &concrete,
                &[("Content-Type", "application/json")],
                b"{}",
            );
            let fallback = response.status == 405
                || (response.status == 404
                    && serde_json::from_slice::<Value>(&response.body)
                        .is_ok_and(|body| body == json!({"error": "not found"})));
            assert!(
                !fallback,
                "{method} {concrete} is documented but not served"
            );
            checked += 1;
        }
    }
    assert!(checked >= 29, "{checked} operations");
    // And the page that renders it is served, self-contained.
    let page = server.get("/v2/docs");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8(page.body).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no asset from elsewhere"
    );
    let model = server
        .get("/v2/models/house-prices/docs/dataplane.json")
        .json();
    assert!(
        model["paths"]
            .get("/v2/models/house-prices/infer")
            .is_some()
    );
    assert_eq!(
        server.get("/v2/models/nothing/docs/dataplane.json").status,
        404
    );
}
