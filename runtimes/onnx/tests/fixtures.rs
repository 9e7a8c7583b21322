//! The committed fixtures (`fixtures/*/model.onnx`, scikit-learn models exported with skl2onnx)
//! served natively through the runtime's own `Model` implementation, compared with
//! onnxruntime's answers in `fixtures/*/expected.json`.

use std::path::{Path, PathBuf};

use mlhost_guest::{
    Datatype, Error, InferenceRequest, Model, ModelSettings, RequestedOutput, Tensor,
};
use mlhost_runtime_onnx::Onnx;
use serde_json::Value;

const FIXTURES: [&str; 5] = [
    "logistic_regression",
    "logistic_regression_binary",
    "decision_tree",
    "random_forest",
    "scaler_logistic_pipeline",
];

/// Probabilities must agree with onnxruntime's to this absolute tolerance.
const TOLERANCE: f32 = 1e-5;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
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

fn load(uri: &Path) -> Result<Onnx, Error> {
    Onnx::load(settings(uri))
}

fn expected(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The fixture's input batch: its name and its rows.
fn batch(expected: &Value) -> (String, Vec<Vec<f64>>) {
    let (name, rows) = expected["batch"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let rows = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect();
    (name.clone(), rows)
}

fn request(inputs: Vec<Tensor>, outputs: &[&str]) -> InferenceRequest {
    InferenceRequest {
        id: None,
        inputs,
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

fn fp32_input(name: &str, rows: &[Vec<f64>]) -> Tensor {
    let values: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_values(name, &[rows.len() as u64, rows[0].len() as u64], &values).unwrap()
}

/// Checks a response's `label` and `probabilities` against `expected` rows `range`.
fn check_outputs(
    fixture: &str,
    outputs: &[Tensor],
    expected: &Value,
    range: std::ops::Range<usize>,
) {
    let rows = range.len() as u64;
    let label = outputs.iter().find(|t| t.name == "label").unwrap();
    assert_eq!(label.datatype, Datatype::Int64, "{fixture}");
    assert_eq!(label.shape, vec![rows], "{fixture}");
    let expected_labels: Vec<i64> = expected["label"].as_array().unwrap()[range.clone()]
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(
        label.values::<i64>().unwrap(),
        expected_labels,
        "{fixture}: labels"
    );

    let probabilities = outputs.iter().find(|t| t.name == "probabilities").unwrap();
    let expected_rows = &expected["probabilities"].as_array().unwrap()[range];
    let classes = expected_rows[0].as_array().unwrap().len() as u64;
    assert_eq!(probabilities.datatype, Datatype::Fp32, "{fixture}");
    assert_eq!(probabilities.shape, vec![rows, classes], "{fixture}");
    let actual = probabilities.values::<f32>().unwrap();
    let wanted: Vec<f32> = expected_rows
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
        })
        .collect();
    for (index, (a, b)) in actual.iter().zip(&wanted).enumerate() {
        assert!(
            (a - b).abs() <= TOLERANCE,
            "{fixture}: probability {index} is {a}, onnxruntime says {b}"
        );
    }
}

#[test]
fn every_fixture_matches_onnxruntime() {
    for name in FIXTURES {
        let expected = expected(name);
        let model = load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let (input, rows) = batch(&expected);
        let response = model
            .predict(request(vec![fp32_input(&input, &rows)], &[]))
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let names: Vec<&str> = response.outputs.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["label", "probabilities"],
            "{name}: all outputs by default"
        );
        check_outputs(name, &response.outputs, &expected, 0..rows.len());
    }
}

#[test]
fn metadata_comes_from_the_graph() {
    for name in FIXTURES {
        let expected = expected(name);
        let metadata = load(&fixture(name)).unwrap().metadata();
        assert_eq!(metadata.platform, "onnx");
        let describe =
            |tensors: &[mlhost_guest::TensorMetadata]| -> Vec<(String, Datatype, Vec<i64>)> {
                tensors
                    .iter()
                    .map(|t| (t.name.clone(), t.datatype, t.shape.clone()))
                    .collect()
            };
        let from_onnxruntime = |key: &str| -> Vec<(String, Datatype, Vec<i64>)> {
            expected[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    let datatype = match t["type"].as_str().unwrap() {
                        "tensor(float)" => Datatype::Fp32,
                        "tensor(int64)" => Datatype::Int64,
                        other => panic!("{other}"),
                    };
                    let shape = t["shape"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_i64().unwrap_or(-1))
                        .collect();
                    (t["name"].as_str().unwrap().to_string(), datatype, shape)
                })
                .collect()
        };
        assert_eq!(
            describe(&metadata.inputs),
            from_onnxruntime("inputs"),
            "{name}"
        );
        assert_eq!(
            describe(&metadata.outputs),
            from_onnxruntime("outputs"),
            "{name}"
        );
    }
}

