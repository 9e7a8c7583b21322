//! Corrupt, unsupported and mismatched models and requests fail with the right error, saying
//! what is wrong.

use mlhost_guest::{Error, InferenceRequest, Model, ModelSettings, RequestedOutput, Tensor};
use mlhost_runtime_trees::Trees;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn settings(uri: &Path, extra: &str) -> ModelSettings {
    ModelSettings {
        name: "broken".to_string(),
        version: None,
        uri: uri.to_string_lossy().into_owned(),
        extra: extra.to_string(),
        parameters: Vec::new(),
    }
}

/// A fresh folder under the target's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let folder = std::env::temp_dir().join(format!("mlhost-trees-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

fn load_bytes(name: &str, file: &str, bytes: &[u8]) -> Result<Trees, Error> {
    let folder = scratch(name);
    std::fs::write(folder.join(file), bytes).unwrap();
    Trees::load(settings(&folder, "{}"))
}

/// The model loads not, with an InvalidModel error holding every one of `words`.
fn assert_invalid(result: Result<Trees, Error>, words: &[&str]) {
    match result {
        Err(Error::InvalidModel(message)) => {
            for word in words {
                assert!(message.contains(word), "'{message}' does not say '{word}'");
            }
        }
        Err(other) => panic!("expected InvalidModel, got {other:?}"),
        Ok(_) => panic!("expected InvalidModel for {words:?}, the model loaded"),
    }
}

fn xgboost_json(fixture_name: &str) -> serde_json::Value {
    let text = std::fs::read(fixture(fixture_name).join("model.json")).unwrap();
    serde_json::from_slice(&text).unwrap()
}

