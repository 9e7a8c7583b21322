//! Warm-up (`warmup.json` in a model's folder): its requests run before the model is ready and
//! before a reload swaps in; one that fails fails the load with its reason.

use crate::support::{Server, model_folder};
use serde_json::{Value, json};

fn linear(slope: f64) -> String {
    json!({"kind": "linear", "coefficients": [[slope]], "intercepts": [0.0], "input_name": "x"})
        .to_string()
}

fn request(input: &str) -> Value {
    json!({"inputs": [{"name": input, "datatype": "FP64", "shape": [1, 1], "data": [1.0]}]})
}

fn stats(server: &Server, model: &str) -> Value {
    let response = server.get(&format!("/v2/models/{model}/stats"));
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()["model_stats"][0].clone()
}

fn index_entry(server: &Server, model: &str) -> Value {
    let index = server.connect().post("/v2/repository/index", b"").json();
    index
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == model)
        .unwrap_or_else(|| panic!("{model} not in {index}"))
        .clone()
}

#[test]
fn warm_up_runs_before_ready_and_a_failing_one_fails_the_load() {
    let warmup = json!([{"request": request("x"), "count": 3}, request("x")]).to_string();
    // Two features for a model of one: the runtime refuses it.
    let wrong =
        json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1.0, 2.0]}]});
    let failing = json!([request("x"), wrong]).to_string();
    let dir = model_folder(&[
        (
            "warm/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("warm/linear.json", &linear(2.0)),
        ("warm/warmup.json", &warmup),
        (
            "batched/model-settings.json",
            r#"{"implementation": "linear", "max_batch_size": 4, "max_batch_time": 0.01}"#,
        ),
        ("batched/linear.json", &linear(2.0)),
        ("batched/warmup.json", &warmup),
        (
            "broken/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("broken/linear.json", &linear(2.0)),
        ("broken/warmup.json", &failing),
    ]);
    let server = Server::start(dir.path());

    // Ready only once its four warm-up runs are done; they are runs, not client requests.
    for model in ["warm", "batched"] {
        let stats = stats(&server, model);
        assert_eq!(stats["execution_count"], 4, "{model}: {stats}");
        assert_eq!(stats["inference_count"], 0, "{model}: {stats}");
        assert_eq!(stats["inference_stats"]["success"]["count"], 0);
    }

    // A warm-up that fails leaves the model unavailable with the reason.
    let broken = index_entry(&server, "broken");
    assert_eq!(broken["state"], "UNAVAILABLE", "{broken}");
    let reason = broken["reason"].as_str().unwrap();
    assert!(
        reason.contains("warm-up request 2 of") && reason.contains("warmup.json"),
        "{reason}"
    );
    let cause = reason.split("(run 1 of 1): ").nth(1).unwrap_or_default();
    assert!(!cause.is_empty(), "the request's own error: {reason}");
    let ready = server.get("/v2/models/broken/ready");
    assert_eq!(
        ready.status,
        400,
        "{:?}",
        String::from_utf8_lossy(&ready.body)
    );

    // A reload whose warm-up fails is refused with the reason; the serving version stays.
    std::fs::write(dir.path().join("warm/linear.json"), linear(7.0)).unwrap();
    std::fs::write(dir.path().join("warm/warmup.json"), &failing).unwrap();
    let response = server
        .connect()
        .post("/v2/repository/models/warm/load", b"");
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("warm-up request 2"),
        "{}",
        response.error()
    );
    let answer = server
        .post_json("/v2/models/warm/infer", &request("x"))
        .json();
    assert_eq!(
        answer["outputs"][0]["data"],
        json!([2.0]),
        "the old version serves"
    );

    // Fixed, the reload warms up and swaps in.
    std::fs::write(dir.path().join("warm/warmup.json"), &warmup).unwrap();
    assert_eq!(
        server
            .connect()
            .post("/v2/repository/models/warm/load", b"")
            .status,
        200
    );
    assert_eq!(stats(&server, "warm")["execution_count"], 4);
    let answer = server
        .post_json("/v2/models/warm/infer", &request("x"))
        .json();
    assert_eq!(answer["outputs"][0]["data"], json!([7.0]));

    // A file that is not a list of requests fails the load too, naming the file.
    std::fs::write(dir.path().join("broken/warmup.json"), r#"{"inputs": []}"#).unwrap();
    let response = server
        .connect()
        .post("/v2/repository/models/broken/load", b"");
    assert_eq!(response.status, 400);
    let error = response.error();
    assert!(
        error.contains("warmup.json: not a list of inference requests"),
        "{error}"
    );
}
