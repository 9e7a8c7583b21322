//! The response cache (`cache_enabled`, `cache_size`, `max_cache_mb`): hits answer the same
//! bytes, are counted in Triton's statistics and mlhost's metrics, never cross versions, reloads
//! or parameters, are bounded by entries and bytes, and are off unless asked for.

use crate::support::{Server, model_folder};
use mlhost::pb;
use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use serde_json::{Value, json};
use std::collections::HashMap;

fn linear(slope: f64) -> String {
    json!({"kind": "linear", "coefficients": [[slope]], "intercepts": [0.0], "input_name": "x"})
        .to_string()
}

const CACHED: &str = r#"{"implementation": "linear", "cache_enabled": true}"#;

/// A request body for `x` (one column, one row per value), with `extra` fields.
fn body(xs: &[f64], extra: Value) -> Vec<u8> {
    let mut request = json!({
        "id": "r1",
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [xs.len(), 1], "data": xs}],
    });
    if let (Some(request), Some(extra)) = (request.as_object_mut(), extra.as_object()) {
        request.extend(extra.clone());
    }
    request.to_string().into_bytes()
}

fn infer(server: &Server, path: &str, body: &[u8]) -> Vec<u8> {
    let response = server.connect().post(&format!("{path}/infer"), body);
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    response.body
}

/// The statistics of one model version.
fn stats(server: &Server, path: &str) -> Value {
    let response = server.get(&format!("{path}/stats"));
    assert_eq!(response.status, 200);
    response.json()["model_stats"][0].clone()
}

/// (cache hits, cache misses, executions) of one model version.
fn counts(server: &Server, path: &str) -> (u64, u64, u64) {
    let stats = stats(server, path);
    let count = |field: &str| stats["inference_stats"][field]["count"].as_u64().unwrap();
    (
        count("cache_hit"),
        count("cache_miss"),
        stats["execution_count"].as_u64().unwrap(),
    )
}