#[test]
fn corrupt_files_are_invalid_models() {
    let json = std::fs::read(fixture("xgboost-binary/model.json")).unwrap();
    assert_invalid(
        load_bytes("truncated-json", "model.json", &json[..json.len() / 2]),
        &["model.json", "XGBoost", "JSON"],
    );
    let text = std::fs::read_to_string(fixture("lightgbm-regression/model.txt")).unwrap();
    let cut = text.find("Tree=2").unwrap() + 40;
    assert_invalid(
        load_bytes("truncated-txt", "model.txt", &text.as_bytes()[..cut]),
        &["model.txt", "tree 2"],
    );
    let ubj = std::fs::read(fixture("xgboost-ubj/model.ubj")).unwrap();
    assert_invalid(
        load_bytes("truncated-ubj", "model.ubj", &ubj[..ubj.len() - 10]),
        &["UBJSON", "truncated"],
    );
    assert_invalid(load_bytes("empty", "model.bst", b""), &["empty"]);
    assert_invalid(
        load_bytes(
            "garbage",
            "model.bst",
            b"PK\x03\x04\x00\x00\xff\xfe\x80zipped",
        ),
        &["not a model format"],
    );
    assert_invalid(
        load_bytes("not-xgboost", "model.json", br#"{"hello": "world"}"#),
        &["not an XGBoost model", "learner"],
    );
}

#[test]
fn unsupported_models_are_named() {
    let mut model = xgboost_json("xgboost-binary");
    model["learner"]["objective"]["name"] = "survival:cox".into();
    assert_invalid(
        load_bytes("cox", "model.json", model.to_string().as_bytes()),
        &["survival:cox", "not supported"],
    );

    let mut model = xgboost_json("xgboost-binary");
    model["learner"]["gradient_booster"] = serde_json::json!({"name": "gblinear", "model": {}});
    assert_invalid(
        load_bytes("gblinear", "model.json", model.to_string().as_bytes()),
        &["gblinear", "not supported"],
    );

    let mut model = xgboost_json("xgboost-binary");
    model["learner"]["gradient_booster"]["model"]["trees"][0]["split_type"][0] = 1.into();
    assert_invalid(
        load_bytes(
            "xgb-categorical",
            "model.json",
            model.to_string().as_bytes(),
        ),
        &["tree 0", "categorical"],
    );

    let mut model = xgboost_json("xgboost-binary");
    model["learner"]["gradient_booster"]["model"]["trees"][1]["left_children"][0] = 0.into();
    assert_invalid(
        load_bytes("xgb-cycle", "model.json", model.to_string().as_bytes()),
        &["tree 1", "reached twice"],
    );

    let mut model = xgboost_json("xgboost-binary");
    model["learner"]["gradient_booster"]["model"]["trees"][0]["split_indices"][0] = 9.into();
    assert_invalid(
        load_bytes("xgb-feature", "model.json", model.to_string().as_bytes()),
        &["tree 0", "feature 9"],
    );

    let mut model = xgboost_json("xgboost-binary");
    model["learner"]["attributes"]["scikit_learn"] = r#"{"_estimator_type": "ranker"}"#.into();
    assert_invalid(
        load_bytes("ranker", "model.json", model.to_string().as_bytes()),
        &["ranker"],
    );

    let text = std::fs::read_to_string(fixture("lightgbm-regression/model.txt")).unwrap();
    let linear = text.replacen("is_linear=0", "is_linear=1", 1);
    assert_invalid(
        load_bytes("linear-tree", "model.txt", linear.as_bytes()),
        &["linear tree"],
    );
    let lambda = text.replacen("objective=regression", "objective=my_loss", 1);
    assert_invalid(
        load_bytes("lgb-objective", "model.txt", lambda.as_bytes()),
        &["my_loss", "not supported"],
    );

    assert_invalid(
        load_bytes(
            "legacy",
            "model.bst",
            b"\x00\x00\x00\x3f\x05\x00\x00\x00\x00\x00\x00\x00\xff\xfe\x80binf",
        ),
        &["legacy binary"],
    );
}

#[test]
fn a_folder_without_a_model_file_says_what_was_looked_for() {
    let folder = scratch("no-model");
    assert_invalid(
        Trees::load(settings(&folder, "{}")),
        &["model.bst", "model.json", "model.txt"],
    );
    assert_invalid(
        Trees::load(settings(&folder.join("missing.json"), "{}")),
        &["cannot read", "missing.json"],
    );
    assert_invalid(
        Trees::load(settings(
            &fixture("xgboost-binary"),
            r#"{"estimator_type": 3}"#,
        )),
        &["estimator_type"],
    );
}

fn request(input: Tensor, outputs: &[&str]) -> InferenceRequest {
    InferenceRequest {
        id: None,
        inputs: vec![input],
        outputs: outputs
            .iter()
            .map(|name| RequestedOutput {
                name: name.to_string(),
                parameters: Vec::new(),
            })
            .collect(),
        parameters: Vec::new(),
    }
}

fn invalid_input(result: Result<mlhost_guest::InferenceResponse, Error>, word: &str) {
    match result {
        Err(Error::InvalidInput(message)) => {
            assert!(message.contains(word), "'{message}' does not say '{word}'")
        }
        other => panic!("expected InvalidInput ({word}), got {other:?}"),
    }
}

#[test]
fn requests_that_do_not_fit_are_invalid_input() {
    for name in ["xgboost-binary", "lightgbm-binary"] {
        let model = Trees::load(settings(&fixture(name), "{}")).unwrap();
        let narrow = Tensor::from_values("x", &[2, 4], &[0.5f32; 8]).unwrap();
        invalid_input(model.predict(request(narrow, &[])), "the model takes 5");
        let flat = Tensor::from_values("x", &[5], &[0.5f32; 5]).unwrap();
        invalid_input(model.predict(request(flat, &[])), "2 dimensions");
        let text = Tensor::from_bytes_elements("x", &[1, 5], &["a"; 5]).unwrap();
        invalid_input(model.predict(request(text, &[])), "BYTES");
        let good = Tensor::from_values("x", &[1, 5], &[0.5f32; 5]).unwrap();
        invalid_input(model.predict(request(good.clone(), &["labels"])), "labels");
        let two = InferenceRequest {
            inputs: vec![good.clone(), good],
            ..request(Tensor::from_values("x", &[1], &[0.0f32]).unwrap(), &[])
        };
        invalid_input(model.predict(two), "exactly one input");
    }
}

#[test]
fn the_estimator_type_can_be_overridden() {
    let folder = fixture("xgboost-booster-binary");
    let rows = Tensor::from_values("x", &[1, 5], &[0.5f32; 5]).unwrap();
    let as_saved = Trees::load(settings(&folder, "{}")).unwrap();
    invalid_input(
        as_saved.predict(request(rows.clone(), &["predict_proba"])),
        "XGBRegressor",
    );
    let probability = as_saved
        .predict(request(rows.clone(), &[]))
        .unwrap()
        .outputs[0]
        .values::<f32>()
        .unwrap()[0];

    let classifier = Trees::load(settings(&folder, r#"{"estimator_type": "classifier"}"#)).unwrap();
    let response = classifier
        .predict(request(rows, &["predict", "predict_proba"]))
        .unwrap();
    let label = response.outputs[0].values::<i64>().unwrap()[0];
    assert_eq!(label, i64::from(probability > 0.5));
    assert_eq!(
        response.outputs[1].values::<f32>().unwrap(),
        vec![1.0 - probability, probability]
    );
}

#[test]
fn empty_batches_give_empty_outputs() {
    for name in ["xgboost-multiclass", "lightgbm-multiclass"] {
        let model = Trees::load(settings(&fixture(name), "{}")).unwrap();
        let none = Tensor::from_values::<f32>("x", &[0, 5], &[]).unwrap();
        let response = model.predict(request(none, &["predict_proba"])).unwrap();
        assert_eq!(response.outputs[0].shape, vec![0, 3]);
    }
}
