//! Every fixture of `fixtures/` (models trained by `fixtures/generate.py`) answers what
//! MLServer's XGBoost or LightGBM runtime answered for the same rows: the same output names,
//! datatypes and shapes, labels exactly and numbers within 1e-5.

use mlhost_guest::{
    Datatype, Error, InferenceRequest, Model, ModelSettings, ParameterValue, RequestedOutput,
    Tensor,
};
use mlhost_runtime_trees::Trees;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct Expected {
    model_file: String,
    datatype: String,
    shape: Vec<u64>,
    rows: Vec<Vec<String>>,
    outputs: BTreeMap<String, ExpectedOutput>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ExpectedOutput {
    Tensor {
        name: String,
        datatype: String,
        shape: Vec<u64>,
        data: Vec<f64>,
    },
    Refused {
        error: String,
    },
}

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("expected.json").is_file())
        .collect();
    folders.sort();
    assert!(folders.len() >= 6, "fixtures missing in {}", root.display());
    folders
}

fn settings(uri: &Path) -> ModelSettings {
    ModelSettings {
        name: "fixture".to_string(),
        version: None,
        uri: uri.to_string_lossy().into_owned(),
        extra: "{}".to_string(),
        parameters: Vec::new(),
    }
}

fn datatype(name: &str) -> Datatype {
    match name {
        "FP32" => Datatype::Fp32,
        "FP64" => Datatype::Fp64,
        "INT32" => Datatype::Int32,
        "INT64" => Datatype::Int64,
        other => panic!("unexpected datatype {other}"),
    }
}