#[test]
fn hits_answer_the_same_bytes_and_never_cross_versions_parameters_or_reloads() {
    let dir = model_folder(&[
        ("settings.json", r#"{"cache_enabled": true}"#),
        ("m/1/model-settings.json", CACHED),
        ("m/1/linear.json", &linear(2.0)),
        ("m/2/model-settings.json", CACHED),
        ("m/2/linear.json", &linear(3.0)),
        (
            "plain/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("plain/linear.json", &linear(2.0)),
    ]);
    let server = Server::start(dir.path());
    let (v1, v2) = ("/v2/models/m/versions/1", "/v2/models/m/versions/2");

    let first = infer(&server, v1, &body(&[1.0, 2.0], json!({})));
    let again = infer(&server, v1, &body(&[1.0, 2.0], json!({})));
    assert_eq!(first, again, "a hit answers the same bytes");
    assert_eq!(counts(&server, v1), (1, 1, 1));
    let stats = stats(&server, v1);
    assert_eq!(stats["inference_stats"]["success"]["count"], 2);
    assert_eq!(stats["inference_count"], 1, "hits are not inferences");

    // The id is not part of the key: a hit answers with the asking request's id.
    let other_id = infer(&server, v1, &body(&[1.0, 2.0], json!({"id": "r2"})));
    let answer: Value = serde_json::from_slice(&other_id).unwrap();
    assert_eq!(answer["id"], "r2");
    assert_eq!(
        answer["outputs"],
        serde_json::from_slice::<Value>(&first).unwrap()["outputs"]
    );
    assert_eq!(counts(&server, v1), (2, 1, 1));

    // Parameters and requested outputs are part of the key; `timeout` is not.
    infer(
        &server,
        v1,
        &body(&[1.0, 2.0], json!({"parameters": {"p": 1}})),
    );
    infer(
        &server,
        v1,
        &body(&[1.0, 2.0], json!({"parameters": {"timeout": 5000000}})),
    );
    assert_eq!(counts(&server, v1), (3, 2, 2));
    // An invalid timeout is refused as it would be without the cache.
    let refused = server.connect().post(
        &format!("{v1}/infer"),
        &body(&[1.0, 2.0], json!({"parameters": {"timeout": -1}})),
    );
    assert_eq!(refused.status, 400, "{:?}", refused.error());
    assert_eq!(
        counts(&server, v1),
        (3, 3, 2),
        "a lookup that found nothing"
    );

    // Another version has its own answers.
    let v2_answer: Value =
        serde_json::from_slice(&infer(&server, v2, &body(&[1.0, 2.0], json!({})))).unwrap();
    assert_eq!(v2_answer["outputs"][0]["data"], json!([3.0, 6.0]));
    assert_eq!(counts(&server, v2), (0, 1, 1));

    // A model that does not ask for the cache runs every request.
    infer(&server, "/v2/models/plain", &body(&[1.0], json!({})));
    infer(&server, "/v2/models/plain", &body(&[1.0], json!({})));
    assert_eq!(counts(&server, "/v2/models/plain"), (0, 0, 2));

    let metrics = String::from_utf8(server.scrape("/metrics").body).unwrap();
    for line in [
        r#"mlhost_cache_hits_total{model_name="m",model_version="1"} 3"#,
        r#"mlhost_cache_misses_total{model_name="m",model_version="1"} 3"#,
        "mlhost_cache_entries 3",
    ] {
        assert!(metrics.contains(line), "no {line:?} in {metrics}");
    }

    // A reload never answers from its predecessor's entries.
    std::fs::write(dir.path().join("m/1/linear.json"), linear(5.0)).unwrap();
    assert_eq!(
        server
            .connect()
            .post("/v2/repository/models/m/load", b"")
            .status,
        200
    );
    let reloaded: Value =
        serde_json::from_slice(&infer(&server, v1, &body(&[1.0, 2.0], json!({})))).unwrap();
    assert_eq!(reloaded["outputs"][0]["data"], json!([5.0, 10.0]));
    assert_eq!(counts(&server, v1), (0, 1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_requests_hit_the_cache_too() {
    let dir = model_folder(&[
        ("settings.json", r#"{"cache_enabled": true}"#),
        ("m/model-settings.json", CACHED),
        ("m/linear.json", &linear(2.0)),
    ]);
    let server = Server::start(dir.path());
    let mut client = GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_address))
        .await
        .unwrap();
    let request = pb::ModelInferRequest {
        model_name: "m".into(),
        id: "g".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "x".into(),
            datatype: "FP64".into(),
            shape: vec![1, 1],
            parameters: HashMap::new(),
            contents: Some(pb::InferTensorContents {
                fp64_contents: vec![4.0],
                ..Default::default()
            }),
        }],
        ..Default::default()
    };
    let first = client
        .model_infer(request.clone())
        .await
        .unwrap()
        .into_inner();
    let again = client.model_infer(request).await.unwrap().into_inner();
    assert_eq!(first, again);
    assert_eq!(counts(&server, "/v2/models/m"), (1, 1, 1));
}

#[test]
fn the_cache_is_bounded_by_entries_and_by_bytes() {
    let dir = model_folder(&[
        (
            "settings.json",
            r#"{"cache_enabled": true, "cache_size": 2, "max_cache_mb": 1}"#,
        ),
        ("m/model-settings.json", CACHED),
        ("m/linear.json", &linear(2.0)),
    ]);
    let server = Server::start(dir.path());
    let path = "/v2/models/m";
    let small = |x: f64| body(&[x], json!({}));

    // Entries: a third answer evicts the least recently used.
    infer(&server, path, &small(1.0));
    infer(&server, path, &small(2.0));
    infer(&server, path, &small(1.0)); // hit: 2 is now the least recently used
    infer(&server, path, &small(3.0)); // evicts 2
    assert_eq!(counts(&server, path), (1, 3, 3));
    infer(&server, path, &small(1.0));
    infer(&server, path, &small(2.0));
    assert_eq!(counts(&server, path), (2, 4, 4), "1 stayed, 2 was evicted");

    // Bytes: two answers of 600 kB do not fit in 1 MiB together.
    let rows: Vec<f64> = (0..75_000).map(f64::from).collect();
    let large = |first: f64| {
        let mut xs = rows.clone();
        xs[0] = first;
        body(&xs, json!({}))
    };
    infer(&server, path, &large(-1.0));
    infer(&server, path, &large(-2.0)); // evicts the other large answer
    infer(&server, path, &large(-2.0));
    assert_eq!(counts(&server, path), (3, 6, 6));
    infer(&server, path, &large(-1.0));
    assert_eq!(
        counts(&server, path),
        (3, 7, 7),
        "the first large answer was evicted"
    );
    let metrics = String::from_utf8(server.scrape("/metrics").body).unwrap();
    assert!(
        metrics.contains("mlhost_cache_evictions_total"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("mlhost_cache_evictions_total 0\n"),
        "{metrics}"
    );
}

#[test]
fn the_cache_is_off_unless_the_server_asks_for_it_as_mlserver() {
    let dir = model_folder(&[
        ("m/model-settings.json", CACHED),
        ("m/linear.json", &linear(2.0)),
    ]);
    let server = Server::start(dir.path());
    let first = infer(&server, "/v2/models/m", &body(&[1.0], json!({})));
    let again = infer(&server, "/v2/models/m", &body(&[1.0], json!({})));
    assert_eq!(first, again);
    assert_eq!(counts(&server, "/v2/models/m"), (0, 0, 2));
    drop(server);

    // MLServer's variable turns it on.
    let server = Server::start_with(dir.path(), &[], &[("MLSERVER_CACHE_ENABLED", "true")]);
    infer(&server, "/v2/models/m", &body(&[1.0], json!({})));
    infer(&server, "/v2/models/m", &body(&[1.0], json!({})));
    assert_eq!(counts(&server, "/v2/models/m"), (1, 1, 1));
}
