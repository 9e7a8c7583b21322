//! CatBoost models end to end: every fixture of `runtimes/trees/fixtures/catboost` (models
//! trained by the catboost package, with its answers) served from a folder written as for
//! MLServer (`implementation: mlserver_catboost.CatboostModel`, `model.cbm` found by name), asked
//! over REST with its rows — missing values included — as binary tensor data; the model mlhost
//! refuses (CTR features) is unavailable with its reason while the others serve.

use crate::support::{Server, workspace};
use crate::trees::{expected, fixtures_in, infer};
use serde_json::{Value, json};
use std::path::PathBuf;

fn fixtures() -> Vec<PathBuf> {
    fixtures_in(&workspace().join("runtimes/trees/fixtures/catboost"), 8)
}

/// Each fixture's model file beside a model-settings.json naming MLServer's CatBoost runtime;
/// `regression` names mlhost's `catboost` and its file through `uri`.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for folder in fixtures() {
        let name = folder.file_name().unwrap().to_str().unwrap();
        let file = expected(&folder)["model_file"]
            .as_str()
            .unwrap()
            .to_string();
        let model = dir.path().join(name);
        std::fs::create_dir_all(&model).unwrap();
        std::fs::copy(folder.join(&file), model.join(&file)).unwrap();
        let settings = if name == "regression" {
            json!({"name": name, "implementation": "catboost",
                   "parameters": {"uri": format!("./{file}"), "version": "v1"}})
        } else {
            json!({"name": name, "implementation": "mlserver_catboost.CatboostModel"})
        };
        std::fs::write(model.join("model-settings.json"), settings.to_string()).unwrap();
    }
    dir
}

fn assert_matches(name: &str, actual: &Value, answer: &Value) {
    assert_eq!(actual["name"], answer["name"], "{name}");
    assert_eq!(actual["datatype"], answer["datatype"], "{name}");
    assert_eq!(actual["shape"], answer["shape"], "{name}");
    if answer["datatype"] != json!("FP64") {
        assert_eq!(actual["data"], answer["data"], "{name}: labels exactly");
        return;
    }
    let (got, want) = (
        actual["data"].as_array().unwrap(),
        answer["data"].as_array().unwrap(),
    );
    assert_eq!(got.len(), want.len(), "{name}");
    for (index, (a, e)) in got.iter().zip(want).enumerate() {
        let (a, e) = (a.as_f64().unwrap(), e.as_f64().unwrap());
        assert!(
            (a - e).abs() <= 1e-5 * e.abs().max(1.0),
            "{name}[{index}]: {a} != {e}"
        );
    }
}

#[test]
fn every_catboost_fixture_serves_catboost_s_answers_or_says_why_not() {
    let models = repository();
    let server = Server::start(models.path());
    for folder in fixtures() {
        let name = folder.file_name().unwrap().to_str().unwrap();
        let expected = expected(&folder);
        if let Some(words) = expected.get("load_error") {
            let ready = server.get(&format!("/v2/models/{name}/ready"));
            assert_eq!(ready.status, 400, "{name} must be unavailable");
            let reason = ready.error();
            for word in words.as_array().unwrap() {
                assert!(reason.contains(word.as_str().unwrap()), "{name}: {reason}");
            }
            continue;
        }
        let metadata = server.get(&format!("/v2/models/{name}")).json();
        assert_eq!(metadata["platform"], json!("catboost"), "{name}");
        for (output, answer) in expected["outputs"].as_object().unwrap() {
            let (status, json) = infer(&server, name, &expected, output);
            if let Some(error) = answer.get("error") {
                assert_eq!(
                    status, 400,
                    "{name}/{output} must be refused ({error}): {json}"
                );
                assert!(
                    json["error"].as_str().unwrap().contains("regressor"),
                    "{json}"
                );
                continue;
            }
            assert_eq!(status, 200, "{name}/{output}: {json}");
            assert_matches(&format!("{name}/{output}"), &json["outputs"][0], answer);
        }
    }
}

#[test]
fn a_categorical_value_that_is_not_an_integer_is_a_bad_request() {
    let models = repository();
    let server = Server::start(models.path());
    let request = json!({"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [1, 5],
                                     "data": [0.1, 0.2, 0.3, 1.5, 2.0]}]});
    let response = server.post_json("/v2/models/one-hot/infer", &request);
    assert_eq!(response.status, 400);
    let error = response.error();
    assert!(
        error.contains("column 3") && error.contains("integers"),
        "{error}"
    );
    let request = json!({"inputs": [{"name": "input-0", "datatype": "INT64", "shape": [1, 5],
                                     "data": [0, 0, 0, 1, 2]}]});
    let response = server.post_json("/v2/models/one-hot/infer", &request);
    assert_eq!(response.status, 200, "{}", response.json());
}