#[test]
fn one_plan_serves_every_batch_size() {
    let name = "random_forest";
    let expected = expected(name);
    let model = load(&fixture(name)).unwrap();
    let (input, rows) = batch(&expected);
    for range in [0..1, 3..5, 0..rows.len(), 2..7] {
        let response = model
            .predict(request(vec![fp32_input(&input, &rows[range.clone()])], &[]))
            .unwrap();
        check_outputs(name, &response.outputs, &expected, range);
    }
}

#[test]
fn requested_outputs_only() {
    let name = "decision_tree";
    let expected = expected(name);
    let model = load(&fixture(name)).unwrap();
    let (input, rows) = batch(&expected);
    let response = model
        .predict(request(vec![fp32_input(&input, &rows)], &["probabilities"]))
        .unwrap();
    assert_eq!(response.outputs.len(), 1);
    assert_eq!(response.outputs[0].name, "probabilities");

    let error = model
        .predict(request(vec![fp32_input(&input, &rows)], &["predict_proba"]))
        .unwrap_err();
    assert!(
        matches!(error, Error::InvalidInput(ref m) if m.contains("predict_proba")),
        "{error:?}"
    );
}

#[test]
fn numeric_inputs_convert_to_the_graphs_datatype() {
    let name = "scaler_logistic_pipeline";
    let expected = expected(name);
    let model = load(&fixture(name)).unwrap();
    let (input, rows) = batch(&expected);
    // FP64 (as MLServer accepts): the values are those of the FP32 batch, exactly.
    let values: Vec<f64> = rows.iter().flatten().copied().collect();
    let fp64 = Tensor::from_values(&input, &[rows.len() as u64, 4], &values).unwrap();
    let response = model.predict(request(vec![fp64], &[])).unwrap();
    check_outputs(name, &response.outputs, &expected, 0..rows.len());

    // Integers become floats.
    let ints = Tensor::from_values(&input, &[1, 4], &[1i64, 50, -3, 7]).unwrap();
    let response = model.predict(request(vec![ints], &[])).unwrap();
    let floats = Tensor::from_values(&input, &[1, 4], &[1f32, 50.0, -3.0, 7.0]).unwrap();
    let same = model.predict(request(vec![floats], &[])).unwrap();
    for (a, b) in response.outputs.iter().zip(&same.outputs) {
        assert_eq!(
            (&a.name, a.datatype, &a.shape, &a.data),
            (&b.name, b.datatype, &b.shape, &b.data)
        );
    }
}

