//! Pipelines (docs/pipelines.md): a custom pre-processing runtime (tests/guests/pipeline-pre),
//! an XGBoost model (the trees runtime) and a post-processing runtime
//! (tests/guests/pipeline-post) served as one model over REST and gRPC, answering exactly what
//! the three calls give one after another; parallel branches; a step that traps failing only
//! its request, named; a step's model unloaded; the deadline; statistics and metrics per step.

use crate::support::{Server, linear_component, workspace};
use mlhost::pb;
use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use serde_json::{Value, json};
use std::path::Path;

/// The XGBoost and LightGBM binary classifiers of the trees runtime's fixtures (5 features).
const XGBOOST: &str = "runtimes/trees/fixtures/xgboost-binary/model.json";
const LIGHTGBM: &str = "runtimes/trees/fixtures/lightgbm-binary/model.bst";

const SCORING: &str = r#"{"pipeline": {
    "steps": [
        {"name": "pre", "inputs": ["inputs.rows"]},
        {"name": "model", "model": "xgb", "inputs": {"input-0": "pre.outputs.features"}},
        {"name": "post", "inputs": {"scores": "model.outputs.predict_proba"}}
    ],
    "outputs": ["post.outputs.label", "post.outputs.confidence", "model.outputs.predict_proba"]
}}"#;

const BRANCHES: &str = r#"{"pipeline": {
    "steps": [
        {"name": "pre"},
        {"name": "a", "model": "xgb", "inputs": {"input-0": "pre.outputs.features"}},
        {"name": "b", "model": "lgbm", "inputs": {"input-0": "pre.outputs.features"}}
    ],
    "outputs": {"xgboost": "a.outputs.predict", "lightgbm": "b.outputs.predict"}
}}"#;

/// A repository of the three steps' models and the pipelines over them.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let guests = linear_component();
    let write = |folder: &str, settings: Value, files: &[(&str, &Path)]| {
        let folder = dir.path().join(folder);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("model-settings.json"), settings.to_string()).unwrap();
        for (name, source) in files {
            std::fs::copy(source, folder.join(name)).unwrap();
        }
    };
    let extra = json!({"mean": [0.5, -0.25, 0.0, 1.0, 0.0], "scale": [2.0, 1.0, 0.5, 1.0, 4.0]});
    write(
        "pre",
        json!({"implementation": "./runtime.wasm", "parameters": {"extra": extra}}),
        &[(
            "runtime.wasm",
            &guests.with_file_name("mlhost_test_pipeline_pre.wasm"),
        )],
    );
    write(
        "post",
        json!({"implementation": "./runtime.wasm",
               "parameters": {"extra": {"classes": ["negative", "positive"]}}}),
        &[(
            "runtime.wasm",
            &guests.with_file_name("mlhost_test_pipeline_post.wasm"),
        )],
    );
    let fixtures = workspace();
    write(
        "xgb",
        json!({"implementation": "xgboost", "parameters": {"uri": "./model.json"}}),
        &[("model.json", &fixtures.join(XGBOOST))],
    );
    write(
        "lgbm",
        json!({"implementation": "lightgbm", "parameters": {"uri": "./model.bst"}}),
        &[("model.bst", &fixtures.join(LIGHTGBM))],
    );
    for (name, settings) in [("scoring", SCORING), ("branches", BRANCHES)] {
        let settings: Value = serde_json::from_str(settings).unwrap();
        write(name, settings, &[]);
    }
    dir
}

/// Text rows of the fixture's features.
fn rows() -> Vec<String> {
    let expected = workspace().join("runtimes/trees/fixtures/xgboost-binary/expected.json");
    let expected: Value = serde_json::from_slice(&std::fs::read(expected).unwrap()).unwrap();
    let rows = expected["rows"].as_array().unwrap();
    rows.iter()
        .map(|row| {
            let values: Vec<&str> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            values.join(",")
        })
        .collect()
}

fn rows_input(rows: &[String]) -> Value {
    json!({"name": "rows", "datatype": "BYTES", "shape": [rows.len()], "data": rows})
}

