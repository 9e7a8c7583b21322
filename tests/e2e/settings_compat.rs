//! MLServer's settings habits: lenient parsing (unknown fields warned with the nearest known
//! name, numbers and booleans written as strings coerced), `--strict` to refuse them, and the
//! single-model `MLSERVER_MODEL_*` variables.

use crate::support::{Server, model_folder};
use serde_json::json;
use std::time::{Duration, Instant};

fn linear(slope: f64) -> String {
    json!({"kind": "linear", "coefficients": [[slope]], "intercepts": [0.0], "input_name": "x"})
        .to_string()
}

fn infer(server: &Server, model: &str, x: f64) -> serde_json::Value {
    let response = server.post_json(
        &format!("/v2/models/{model}/infer"),
        &json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [x]}]}),
    );
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()["outputs"][0]["data"].clone()
}

/// Waits until a log line contains every one of `texts`.
fn wait_for_log(server: &Server, texts: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if server
            .logs()
            .iter()
            .any(|line| texts.iter().all(|text| line.contains(text)))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no log line with {texts:?}: {:?}", server.logs());
}

/// An MLServer folder with settings MLServer (pydantic) accepts and mlhost used to refuse.
fn mlserver_folder() -> tempfile::TempDir {
    model_folder(&[
        (
            "settings.json",
            r#"{"debug": "false", "parallel_workers": "1", "gzip_enabled": "true",
                "metrics_endpoint": "/metrics", "htp_port": 1, "kafka_topic": "x"}"#,
        ),
        (
            "lin/model-settings.json",
            r#"{"implementation": "linear", "max_batch_size": "8", "max_batch_time": "0.01",
                "paralel_workers": 2, "parameters": {"version": "1"}}"#,
        ),
        ("lin/linear.json", &linear(2.0)),
        (
            "bad/model-settings.json",
            r#"{"implementation": "linear", "max_batch_size": "eight"}"#,
        ),
        ("bad/linear.json", &linear(3.0)),
    ])
}

#[test]
fn an_mlserver_folder_loads_with_warnings_and_a_wrong_type_fails_its_model() {
    let dir = mlserver_folder();
    let server = Server::start(dir.path());
    assert_eq!(infer(&server, "lin", 4.0), json!([8.0]));
    wait_for_log(
        &server,
        &[
            "settings.json",
            "unknown field `htp_port` ignored (did you mean `http_port`?)",
        ],
    );
    wait_for_log(
        &server,
        &["settings.json", "unknown field `kafka_topic` ignored"],
    );
    wait_for_log(
        &server,
        &[
            "model-settings.json",
            "unknown field `paralel_workers` ignored (did you mean `parallel_workers`?)",
        ],
    );
    // Once, though the repository is read again.
    assert_eq!(
        server.post_json("/v2/repository/index", &json!({})).status,
        200
    );
    let count = |text: &str| server.logs().iter().filter(|l| l.contains(text)).count();
    assert_eq!(count("`paralel_workers` ignored"), 1, "{:?}", server.logs());

    // A value that cannot be coerced fails that model only, naming the file and the field.
    let ready = server.get("/v2/models/bad/ready");
    assert_eq!(ready.status, 400);
    let error = ready.error();
    assert!(
        error.contains("model-settings.json") && error.contains("`max_batch_size`"),
        "{error}"
    );
}

#[test]
fn strict_settings_refuse_unknown_fields_and_string_numbers() {
    let dir = mlserver_folder();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mlhost"))
        .args([
            "serve",
            "--strict",
            "--host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--models",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("settings.json") && stderr.contains("`debug`"),
        "{stderr}"
    );

    // Strict from the environment, with a settings.json that is fine: the model with string
    // numbers fails.
    std::fs::write(dir.path().join("settings.json"), "{}").unwrap();
    let server = Server::start_with(dir.path(), &[], &[("MLHOST_STRICT_SETTINGS", "true")]);
    let ready = server.get("/v2/models/lin/ready");
    assert_eq!(ready.status, 400);
    assert!(
        ready.error().contains("`max_batch_size`"),
        "{}",
        ready.error()
    );
}

#[test]
fn mlserver_model_variables_serve_one_model_from_an_empty_folder() {
    let models = tempfile::tempdir().unwrap();
    let artefacts = model_folder(&[("linear.json", &linear(5.0))]);
    let uri = artefacts.path().join("linear.json");
    let server = Server::start_with(
        models.path(),
        &[],
        &[
            ("MLSERVER_MODEL_NAME", "single"),
            ("MLSERVER_MODEL_IMPLEMENTATION", "linear"),
            ("MLSERVER_MODEL_URI", uri.to_str().unwrap()),
            ("MLSERVER_MODEL_VERSION", "v3"),
            ("MLSERVER_MODEL_MAX_BATCH_SIZE", "4"),
            ("MLSERVER_MODEL_MAX_BATCH_TIME", "0.01"),
            ("MLSERVER_MODEL_PARALLEL_WORKERS", "1"),
            (
                "MLSERVER_MODEL_EXTRA",
                r#"{"note": "from the environment"}"#,
            ),
        ],
    );
    assert_eq!(infer(&server, "single", 2.0), json!([10.0]));
    let metadata = server.get("/v2/models/single").json();
    assert_eq!(metadata["versions"], json!(["v3"]), "{metadata}");
    assert_eq!(
        server.get("/v2/models/single/versions/v3/ready").status,
        200
    );
}

#[test]
fn an_empty_folder_says_there_is_nothing_to_serve() {
    let models = tempfile::tempdir().unwrap();
    let server = Server::start(models.path());
    wait_for_log(&server, &["nothing to serve", "MLSERVER_MODEL_NAME"]);
}

#[test]
fn kserves_layout_serves_the_folders_model_under_the_variables_name() {
    // KServe's kserve-mlserver: MLSERVER_MODEL_NAME is the InferenceService's name and
    // MLSERVER_MODEL_URI the storage mount, whose model-settings.json names no model.
    let models = model_folder(&[
        (
            "model-settings.json",
            r#"{"implementation": "linear", "max_batch_size": "2"}"#,
        ),
        ("linear.json", &linear(7.0)),
    ]);
    let mount = models.path().to_str().unwrap();
    let server = Server::start_with(
        models.path(),
        &[],
        &[
            ("MLSERVER_MODEL_NAME", "my-isvc"),
            ("MLSERVER_MODEL_URI", mount),
        ],
    );
    assert_eq!(infer(&server, "my-isvc", 1.0), json!([7.0]));
    let index = server.post_json("/v2/repository/index", &json!({})).json();
    assert_eq!(index.as_array().unwrap().len(), 1, "{index}");
}
