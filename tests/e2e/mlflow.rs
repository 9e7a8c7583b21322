//! MLflow model folders end to end: the folders of `tests/fixtures/mlflow` (written by the
//! mlflow package, with the libraries' answers: XGBoost, CatBoost, LightGBM, ONNX) served by the
//! flavour's runtime, their signatures as the models' metadata, a DataFrame signature's columns
//! taken by name, a folder without model-settings.json served under its folder's name; the
//! pickle and python_function folders refused with what to do.

use crate::support::{Server, workspace};
use serde_json::{Value, json};
use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    workspace().join("tests/fixtures/mlflow").join(name)
}

fn expected(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(name).join("expected.json")).unwrap()).unwrap()
}

/// Copies a fixture's files into `to`.
fn copy_fixture(name: &str, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A repository as an MLServer user writes one for MLflow models (the runtime's class name, the
/// uri a subfolder), and as mlhost also takes them (no implementation, or `mlflow`).
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let models = [
        (
            "xgb",
            "xgboost-columns",
            Some("mlserver_mlflow.MLflowRuntime"),
            Some("./model"),
        ),
        ("cat", "catboost-columns", Some("mlflow"), None),
        ("lgb", "lightgbm-tensor", None, None),
        ("onnx-named", "onnx-named", Some("mlflow"), None),
        (
            "pickle",
            "sklearn-pickle",
            Some("mlserver_mlflow.MLflowRuntime"),
            None,
        ),
        ("pyfunc", "pyfunc-only", None, None),
    ];
    for (name, fixture_name, implementation, uri) in models {
        let folder = dir.path().join(name);
        copy_fixture(
            fixture_name,
            &uri.map_or(folder.clone(), |uri| folder.join(uri)),
        );
        let mut settings = json!({"name": name});
        if let Some(implementation) = implementation {
            settings["implementation"] = json!(implementation);
        }
        if let Some(uri) = uri {
            settings["parameters"] = json!({"uri": uri});
        }
        std::fs::write(folder.join("model-settings.json"), settings.to_string()).unwrap();
    }
    // An MLflow folder alone, no model-settings.json: a model named after its folder.
    copy_fixture("lightgbm-tensor", &dir.path().join("runs/bare-lgb"));
    dir
}

fn column(name: &str, values: &[f64]) -> Value {
    json!({"name": name, "datatype": "FP64", "shape": [values.len(), 1], "data": values})
}

fn rows(expected: &Value) -> Vec<Vec<f64>> {
    serde_json::from_value(expected["rows"].clone()).unwrap()
}

fn assert_close(actual: &Value, expected: &Value, what: &str) {
    let actual: Vec<f64> = serde_json::from_value(actual.clone()).unwrap();
    let expected: Vec<f64> = expected
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]))
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(actual.len(), expected.len(), "{what}");
    for (a, e) in actual.iter().zip(&expected) {
        assert!(
            (a - e).abs() <= 1e-5 * e.abs().max(1.0),
            "{what}: {a} vs {e}"
        );
    }
}

fn output<'a>(response: &'a Value, name: &str) -> &'a Value {
    response["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|output| output["name"] == json!(name))
        .unwrap_or_else(|| panic!("no output {name} in {response}"))
}

#[test]
fn mlflow_folders_serve_by_flavour_with_their_signatures() {
    let repository = repository();
    let server = Server::start(repository.path());

    serves_columns(&server, "xgb", "xgboost-columns");
    serves_columns(&server, "cat", "catboost-columns");
    serves_lightgbm_tensors(&server);
    serves_onnx_named_tensors(&server);
}

/// XGBoost and CatBoost, DataFrame signatures: the columns are the inputs, sent by name in any
/// order.
fn serves_columns(server: &Server, model: &str, fixture_name: &str) {
    let metadata = server.get(&format!("/v2/models/{model}")).json();
    let inputs: Vec<_> = metadata["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|input| {
            (
                input["name"].clone(),
                input["datatype"].clone(),
                input["shape"].clone(),
            )
        })
        .collect();
    assert_eq!(
        inputs,
        ["age", "income", "score"].map(|name| (json!(name), json!("FP64"), json!([-1, 1]))),
        "{metadata}"
    );
    let expected = expected(fixture_name);
    let table = rows(&expected);
    let columns: Vec<Vec<f64>> = (0..3)
        .map(|j| table.iter().map(|r| r[j]).collect())
        .collect();
    let request = json!({
        "parameters": {"content_type": "pd"},
        "inputs": [column("score", &columns[2]), column("age", &columns[0]), column("income", &columns[1])],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}]
    });
    let response = server.post_json(&format!("/v2/models/{model}/infer"), &request);
    assert_eq!(response.status, 200, "{model}: {}", response.error());
    let answer = response.json();
    let labels: Vec<i64> =
        serde_json::from_value(output(&answer, "predict")["data"].clone()).unwrap();
    let wanted: Vec<i64> = serde_json::from_value(expected["predict"].clone()).unwrap();
    assert_eq!(labels, wanted, "{model}");
    assert_close(
        &output(&answer, "predict_proba")["data"],
        &expected["predict_proba"],
        model,
    );
}