/// POSTs an inference request to `model`; its answer's outputs by name (200 expected).
fn infer(server: &Server, model: &str, body: Value) -> serde_json::Map<String, Value> {
    let response = server.post_json(&format!("/v2/models/{model}/infer"), &body);
    assert_eq!(response.status, 200, "{model}: {}", response.error());
    let answer = response.json();
    assert_eq!(answer["model_name"], json!(model));
    let outputs = answer["outputs"].as_array().unwrap();
    outputs
        .iter()
        .map(|output| (output["name"].as_str().unwrap().to_string(), output.clone()))
        .collect()
}

/// An output passed on as the next call's input named `name`: its datatype, shape and data.
fn as_input(output: &Value, name: &str) -> Value {
    json!({"name": name, "datatype": output["datatype"], "shape": output["shape"],
           "data": output["data"]})
}

#[test]
fn a_pipeline_answers_what_its_steps_give_one_after_another() {
    let dir = repository();
    let server = Server::start(dir.path());
    let rows = rows();
    // The three calls a client would make.
    let pre = infer(&server, "pre", json!({"inputs": [rows_input(&rows)]}));
    let features = as_input(&pre["features"], "input-0");
    let body = json!({"inputs": [features], "outputs": [{"name": "predict_proba"}]});
    let model = infer(&server, "xgb", body);
    let scores = as_input(&model["predict_proba"], "scores");
    let post = infer(&server, "post", json!({"inputs": [scores]}));

    let body = json!({"id": "r1", "inputs": [rows_input(&rows)]});
    let response = server.post_json("/v2/models/scoring/infer", &body);
    assert_eq!(response.status, 200, "{}", response.error());
    let answer = response.json();
    assert_eq!(answer["id"], json!("r1"));
    let names: Vec<&str> = answer["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|output| output["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["label", "confidence", "predict_proba"]);
    assert_eq!(answer["outputs"][0], post["label"]);
    assert_eq!(answer["outputs"][1], post["confidence"]);
    assert_eq!(answer["outputs"][2], model["predict_proba"]);
    // The steps did real work: labels follow the probabilities, both classes occur.
    let labels = answer["outputs"][0]["data"].as_array().unwrap();
    assert_eq!(labels.len(), rows.len());
    assert!(labels.contains(&json!("positive")) && labels.contains(&json!("negative")));

    // The request may ask for some outputs only.
    let body = json!({"inputs": [rows_input(&rows)], "outputs": [{"name": "confidence"}]});
    let only = infer(&server, "scoring", body);
    assert_eq!(only.keys().collect::<Vec<_>>(), ["confidence"]);
    assert_eq!(only["confidence"], post["confidence"]);
}

#[test]
fn steps_without_dependencies_between_them_run_side_by_side() {
    let dir = repository();
    let server = Server::start(dir.path());
    let rows = rows();
    let pre = infer(&server, "pre", json!({"inputs": [rows_input(&rows)]}));
    let features = json!({"inputs": [as_input(&pre["features"], "input-0")]});
    let xgboost = infer(&server, "xgb", features.clone());
    let lightgbm = infer(&server, "lgbm", features);
    let both = infer(&server, "branches", json!({"inputs": [rows_input(&rows)]}));
    assert_eq!(both["xgboost"]["data"], xgboost["predict"]["data"]);
    assert_eq!(both["lightgbm"]["data"], lightgbm["predict"]["data"]);
    assert_eq!(both["xgboost"]["datatype"], xgboost["predict"]["datatype"]);
}

#[test]
fn metadata_statistics_and_metrics_come_per_pipeline_and_per_step() {
    let dir = repository();
    let server = Server::start(dir.path());
    let metadata = server.get("/v2/models/scoring").json();
    assert_eq!(metadata["platform"], json!("pipeline"));
    assert_eq!(
        metadata["inputs"],
        json!([{"name": "rows", "datatype": "BYTES", "shape": [-1]}])
    );
    let outputs: Vec<(&str, &str)> = metadata["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["datatype"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outputs,
        [
            ("label", "BYTES"),
            ("confidence", "FP32"),
            ("predict_proba", "FP32")
        ]
    );
    assert_eq!(server.get("/v2/models/scoring/ready").status, 200);

    let body = json!({"inputs": [rows_input(&rows())]});
    infer(&server, "scoring", body.clone());
    infer(&server, "scoring", body);
    let stats = server.get("/v2/models/scoring/stats").json();
    let stats = &stats["model_stats"][0]["inference_stats"];
    assert_eq!(stats["success"]["count"], json!(2), "{stats}");
    // Each step's call counts in its model's statistics.
    let pre = server.get("/v2/models/pre/stats").json();
    let pre = &pre["model_stats"][0]["inference_stats"];
    assert_eq!(pre["success"]["count"], json!(2), "{pre}");
    let metrics = String::from_utf8(server.scrape("/metrics").body).unwrap();
    for step in ["pre", "model", "post"] {
        let line = format!(
            "mlhost_pipeline_step_seconds_count{{pipeline=\"scoring\",pipeline_version=\"\",step=\"{step}\"}} 2"
        );
        assert!(metrics.contains(&line), "no {line:?} in {metrics}");
    }
    let success = "model_infer_request_success_total{model=\"scoring\",version=\"\"} 2";
    assert!(metrics.contains(success), "no {success:?} in {metrics}");
}

