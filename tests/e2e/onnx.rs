//! The built-in ONNX runtime end to end: every scikit-learn fixture of
//! `runtimes/onnx/fixtures` (exported with skl2onnx, with onnxruntime's answers) served by the
//! real server and asked over REST; a model with an operator tract lacks is unavailable, named.

use crate::support::{Server, workspace};
use serde_json::{Value, json};
use std::path::PathBuf;

fn fixtures() -> Vec<PathBuf> {
    let root = workspace().join("runtimes/onnx/fixtures");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("model.onnx").is_file())
        .collect();
    folders.sort();
    assert!(folders.len() >= 5, "fixtures in {}", root.display());
    folders
}

/// Every fixture as a model folder named after it, with `"implementation": "onnx"`.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for folder in fixtures() {
        let model = dir.path().join(folder.file_name().unwrap());
        std::fs::create_dir_all(&model).unwrap();
        std::fs::copy(folder.join("model.onnx"), model.join("model.onnx")).unwrap();
        std::fs::write(
            model.join("model-settings.json"),
            // tract's own answers: the native backend has its own tests (native.rs).
            r#"{"implementation": "onnx", "backend": "sandboxed", "parameters": {"uri": "./model.onnx"}}"#,
        )
        .unwrap();
    }
    dir
}

#[test]
fn scikit_learn_models_serve_onnxruntime_s_answers() {
    let models = repository();
    let server = Server::start(models.path());
    let mut served = 0;
    for folder in fixtures() {
        let name = folder.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(operator) = name.strip_prefix("unsupported_") {
            // e.g. unsupported_binarizer: a graph with ONNX-ML's Binarizer, which tract lacks.
            let ready = server.get(&format!("/v2/models/{name}/ready"));
            assert_eq!(ready.status, 400, "{name} must not load");
            let reason = ready.error().to_lowercase();
            assert!(
                reason.contains(operator),
                "{name}: the reason names the operator: {reason}"
            );
            continue;
        }
        let expected: Value =
            serde_json::from_slice(&std::fs::read(folder.join("expected.json")).unwrap()).unwrap();
        let metadata = server.get(&format!("/v2/models/{name}")).json();
        assert_eq!(metadata["platform"], json!("onnx"));
        assert_eq!(metadata["inputs"][0]["name"], json!("X"));
        assert_eq!(metadata["inputs"][0]["datatype"], json!("FP32"));
        assert_eq!(metadata["inputs"][0]["shape"], json!([-1, 4]));
        let rows = expected["batch"]["X"].as_array().unwrap();
        let request = json!({"inputs": [{"name": "X", "datatype": "FP32",
                                         "shape": [rows.len(), 4], "data": rows}]});
        let response = server.post_json(&format!("/v2/models/{name}/infer"), &request);
        assert_eq!(response.status, 200, "{name}: {response:?}");
        let json = response.json();
        let output = |wanted: &str| {
            json["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|output| output["name"] == json!(wanted))
                .unwrap_or_else(|| panic!("{name}: no {wanted} in {json}"))
                .clone()
        };
        let label = output("label");
        assert_eq!(label["datatype"], json!("INT64"), "{name}");
        assert_eq!(label["data"], expected["label"], "{name}: labels exactly");
        let probabilities = output("probabilities");
        assert_eq!(probabilities["datatype"], json!("FP32"), "{name}");
        let want: Vec<f64> = expected["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|p| p.as_f64().unwrap()))
            .collect();
        let got: Vec<f64> = probabilities["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5, "{name}: {got:?} != {want:?}");
        }
        served += 1;

        // Only the requested output, and FP64 rows read as FP32.
        let request = json!({"inputs": [{"name": "X", "datatype": "FP64", "shape": [1, 4], "data": rows[0]}],
                             "outputs": [{"name": "label"}]});
        let json = server
            .post_json(&format!("/v2/models/{name}/infer"), &request)
            .json();
        assert_eq!(
            json["outputs"].as_array().unwrap().len(),
            1,
            "{name}: {json}"
        );
        assert_eq!(
            json["outputs"][0]["data"][0], expected["label"][0],
            "{name}"
        );
    }
    assert_eq!(served, 5);

    // A request that does not fit the graph is the client's fault.
    let wrong =
        json!({"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]});
    let response = server.post_json("/v2/models/logistic_regression/infer", &wrong);
    assert_eq!(response.status, 400, "{response:?}");
}