/// LightGBM, an unnamed tensor signature: `input-0`, as MLServer names it; and the same folder
/// without model-settings.json.
fn serves_lightgbm_tensors(server: &Server) {
    let metadata = server.get("/v2/models/lgb").json();
    assert_eq!(
        metadata["inputs"][0]["name"],
        json!("input-0"),
        "{metadata}"
    );
    assert_eq!(metadata["inputs"][0]["shape"], json!([-1, 3]));
    let lgb = expected("lightgbm-tensor");
    let flat: Vec<f64> = rows(&lgb).concat();
    let request =
        json!({"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [5, 3], "data": flat}]});
    let response = server.post_json("/v2/models/lgb/infer", &request);
    assert_eq!(response.status, 200, "{}", response.error());
    assert_close(
        &output(&response.json(), "predict")["data"],
        &lgb["predict"],
        "lgb",
    );
    let response = server.post_json("/v2/models/bare-lgb/infer", &request);
    assert_eq!(response.status, 200, "{}", response.error());
    assert_close(
        &output(&response.json(), "predict")["data"],
        &lgb["predict"],
        "bare",
    );
}

/// ONNX, named tensors: inputs and outputs as the signature names them; a pickle and Python
/// code refused, saying how to serve them.
fn serves_onnx_named_tensors(server: &Server) {
    let metadata = server.get("/v2/models/onnx-named").json();
    assert_eq!(metadata["inputs"][0]["name"], json!("X"), "{metadata}");
    assert_eq!(metadata["inputs"][0]["datatype"], json!("FP32"));
    let outputs: Vec<_> = metadata["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].clone())
        .collect();
    assert_eq!(outputs, [json!("label"), json!("probabilities")]);
    let onnx = expected("onnx-named");
    let flat: Vec<f64> = rows(&onnx).concat();
    let request =
        json!({"inputs": [{"name": "X", "datatype": "FP32", "shape": [5, 3], "data": flat}]});
    let response = server.post_json("/v2/models/onnx-named/infer", &request);
    assert_eq!(response.status, 200, "{}", response.error());
    let answer = response.json();
    assert_eq!(output(&answer, "label")["data"], onnx["label"]);
    assert_close(
        &output(&answer, "probabilities")["data"],
        &onnx["probabilities"],
        "onnx",
    );

    // A pickle and Python code: refused, saying how to serve them.
    for (name, words) in [
        ("pickle", "mlhost convert"),
        ("pyfunc", "python_function-only"),
    ] {
        let ready = server.get(&format!("/v2/models/{name}/ready"));
        assert_eq!(ready.status, 400, "{name}");
        let reason = ready.error();
        assert!(reason.contains(words), "{name}: {reason}");
    }
}

#[test]
fn an_mlflow_folder_serves_from_mlserver_s_single_model_variables() {
    // KServe's MLServer deployment: the folder at MLSERVER_MODEL_URI, no model-settings.json.
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("mnt-models");
    copy_fixture("onnx-named", &models);
    let uri = models.to_str().unwrap();
    let server = Server::start_with(
        &models,
        &[],
        &[
            ("MLSERVER_MODEL_NAME", "classifier"),
            (
                "MLSERVER_MODEL_IMPLEMENTATION",
                "mlserver_mlflow.MLflowRuntime",
            ),
            ("MLSERVER_MODEL_URI", uri),
        ],
    );
    let metadata = server.get("/v2/models/classifier").json();
    assert_eq!(metadata["inputs"][0]["name"], json!("X"), "{metadata}");
    let onnx = expected("onnx-named");
    let flat: Vec<f64> = rows(&onnx).concat();
    let request =
        json!({"inputs": [{"name": "X", "datatype": "FP32", "shape": [5, 3], "data": flat}]});
    let response = server.post_json("/v2/models/classifier/infer", &request);
    assert_eq!(response.status, 200, "{}", response.error());
    assert_eq!(output(&response.json(), "label")["data"], onnx["label"]);
}