#[test]
fn a_failing_step_fails_only_its_request_and_is_named() {
    let dir = repository();
    let server = Server::start(dir.path());
    let good = json!({"inputs": [rows_input(&rows())]});
    let expected = infer(&server, "scoring", good.clone());

    // The pre-processing runtime traps: the request fails, naming the step; the next one works.
    let trap = json!({"inputs": [rows_input(&["trap".to_string()])]});
    let response = server.post_json("/v2/models/scoring/infer", &trap);
    assert_eq!(response.status, 500, "{}", response.error());
    let error = response.error();
    assert!(
        error.starts_with("pipeline step 'pre' (model 'pre'):"),
        "{error}"
    );
    assert_eq!(infer(&server, "scoring", good.clone()), expected);

    // A row the step refuses is the client's error (400), named.
    let bad = json!({"inputs": [rows_input(&["1,2".to_string()])]});
    let response = server.post_json("/v2/models/scoring/infer", &bad);
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("pipeline step 'pre'")
            && response.error().contains("row 0 has 2 features"),
        "{}",
        response.error()
    );
    // An input the pipeline takes is missing.
    let none =
        json!({"inputs": [{"name": "other", "datatype": "FP32", "shape": [1], "data": [1]}]});
    let response = server.post_json("/v2/models/scoring/infer", &none);
    assert_eq!(response.status, 400);
    assert!(
        response
            .error()
            .contains("the pipeline takes an input 'rows'"),
        "{}",
        response.error()
    );
    let metrics = String::from_utf8(server.scrape("/metrics").body).unwrap();
    let failures = "mlhost_pipeline_step_failures_total{pipeline=\"scoring\",pipeline_version=\"\",step=\"pre\"} 2";
    assert!(metrics.contains(failures), "no {failures:?} in {metrics}");

    // A step's model unloaded: the pipeline is not ready and says which step; loaded again,
    // it serves again.
    assert_eq!(
        server
            .post_json("/v2/repository/models/post/unload", &json!({}))
            .status,
        200
    );
    let ready = server.get("/v2/models/scoring/ready");
    assert_eq!(ready.status, 400, "{}", ready.error());
    assert!(ready.error().contains("step 'post'"), "{}", ready.error());
    let response = server.post_json("/v2/models/scoring/infer", &good);
    assert_eq!(response.status, 503, "{}", response.error());
    assert!(
        response.error().contains("pipeline step 'post'"),
        "{}",
        response.error()
    );
    assert_eq!(
        server
            .post_json("/v2/repository/models/post/load", &json!({}))
            .status,
        200
    );
    assert_eq!(infer(&server, "scoring", good), expected);
}

#[test]
fn the_pipelines_deadline_covers_all_its_steps() {
    let dir = repository();
    let server = Server::start(dir.path());
    // One microsecond for the three steps: the request ends at its deadline, whichever step
    // it reached.
    let body = json!({"inputs": [rows_input(&rows())], "parameters": {"timeout": 1}});
    let response = server.post_json("/v2/models/scoring/infer", &body);
    assert_eq!(response.status, 504, "{}", response.error());
    assert!(
        response.error().starts_with("pipeline step '"),
        "{}",
        response.error()
    );
}

