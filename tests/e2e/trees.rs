//! The built-in tree-ensemble runtime end to end: every fixture of `runtimes/trees/fixtures`
//! (models trained by XGBoost and LightGBM, with the reference libraries' answers) served from a
//! folder written as for MLServer, asked over REST with its rows — missing values included — as
//! binary tensor data.

use crate::support::{Server, workspace};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const BINARY_HEADER: &str = "Inference-Header-Content-Length";

fn fixtures() -> Vec<PathBuf> {
    fixtures_in(&workspace().join("runtimes/trees/fixtures"), 10)
}

/// The fixture folders (those with an `expected.json`) of `root`: at least `at_least` of them.
pub(crate) fn fixtures_in(root: &Path, at_least: usize) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("expected.json").is_file())
        .collect();
    folders.sort();
    assert!(folders.len() >= at_least, "fixtures in {}", root.display());
    folders
}

/// A fixture's inputs and the reference library's answers.
pub(crate) fn expected(folder: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(folder.join("expected.json")).unwrap()).unwrap()
}

/// A model repository as an MLServer user writes it: each fixture's model file beside a
/// model-settings.json naming MLServer's runtime. One model names its file through `uri`.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for folder in fixtures() {
        let name = folder.file_name().unwrap().to_str().unwrap();
        let expected = expected(&folder);
        let file = expected["model_file"].as_str().unwrap();
        let implementation = if name.starts_with("xgboost") {
            "mlserver_xgboost.XGBoostModel"
        } else {
            "mlserver_lightgbm.LightGBMModel"
        };
        let model = dir.path().join(name);
        std::fs::create_dir_all(&model).unwrap();
        std::fs::copy(folder.join(file), model.join(file)).unwrap();
        let settings = if name == "xgboost-regression" {
            json!({"name": name, "implementation": implementation,
                   "parameters": {"uri": format!("./{file}"), "version": "v0.1.0"}})
        } else {
            json!({"name": name, "implementation": implementation})
        };
        std::fs::write(model.join("model-settings.json"), settings.to_string()).unwrap();
    }
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("model.json"),
        br#"{"learner": {"gradient_booster": "#,
    )
    .unwrap();
    std::fs::write(
        broken.join("model-settings.json"),
        r#"{"implementation": "mlserver_xgboost.XGBoostModel"}"#,
    )
    .unwrap();
    dir
}

/// The fixture's rows as little-endian bytes of its datatype ("nan" is a missing value).
fn row_bytes(expected: &Value) -> Vec<u8> {
    let values = expected["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|value| value.as_str().unwrap().parse::<f64>().unwrap());
    match expected["datatype"].as_str().unwrap() {
        "FP32" => values.flat_map(|v| (v as f32).to_le_bytes()).collect(),
        "FP64" => values.flat_map(|v| v.to_le_bytes()).collect(),
        other => panic!("fixture datatype {other}"),
    }
}

/// Asks `name` for `output` on the fixture's rows, as binary tensor data.
pub(crate) fn infer(server: &Server, name: &str, expected: &Value, output: &str) -> (u16, Value) {
    let binary = row_bytes(expected);
    let header = serde_json::to_vec(&json!({
        "inputs": [{"name": "input-0", "datatype": expected["datatype"], "shape": expected["shape"],
                    "parameters": {"binary_data_size": binary.len()}}],
        "outputs": [{"name": output}],
    }))
    .unwrap();
    let length = header.len().to_string();
    let response = server.connect().request(
        "POST",
        &format!("/v2/models/{name}/infer"),
        &[(BINARY_HEADER, &length)],
        &[header, binary].concat(),
    );
    (response.status, response.json())
}

fn assert_close(name: &str, actual: &Value, expected: &Value) {
    let (actual, expected) = (actual.as_array().unwrap(), expected.as_array().unwrap());
    assert_eq!(actual.len(), expected.len(), "{name}");
    for (index, (a, e)) in actual.iter().zip(expected).enumerate() {
        let (a, e) = (a.as_f64().unwrap(), e.as_f64().unwrap());
        assert!(
            (a - e).abs() <= 1e-5 * e.abs().max(1.0),
            "{name}[{index}]: {a} != {e}"
        );
    }
}

#[test]
fn every_fixture_serves_the_reference_library_s_answers() {
    let models = repository();
    let server = Server::start(models.path());
    for folder in fixtures() {
        let name = folder.file_name().unwrap().to_str().unwrap();
        let expected = expected(&folder);
        let platform = server.get(&format!("/v2/models/{name}")).json()["platform"].clone();
        assert_eq!(platform, json!(name.split('-').next().unwrap()), "{name}");
        for (output, answer) in expected["outputs"].as_object().unwrap() {
            let (status, json) = infer(&server, name, &expected, output);
            if let Some(error) = answer.get("error") {
                assert_eq!(
                    status, 400,
                    "{name}/{output} must be refused ({error}): {json}"
                );
                continue;
            }
            assert_eq!(status, 200, "{name}/{output}: {json}");
            let actual = &json["outputs"][0];
            assert_eq!(actual["name"], answer["name"], "{name}");
            assert_eq!(actual["datatype"], answer["datatype"], "{name}/{output}");
            assert_eq!(actual["shape"], answer["shape"], "{name}/{output}");
            if answer["datatype"].as_str().unwrap().starts_with("FP") {
                assert_close(
                    &format!("{name}/{output}"),
                    &actual["data"],
                    &answer["data"],
                );
            } else {
                assert_eq!(
                    actual["data"], answer["data"],
                    "{name}/{output}: labels exactly"
                );
            }
        }
    }
}

#[test]
fn a_corrupt_model_is_unavailable_with_its_reason_while_the_others_serve() {
    let models = repository();
    let server = Server::start(models.path());
    let ready = server.get("/v2/models/broken/ready");
    assert_eq!(ready.status, 400);
    let reason = ready.error();
    assert!(reason.contains("model.json"), "{reason}");
    let index = server.post_json("/v2/repository/index", &json!({})).json();
    let broken = index
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == json!("broken"))
        .unwrap()
        .clone();
    assert_eq!(broken["state"], json!("UNAVAILABLE"));
    assert!(!broken["reason"].as_str().unwrap().is_empty());
    let folder = workspace().join("runtimes/trees/fixtures/lightgbm-multiclass");
    let (status, _) = infer(
        &server,
        "lightgbm-multiclass",
        &expected(&folder),
        "predict",
    );
    assert_eq!(status, 200);
}
