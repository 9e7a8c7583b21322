use super::*;

/// An MLmodel as MLflow 2.x writes it (PyYAML folds the long signature line).
const XGBOOST_MLMODEL: &str = r#"artifact_path: model
flavors:
  python_function:
    data: model.xgb
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.xgboost
    python_version: 3.11.2
  xgboost:
    code: null
    data: model.xgb
    model_class: xgboost.sklearn.XGBClassifier
    model_format: xgb
    xgb_version: 2.1.4
mlflow_version: 2.19.0
model_size_bytes: 1234
model_uuid: 0a1b
signature:
  inputs: '[{"type": "double", "name": "age", "required": true}, {"type": "double",
    "name": "income", "required": true}, {"type": "string", "name": "city", "required":
    true}]'
  outputs: '[{"type": "long", "required": true}]'
  params: null
utc_time_created: '2026-12-05 18:00:00.000000'
"#;

fn folder_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn settings(implementation: Option<&str>, uri: Option<&str>) -> ModelSettings {
    let mut settings = ModelSettings {
        implementation: implementation.map(str::to_string),
        ..Default::default()
    };
    settings.parameters.uri = uri.map(str::to_string);
    settings
}

#[test]
fn an_xgboost_flavour_serves_on_trees_with_its_columns_declared() {
    let dir = folder_with(&[("model/MLmodel", XGBOOST_MLMODEL)]);
    for implementation in [None, Some("mlflow"), Some("mlserver_mlflow.MLflowRuntime")] {
        let adapted = adapt(&settings(implementation, Some("./model")), dir.path())
            .unwrap()
            .unwrap();
        assert_eq!(adapted.implementation.as_deref(), Some("trees"));
        assert_eq!(
            Path::new(adapted.parameters.uri.as_deref().unwrap()),
            Path::new("./model/model.xgb")
        );
        let inputs: Vec<_> = adapted
            .inputs
            .iter()
            .map(|t| (t.name.as_str(), t.datatype.as_str(), t.shape.clone()))
            .collect();
        assert_eq!(
            inputs,
            [
                ("age", "FP64", vec![-1, 1]),
                ("income", "FP64", vec![-1, 1]),
                ("city", "BYTES", vec![-1, 1])
            ]
        );
        // The unnamed output is the runtime's (`predict`).
        assert!(adapted.outputs.is_empty());
    }
    // A built-in implementation is taken as it is.
    assert!(
        adapt(&settings(Some("xgboost"), Some("./model")), dir.path())
            .unwrap()
            .is_none()
    );
}

#[test]
fn tensor_signatures_keep_their_shapes_and_names() {
    let mlmodel = r#"flavors:
  onnx:
    data: model.onnx
    onnx_version: 1.17.0
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}, "name": "X"}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}, "name": "label"}]'
"#;
    let dir = folder_with(&[("MLmodel", mlmodel)]);
    let adapted = adapt(&settings(None, None), dir.path()).unwrap().unwrap();
    assert_eq!(adapted.implementation.as_deref(), Some("onnx"));
    assert_eq!(adapted.inputs[0].name, "X");
    assert_eq!(adapted.inputs[0].datatype, "FP32");
    assert_eq!(adapted.inputs[0].shape, [-1, 4]);
    assert_eq!(adapted.outputs[0].name, "label");
    assert_eq!(adapted.outputs[0].datatype, "INT64");
    // The uri may name MLmodel itself.
    let by_file = adapt(&settings(Some("mlflow"), Some("MLmodel")), dir.path())
        .unwrap()
        .unwrap();
    assert_eq!(
        Path::new(by_file.parameters.uri.as_deref().unwrap()),
        Path::new("model.onnx")
    );
}

#[test]
fn pickles_and_python_functions_are_refused_with_what_to_do() {
    let sklearn = "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: cloudpickle\n";
    let dir = folder_with(&[("MLmodel", sklearn)]);
    let error = adapt(&settings(None, None), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("mlhost convert") && error.contains("model.pkl"),
        "{error}"
    );
    // Once converted, it serves on onnx.
    std::fs::write(dir.path().join("model.onnx"), b"onnx").unwrap();
    let adapted = adapt(&settings(None, None), dir.path()).unwrap().unwrap();
    assert_eq!(adapted.implementation.as_deref(), Some("onnx"));

    let pyfunc = "flavors:\n  python_function:\n    loader_module: my_model\n    code: code\n";
    let dir = folder_with(&[("MLmodel", pyfunc)]);
    let error = adapt(&settings(Some("mlflow"), None), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("python_function-only") && error.contains("mlhost init"),
        "{error}"
    );

    let torch = "flavors:\n  pytorch:\n    model_data: data\n  python_function: {}\n";
    let dir = folder_with(&[("MLmodel", torch)]);
    let error = adapt(&settings(None, None), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("pytorch") && error.contains("ONNX"),
        "{error}"
    );
}

#[test]
fn an_mlflow_implementation_without_mlmodel_and_bad_files_are_errors() {
    let dir = folder_with(&[("model.json", "{}")]);
    let error = adapt(
        &settings(Some("mlserver_mlflow.MLflowRuntime"), None),
        dir.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("holds no MLmodel file"), "{error}");
    assert!(adapt(&settings(None, None), dir.path()).unwrap().is_none());

    let dir = folder_with(&[("MLmodel", "flavors: [unclosed")]);
    let error = adapt(&settings(None, None), dir.path())
        .unwrap_err()
        .to_string();
    assert!(error.contains("is not an MLflow MLmodel file"), "{error}");

    let bad = "flavors:\n  lightgbm:\n    data: model.lgb\nsignature:\n  inputs: '[{\"type\": \"decimal\"}]'\n";
    let dir = folder_with(&[("MLmodel", bad)]);
    let error = adapt(&settings(None, None), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("column type `decimal` is unknown"),
        "{error}"
    );
}

#[test]
fn a_converted_mlserver_sklearn_folder_serves_on_onnx() {
    let dir = folder_with(&[("model.joblib", "pickle")]);
    let sklearn = settings(
        Some("mlserver_sklearn.SKLearnModel"),
        Some("./model.joblib"),
    );
    assert!(adapt(&sklearn, dir.path()).unwrap().is_none());
    std::fs::write(dir.path().join("model.onnx"), b"onnx").unwrap();
    let adapted = adapt(&sklearn, dir.path()).unwrap().unwrap();
    assert_eq!(adapted.implementation.as_deref(), Some("onnx"));
    assert!(
        adapted
            .parameters
            .uri
            .as_deref()
            .unwrap()
            .ends_with("model.onnx")
    );
}

#[test]
fn tree_flavours_serve_on_trees_with_their_data_file() {
    for (flavour, file) in [
        ("lightgbm", "model.lgb"),
        ("catboost", "model.cb"),
        ("xgboost", "model.xgb"),
    ] {
        let mlmodel = format!(
            "flavors:\n  python_function:\n    data: {file}\n    loader_module: mlflow.{flavour}\n  {flavour}:\n    data: {file}\n"
        );
        let dir = folder_with(&[("MLmodel", &mlmodel)]);
        let model = read(dir.path()).unwrap();
        assert_eq!(
            (model.flavour.as_str(), model.runtime, model.file.as_str()),
            (flavour, "trees", file)
        );
        assert!(model.inputs.is_empty() && model.outputs.is_empty());
    }
}