#[test]
fn requests_that_do_not_fit_are_invalid_input() {
    let model = load(&fixture("logistic_regression")).unwrap();
    let invalid = |inputs: Vec<Tensor>, what: &str| {
        let error = model.predict(request(inputs, &[])).unwrap_err();
        match error {
            Error::InvalidInput(message) => assert!(message.contains(what), "{message}"),
            other => panic!("{other:?}"),
        }
    };
    let row = [1f32, 2.0, 3.0, 4.0];
    invalid(vec![], "missing input 'X'");
    invalid(
        vec![Tensor::from_values("x", &[1, 4], &row).unwrap()],
        "unknown input 'x'",
    );
    invalid(
        vec![Tensor::from_values("X", &[1, 3], &row[..3]).unwrap()],
        "the model takes [-1, 4]",
    );
    invalid(
        vec![Tensor::from_values("X", &[4], &row).unwrap()],
        "the model takes [-1, 4]",
    );
    invalid(
        vec![Tensor::from_bytes_elements("X", &[1, 4], &["a", "b", "c", "d"]).unwrap()],
        "is BYTES but the model takes FP32",
    );
    invalid(
        vec![Tensor::from_values("X", &[1, 4], &[true, false, true, false]).unwrap()],
        "is BOOL but the model takes FP32",
    );
    let mut short = Tensor::from_values("X", &[2, 4], &[0f32; 8]).unwrap();
    short.data.truncate(16);
    invalid(vec![short], "has 4 elements");
}

#[test]
fn an_empty_batch_answers_empty_outputs() {
    let model = load(&fixture("logistic_regression")).unwrap();
    let empty = Tensor::from_values::<f32>("X", &[0, 4], &[]).unwrap();
    let response = model.predict(request(vec![empty], &[])).unwrap();
    assert_eq!(response.outputs[0].shape, vec![0]);
    assert_eq!(response.outputs[1].shape, vec![0, 3]);
}

#[test]
fn uri_may_name_the_file_or_its_folder() {
    let folder = fixture("decision_tree");
    let by_folder = load(&folder).unwrap().metadata();
    let by_file = load(&folder.join("model.onnx")).unwrap().metadata();
    assert_eq!(by_folder.outputs.len(), by_file.outputs.len());

    // A folder without model.onnx but with one other .onnx file serves that file.
    let dir = scratch("renamed");
    std::fs::copy(folder.join("model.onnx"), dir.join("trees.onnx")).unwrap();
    assert_eq!(load(&dir).unwrap().metadata().inputs[0].name, "X");

    let error = load(&scratch("empty")).unwrap_err();
    assert!(
        matches!(error, Error::InvalidModel(ref m) if m.contains("no model.onnx")),
        "{error:?}"
    );
}

#[test]
fn corrupt_files_are_invalid_models() {
    let dir = scratch("corrupt");
    let model = std::fs::read(fixture("random_forest").join("model.onnx")).unwrap();
    for (what, bytes) in [
        (
            "garbage",
            b"this is not a protobuf \xff\xfe\x00\x01".to_vec(),
        ),
        ("truncated", model[..model.len() / 2].to_vec()),
        ("empty", Vec::new()),
    ] {
        let path = dir.join("model.onnx");
        std::fs::write(&path, &bytes).unwrap();
        match load(&path) {
            Err(Error::InvalidModel(message)) => {
                assert!(message.contains("model.onnx"), "{what}: {message}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(matches!(
        load(&dir.join("missing.onnx")),
        Err(Error::InvalidModel(_))
    ));
}

#[test]
fn unsupported_operators_are_named() {
    let error = load(&fixture("unsupported_binarizer")).unwrap_err();
    let Error::InvalidModel(message) = error else {
        panic!("{error:?}")
    };
    assert!(message.contains("ai.onnx.ml:Binarizer"), "{message}");
    assert!(message.contains("guest SDK"), "{message}");
}

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mlhost-onnx-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn readme_lists_every_operator() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("<!-- operators").unwrap();
    let end = readme.find("<!-- /operators -->").unwrap();
    let standard: Vec<&str> = readme[start..end].split('`').skip(1).step_by(2).collect();
    let ml = [
        "ArrayFeatureExtractor",
        "CategoryMapper",
        "LinearClassifier",
        "LinearRegressor",
        "Normalizer",
        "Scaler",
        "TreeEnsembleClassifier",
    ];
    let mut listed: Vec<String> = standard.iter().chain(&ml).map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(listed, mlhost_runtime_onnx::model::supported_operators());
}