#[test]
fn pipelines_that_cannot_run_fail_to_load_saying_why() {
    let dir = repository();
    let bad = [
        (
            "cycle",
            json!({"pipeline": {"steps": [{"name": "a", "model": "pre", "inputs": ["b"]},
                                          {"name": "b", "model": "post", "inputs": ["a"]}]}}),
            "cycle",
        ),
        (
            "unknown",
            json!({"pipeline": {"steps": [{"name": "a", "model": "nope"}]}}),
            "step 'a': model 'nope' not found",
        ),
        (
            "wrong-output",
            json!({"pipeline": {"steps": [{"name": "pre"}],
                                "outputs": ["pre.outputs.nothing"]}}),
            "answers no output 'nothing'",
        ),
        (
            "nested",
            json!({"pipeline": {"steps": [{"name": "s", "model": "scoring"}]}}),
            "pipelines do not nest",
        ),
        (
            "runtime",
            json!({"implementation": "linear", "pipeline": {"steps": [{"name": "pre"}]}}),
            "implementation belong in its steps",
        ),
    ];
    for (name, settings, _) in &bad {
        let folder = dir.path().join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("model-settings.json"), settings.to_string()).unwrap();
    }
    let server = Server::start(dir.path());
    let index = server.post_json("/v2/repository/index", &json!({})).json();
    for (name, _, reason) in bad {
        let entry = index
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["name"] == json!(name))
            .unwrap_or_else(|| panic!("{name} not in {index}"));
        assert_eq!(entry["state"], json!("UNAVAILABLE"), "{entry}");
        let found = entry["reason"].as_str().unwrap();
        assert!(found.contains(reason), "{name}: {found}");
    }
    assert_eq!(server.get("/v2/models/scoring/ready").status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_clients_call_a_pipeline_as_any_model() {
    let dir = repository();
    let server = Server::start(dir.path());
    let rows = rows();
    let rest = infer(&server, "scoring", json!({"inputs": [rows_input(&rows)]}));
    let mut client = GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_address))
        .await
        .unwrap();
    let request = pb::ModelInferRequest {
        model_name: "scoring".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "rows".into(),
            datatype: "BYTES".into(),
            shape: vec![rows.len() as i64],
            contents: Some(pb::InferTensorContents {
                bytes_contents: rows.iter().map(|row| row.clone().into_bytes()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let answer = client.model_infer(request).await.unwrap().into_inner();
    assert_eq!(answer.model_name, "scoring");
    let names: Vec<&str> = answer.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["label", "confidence", "predict_proba"]);
    let contents = |index: usize| answer.outputs[index].contents.as_ref().unwrap();
    let labels: Vec<Value> = (contents(0).bytes_contents.iter())
        .map(|label| json!(std::str::from_utf8(label).unwrap()))
        .collect();
    assert_eq!(json!(labels), rest["label"]["data"]);
    let expected: Vec<f32> = rest["confidence"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|value| value.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(contents(1).fp32_contents, expected);
}

#[test]
fn a_repository_load_may_send_a_pipeline_of_its_own() {
    let dir = repository();
    let server = Server::start(dir.path());
    let body = json!({"inputs": [rows_input(&rows())]});
    let load = |parameters: Value| {
        server.post_json(
            "/v2/repository/models/scoring/load",
            &json!({ "parameters": parameters }),
        )
    };
    // Triton's `config` replaces the pipeline: here, answering the label only.
    let config = json!({"pipeline": {"steps": [
        {"name": "pre"},
        {"name": "model", "model": "xgb", "inputs": {"input-0": "pre.outputs.features"}},
        {"name": "post", "inputs": {"scores": "model.outputs.predict_proba"}}],
        "outputs": {"answer": "post.outputs.label"}}});
    let response = load(json!({"config": config.to_string()}));
    assert_eq!(response.status, 200, "{}", response.error());
    let answer = infer(&server, "scoring", body.clone());
    assert_eq!(answer.keys().collect::<Vec<_>>(), ["answer"]);
    // One that cannot run is refused, and the serving one keeps serving.
    let cycle = json!({"pipeline": {"steps": [{"name": "a", "model": "pre", "inputs": ["a"]}]}});
    let response = load(json!({"config": cycle.to_string()}));
    assert_eq!(response.status, 400);
    assert!(response.error().contains("cycle"), "{}", response.error());
    assert_eq!(infer(&server, "scoring", body.clone()).len(), 1);
    // A plain load reads the folder's settings again.
    assert_eq!(load(json!({})).status, 200);
    assert_eq!(infer(&server, "scoring", body).len(), 3);
}
