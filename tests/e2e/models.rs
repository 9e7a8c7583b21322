//! Model folders: settings, custom components, versions, and models that fail to load.

use crate::support::{Server, linear_component, model_folder};
use serde_json::json;

const LINEAR: &str =
    r#"{"kind": "linear", "coefficients": [[2.0]], "intercepts": [1.0], "input_name": "x"}"#;

fn infer_x(server: &Server, path: &str, x: f64) -> crate::support::Response {
    server.post_json(
        path,
        &json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [x]}]}),
    )
}

#[test]
fn a_broken_model_is_unavailable_and_the_others_serve() {
    let dir = model_folder(&[
        (
            "good/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("good/linear.json", LINEAR),
        (
            "bad-coefficients/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        (
            "bad-coefficients/linear.json",
            r#"{"kind": "linear", "coefficients": [[1, 2]], "intercepts": []}"#,
        ),
        (
            "typo/model-settings.json",
            r#"{"implementation": "linear", "max_batch_size": "four"}"#,
        ),
        (
            "sklearn/model-settings.json",
            r#"{"implementation": "mlserver_sklearn.SKLearnModel"}"#,
        ),
        (
            "missing-uri/model-settings.json",
            r#"{"implementation": "linear", "parameters": {"uri": "./nope.json"}}"#,
        ),
        (
            "escaping-uri/model-settings.json",
            r#"{"implementation": "linear", "parameters": {"uri": "../good/linear.json"}}"#,
        ),
    ]);
    let server = Server::start(dir.path());
    assert_eq!(
        infer_x(&server, "/v2/models/good/infer", 3.0).json()["outputs"][0]["data"],
        json!([7.0])
    );

    for (model, reason) in [
        ("bad-coefficients", "0 intercepts for 1 rows"),
        ("typo", "field `max_batch_size`"),
        ("sklearn", "mlhost convert model.joblib"),
        ("missing-uri", "invalid uri"),
        ("escaping-uri", "outside the model's folder"),
    ] {
        let ready = server.get(&format!("/v2/models/{model}/ready"));
        assert_eq!(ready.status, 400, "{model}");
        assert!(ready.error().contains(reason), "{model}: {}", ready.error());
        let response = infer_x(&server, &format!("/v2/models/{model}/infer"), 1.0);
        assert_eq!(response.status, 503, "{model}");
        assert!(response.error().contains("not ready"), "{model}");
    }
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("model failed to load") && line.contains("typo"))
    );
}

#[test]
fn a_custom_component_next_to_the_model_is_served() {
    let component = std::fs::read(linear_component()).unwrap();
    let dir = model_folder(&[
        (
            "custom/model-settings.json",
            r#"{"name": "custom", "implementation": "runtime/linear.wasm", "parameters": {"uri": "weights/w.json"}}"#,
        ),
        ("custom/weights/w.json", LINEAR),
        (
            "not-a-component/model-settings.json",
            r#"{"implementation": "junk.wasm"}"#,
        ),
        ("not-a-component/junk.wasm", "this is not wasm"),
    ]);
    std::fs::create_dir_all(dir.path().join("custom/runtime")).unwrap();
    std::fs::write(dir.path().join("custom/runtime/linear.wasm"), component).unwrap();

    let server = Server::start(dir.path());
    let response = infer_x(&server, "/v2/models/custom/infer", 10.0);
    assert_eq!(response.status, 200, "{:?}", response.json());
    assert_eq!(response.json()["outputs"][0]["data"], json!([21.0]));
    let ready = server.get("/v2/models/not-a-component/ready");
    assert_eq!(ready.status, 400);
    assert!(
        ready.error().contains("is not an mlhost runtime")
            && ready.error().contains("not a WebAssembly file"),
        "{}",
        ready.error()
    );
}

#[test]
fn versions_from_folders_and_settings_with_the_highest_as_default() {
    let dir = model_folder(&[
        ("m/2/model-settings.json", r#"{"implementation": "linear"}"#),
        (
            "m/2/linear.json",
            r#"{"kind": "linear", "coefficients": [[2.0]], "intercepts": [0.0], "input_name": "x"}"#,
        ),
        (
            "m/10/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        (
            "m/10/linear.json",
            r#"{"kind": "linear", "coefficients": [[10.0]], "intercepts": [0.0], "input_name": "x"}"#,
        ),
        (
            "other/model-settings.json",
            r#"{"name": "m", "implementation": "linear", "parameters": {"version": "3"}}"#,
        ),
        (
            "other/linear.json",
            r#"{"kind": "linear", "coefficients": [[3.0]], "intercepts": [0.0], "input_name": "x"}"#,
        ),
    ]);
    let server = Server::start(dir.path());
    let answer = |path: &str| infer_x(&server, path, 1.0).json();
    assert_eq!(
        answer("/v2/models/m/infer")["outputs"][0]["data"],
        json!([10.0])
    );
    assert_eq!(answer("/v2/models/m/infer")["model_version"], "10");
    assert_eq!(
        answer("/v2/models/m/versions/2/infer")["outputs"][0]["data"],
        json!([2.0])
    );
    assert_eq!(
        answer("/v2/models/m/versions/3/infer")["outputs"][0]["data"],
        json!([3.0])
    );
    assert_eq!(
        server.get("/v2/models/m").json()["versions"],
        json!(["2", "3", "10"])
    );
}

#[test]
fn settings_json_and_environment_configure_the_server() {
    let dir = model_folder(&[
        (
            "settings.json",
            r#"{"server_name": "from-file", "server_version": "9.9", "extensions": ["x"], "kafka_enabled": false}"#,
        ),
        (
            "good/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("good/linear.json", LINEAR),
    ]);
    let server = Server::start(dir.path());
    assert_eq!(
        server.get("/v2").json(),
        json!({"name": "from-file", "version": "9.9", "extensions": ["model_repository", "binary_tensor_data", "statistics", "model_configuration", "schedule_policy", "parameters", "trace", "logging", "x"]})
    );
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("not used by mlhost") && line.contains("kafka_enabled"))
    );
    drop(server);

    let server = Server::start_with(
        dir.path(),
        &[],
        &[("MLSERVER_SERVER_NAME", "from-mlserver-env")],
    );
    assert_eq!(server.get("/v2").json()["name"], "from-mlserver-env");
    drop(server);
    let server = Server::start_with(
        dir.path(),
        &[],
        &[
            ("MLSERVER_SERVER_NAME", "from-mlserver-env"),
            ("MLHOST_SERVER_NAME", "from-mlhost-env"),
        ],
    );
    assert_eq!(server.get("/v2").json()["name"], "from-mlhost-env");
}

#[test]
fn an_invalid_settings_file_stops_the_server_with_the_field_named() {
    let dir = model_folder(&[("settings.json", r#"{"http_port": "eighty"}"#)]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mlhost"))
        .args(["serve", "--models"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("settings.json") && stderr.contains("`http_port`"),
        "{stderr}"
    );
}

#[test]
fn load_models_at_startup_false_starts_empty() {
    let dir = model_folder(&[
        ("settings.json", r#"{"load_models_at_startup": false}"#),
        (
            "good/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("good/linear.json", LINEAR),
    ]);
    let server = Server::start(dir.path());
    assert_eq!(server.get("/v2/models/good/ready").status, 404);
}