/// The request's rows, parsed exactly (JSON has no NaN: the fixtures hold numbers as text).
fn rows(expected: &Expected) -> Vec<f64> {
    expected
        .rows
        .iter()
        .flatten()
        .map(|text| text.parse::<f64>().unwrap())
        .collect()
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

fn input(datatype: Datatype, shape: &[u64], values: &[f64]) -> Tensor {
    match datatype {
        Datatype::Fp32 => {
            let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            Tensor::from_values("anything", shape, &values).unwrap()
        }
        Datatype::Fp64 => Tensor::from_values("anything", shape, values).unwrap(),
        other => panic!("unexpected input datatype {other:?}"),
    }
}

fn as_f64(tensor: &Tensor) -> Vec<f64> {
    match tensor.datatype {
        Datatype::Fp32 => tensor
            .values::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect(),
        Datatype::Fp64 => tensor.values::<f64>().unwrap(),
        Datatype::Int32 => tensor
            .values::<i32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect(),
        Datatype::Int64 => tensor
            .values::<i64>()
            .unwrap()
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        other => panic!("unexpected output datatype {other:?}"),
    }
}

fn check(fixture: &str, expected: &ExpectedOutput, actual: Result<Tensor, Error>) {
    match expected {
        ExpectedOutput::Tensor {
            name,
            datatype: expected_datatype,
            shape,
            data,
        } => {
            let actual = actual.unwrap_or_else(|error| panic!("{fixture} {name}: {error:?}"));
            assert_eq!(&actual.name, name, "{fixture}");
            assert_eq!(
                actual.datatype,
                datatype(expected_datatype),
                "{fixture} {name}"
            );
            assert_eq!(&actual.shape, shape, "{fixture} {name}");
            assert!(
                actual.parameters.iter().any(|p| p.name == "content_type"
                    && matches!(&p.value, ParameterValue::String(v) if v == "np")),
                "{fixture} {name}: content_type np"
            );
            let values = as_f64(&actual);
            assert_eq!(values.len(), data.len(), "{fixture} {name}");
            let integers = matches!(actual.datatype, Datatype::Int32 | Datatype::Int64);
            for (index, (&got, &want)) in values.iter().zip(data).enumerate() {
                if integers {
                    assert_eq!(got, want, "{fixture} {name}[{index}]: label");
                } else {
                    let tolerance = 1e-5 * want.abs().max(1.0);
                    assert!(
                        (got - want).abs() <= tolerance,
                        "{fixture} {name}[{index}]: {got} != {want}"
                    );
                }
            }
        }
        ExpectedOutput::Refused { error } => match actual {
            Err(Error::InvalidInput(message)) => {
                assert!(message.contains("predict_proba"), "{fixture}: {message}")
            }
            other => {
                panic!("{fixture}: expected a refusal like MLServer's ({error}), got {other:?}")
            }
        },
    }
}

#[test]
fn every_fixture_answers_as_mlserver() {
    for folder in fixtures() {
        let fixture = folder.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Expected =
            serde_json::from_slice(&std::fs::read(folder.join("expected.json")).unwrap()).unwrap();
        // The folder: the runtime finds the model by its well-known name.
        let model = Trees::load(settings(&folder)).unwrap_or_else(|e| panic!("{fixture}: {e:?}"));
        assert!(folder.join(&expected.model_file).is_file());
        let values = rows(&expected);
        let tensor = input(datatype(&expected.datatype), &expected.shape, &values);

        // No outputs requested: `predict` alone.
        let response = model.predict(request(tensor.clone(), &[])).unwrap();
        assert_eq!(response.outputs.len(), 1, "{fixture}");
        check(
            &fixture,
            &expected.outputs["predict"],
            Ok(response.outputs[0].clone()),
        );

        // Both requested, in that order.
        let answer = model.predict(request(tensor.clone(), &["predict_proba", "predict"]));
        match &expected.outputs["predict_proba"] {
            ExpectedOutput::Tensor { .. } => {
                let response = answer.unwrap();
                check(
                    &fixture,
                    &expected.outputs["predict_proba"],
                    Ok(response.outputs[0].clone()),
                );
                check(
                    &fixture,
                    &expected.outputs["predict"],
                    Ok(response.outputs[1].clone()),
                );
            }
            refused => check(&fixture, refused, answer.map(|r| r.outputs[0].clone())),
        }

        // The metadata describes the outputs the model gives.
        let metadata = model.metadata();
        assert_eq!(metadata.inputs[0].shape, vec![-1, expected.shape[1] as i64]);
        for output in &metadata.outputs {
            let ExpectedOutput::Tensor {
                datatype: want,
                shape,
                ..
            } = &expected.outputs[&output.name]
            else {
                panic!(
                    "{fixture}: metadata names {}, which is refused",
                    output.name
                );
            };
            assert_eq!(output.datatype, datatype(want), "{fixture} {}", output.name);
            assert_eq!(
                output.shape[1] as u64, shape[1],
                "{fixture} {}",
                output.name
            );
        }
    }
}

#[test]
fn the_model_file_can_be_named_directly_and_any_numeric_datatype_is_read() {
    for folder in fixtures() {
        let fixture = folder.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Expected =
            serde_json::from_slice(&std::fs::read(folder.join("expected.json")).unwrap()).unwrap();
        let model = Trees::load(settings(&folder.join(&expected.model_file))).unwrap();
        let values = rows(&expected);
        // The other float width gives the same answer (the rows are exact in both where it
        // matters: XGBoost reads f32, LightGBM's f32 rows are read as f32 by LightGBM too).
        let other = if expected.datatype == "FP32" {
            Datatype::Fp64
        } else {
            continue;
        };
        let tensor = input(other, &expected.shape, &values);
        let response = model.predict(request(tensor, &[])).unwrap();
        check(
            &fixture,
            &expected.outputs["predict"],
            Ok(response.outputs[0].clone()),
        );
    }
}

#[test]
fn integer_inputs_are_features_too() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/xgboost-regression");
    let model = Trees::load(settings(&folder)).unwrap();
    let ints = Tensor::from_values("x", &[2, 5], &[1i64, 0, -1, 2, 3, 0, 0, 0, 0, 0]).unwrap();
    let floats = Tensor::from_values(
        "x",
        &[2, 5],
        &[1.0f32, 0.0, -1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    )
    .unwrap();
    let a = model.predict(request(ints, &[])).unwrap();
    let b = model.predict(request(floats, &[])).unwrap();
    assert_eq!(a.outputs[0].data, b.outputs[0].data);
}
