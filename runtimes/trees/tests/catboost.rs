//! Every CatBoost fixture of `fixtures/catboost/` (models trained by `generate.py` with the
//! catboost package) answers what CatBoost answered for the same rows: the same output names,
//! datatypes and shapes, labels exactly and numbers within 1e-5; the models mlhost refuses are
//! refused, saying why.

use mlhost_guest::{
    Datatype, Error, InferenceRequest, Model, ModelSettings, ParameterValue, RequestedOutput,
    Tensor,
};
use mlhost_runtime_trees::Trees;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/catboost");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("expected.json").is_file())
        .collect();
    folders.sort();
    assert!(folders.len() >= 8, "fixtures missing in {}", root.display());
    folders
}

fn expected(folder: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(folder.join("expected.json")).unwrap()).unwrap()
}

fn settings(uri: &Path) -> ModelSettings {
    ModelSettings {
        name: "catboost".to_string(),
        version: None,
        uri: uri.to_string_lossy().into_owned(),
        extra: "{}".to_string(),
        parameters: Vec::new(),
    }
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

/// The fixture's rows (numbers as text: "nan" is a missing value) in its datatype.
fn input(expected: &Value) -> Tensor {
    let values: Vec<f64> = expected["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|text| text.as_str().unwrap().parse::<f64>().unwrap())
        .collect();
    let shape: Vec<u64> = serde_json::from_value(expected["shape"].clone()).unwrap();
    match expected["datatype"].as_str().unwrap() {
        "FP32" => {
            let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            Tensor::from_values("input-0", &shape, &values).unwrap()
        }
        "FP64" => Tensor::from_values("input-0", &shape, &values).unwrap(),
        other => panic!("fixture datatype {other}"),
    }
}

/// The tensor's elements as JSON values: numbers, or strings for BYTES.
fn elements(tensor: &Tensor) -> Vec<Value> {
    match tensor.datatype {
        Datatype::Bytes => tensor
            .strings()
            .unwrap()
            .into_iter()
            .map(Value::from)
            .collect(),
        Datatype::Int64 => tensor
            .values::<i64>()
            .unwrap()
            .into_iter()
            .map(Value::from)
            .collect(),
        _ => tensor
            .to_f64_vec()
            .unwrap()
            .into_iter()
            .map(Value::from)
            .collect(),
    }
}

fn check(fixture: &str, want: &Value, actual: Result<Tensor, Error>) {
    if let Some(error) = want.get("error") {
        match actual {
            Err(Error::InvalidInput(message)) => {
                assert!(message.contains("predict_proba"), "{fixture}: {message}")
            }
            other => panic!("{fixture}: expected a refusal ({error}), got {other:?}"),
        }
        return;
    }
    let name = want["name"].as_str().unwrap();
    let actual = actual.unwrap_or_else(|error| panic!("{fixture} {name}: {error:?}"));
    assert_eq!(actual.name, name, "{fixture}");
    let datatype = match actual.datatype {
        Datatype::Int64 => "INT64",
        Datatype::Fp64 => "FP64",
        Datatype::Bytes => "BYTES",
        other => panic!("{fixture} {name}: datatype {other:?}"),
    };
    assert_eq!(datatype, want["datatype"], "{fixture} {name}");
    assert_eq!(json_shape(&actual), want["shape"], "{fixture} {name}");
    assert!(
        actual.parameters.iter().any(|p| p.name == "content_type"
            && matches!(&p.value, ParameterValue::String(v) if v == "np")),
        "{fixture} {name}: content_type np"
    );
    let got = elements(&actual);
    let data = want["data"].as_array().unwrap();
    assert_eq!(got.len(), data.len(), "{fixture} {name}");
    for (index, (got, want)) in got.iter().zip(data).enumerate() {
        match (got.as_f64(), want.as_f64()) {
            (Some(got), Some(want)) if actual.datatype == Datatype::Fp64 => assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{fixture} {name}[{index}]: {got} != {want}"
            ),
            _ => assert_eq!(got, want, "{fixture} {name}[{index}]: labels exactly"),
        }
    }
}

fn json_shape(tensor: &Tensor) -> Value {
    Value::from(tensor.shape.clone())
}

#[test]
fn every_catboost_fixture_answers_as_catboost() {
    for folder in fixtures() {
        let fixture = folder.file_name().unwrap().to_string_lossy().into_owned();
        let expected = expected(&folder);
        if let Some(words) = expected.get("load_error") {
            match Trees::load(settings(&folder)) {
                Err(Error::InvalidModel(message)) => {
                    for word in words.as_array().unwrap() {
                        let word = word.as_str().unwrap();
                        assert!(
                            message.contains(word),
                            "{fixture}: '{message}' lacks '{word}'"
                        );
                    }
                }
                other => panic!("{fixture}: expected InvalidModel, got {other:?}"),
            }
            continue;
        }
        // The folder: the runtime finds the model by its well-known name.
        let model = Trees::load(settings(&folder)).unwrap_or_else(|e| panic!("{fixture}: {e:?}"));
        let tensor = input(&expected);
        let outputs = &expected["outputs"];

        let response = model.predict(request(tensor.clone(), &[])).unwrap();
        assert_eq!(response.outputs.len(), 1, "{fixture}");
        check(
            &fixture,
            &outputs["predict"],
            Ok(response.outputs[0].clone()),
        );

        let answer = model.predict(request(tensor.clone(), &["predict_proba", "predict"]));
        if outputs["predict_proba"].get("error").is_some() {
            check(
                &fixture,
                &outputs["predict_proba"],
                answer.map(|r| r.outputs[0].clone()),
            );
        } else {
            let response = answer.unwrap();
            check(
                &fixture,
                &outputs["predict_proba"],
                Ok(response.outputs[0].clone()),
            );
            check(
                &fixture,
                &outputs["predict"],
                Ok(response.outputs[1].clone()),
            );
        }

        let metadata = model.metadata();
        assert_eq!(metadata.platform, "catboost");
        assert_eq!(
            metadata.inputs[0].shape[1],
            expected["shape"][1].as_i64().unwrap()
        );
        for output in &metadata.outputs {
            let want = &outputs[&output.name];
            assert!(
                want.get("error").is_none(),
                "{fixture}: metadata names {}",
                output.name
            );
            assert_eq!(
                output.shape[1],
                want["shape"][1].as_i64().unwrap(),
                "{fixture}"
            );
        }
    }
}

/// Loads `bytes` as `file` from a fresh folder.
fn load_bytes(name: &str, file: &str, bytes: &[u8]) -> Result<Trees, Error> {
    let folder =
        std::env::temp_dir().join(format!("mlhost-catboost-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(file), bytes).unwrap();
    let result = Trees::load(settings(&folder));
    let _ = std::fs::remove_dir_all(&folder);
    result
}

#[test]
fn corrupt_cbm_files_are_invalid_models_never_panics() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/catboost");
    // Oblivious trees with one-hot splits, and non-symmetric trees: every truncation, and every
    // byte of the core's first part changed, loads or fails cleanly (each offset is checked).
    for name in ["one-hot", "lossguide"] {
        let bytes = std::fs::read(fixture.join(name).join("model.cbm")).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                Trees::from_bytes(&bytes[..cut], None).is_err(),
                "{name} cut at {cut}"
            );
        }
        for at in 8..bytes.len().min(1000) {
            let mut changed = bytes.clone();
            changed[at] ^= 0xa5;
            let _ = Trees::from_bytes(&changed, None);
        }
    }
    let bytes = std::fs::read(fixture.join("one-hot/model.cbm")).unwrap();
    match load_bytes("cut-core", "model.cbm", &bytes[..100]) {
        Err(Error::InvalidModel(message)) => assert!(message.contains("truncated"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_categorical_value_must_be_an_integer() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/catboost/one-hot");
    let model = Trees::load(settings(&folder)).unwrap();
    let rows = Tensor::from_values("x", &[1, 5], &[0.1f64, 0.2, 0.3, 1.5, 2.0]).unwrap();
    match model.predict(request(rows, &[])) {
        Err(Error::InvalidInput(message)) => {
            assert!(
                message.contains("column 3") && message.contains("integers"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Integers of any datatype are categories; -0.0 is category "0".
    let ints = Tensor::from_values("x", &[1, 5], &[0i64, 0, 0, 1, -2]).unwrap();
    let floats = Tensor::from_values("x", &[1, 5], &[0.0f32, 0.0, 0.0, 1.0, -2.0]).unwrap();
    let a = model.predict(request(ints, &["predict_proba"])).unwrap();
    let b = model.predict(request(floats, &["predict_proba"])).unwrap();
    assert_eq!(a.outputs[0].data, b.outputs[0].data);
}

#[test]
fn the_columns_names_a_model_records_are_described() {
    let names = |fixture: &str| {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/catboost")
            .join(fixture);
        let metadata = Trees::load(settings(&folder)).unwrap().metadata();
        match mlhost_guest::find_parameter(
            &metadata.inputs[0].parameters,
            mlhost_guest::FEATURE_NAMES,
        ) {
            Some(ParameterValue::String(json)) => {
                Some(serde_json::from_str::<Vec<String>>(json).unwrap())
            }
            None => None,
            other => panic!("{other:?}"),
        }
    };
    // Trained on a DataFrame: float columns f0-f2, categorical k3 and k4 (both formats keep them).
    assert_eq!(names("one-hot").unwrap(), ["f0", "f1", "f2", "k3", "k4"]);
    assert_eq!(names("binary-cbm"), None, "trained on an array");
}
