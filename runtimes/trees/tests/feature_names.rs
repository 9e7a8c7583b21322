//! The feature names a model file records reach the input's metadata (the `feature_names`
//! parameter the host assembles column requests by); names LightGBM made up do not.

use mlhost_guest::{FEATURE_NAMES, Model, ParameterValue, find_parameter};
use mlhost_runtime_trees::Trees;
use std::path::Path;

fn fixture(name: &str, file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join(file);
    std::fs::read_to_string(path).unwrap()
}

/// The `feature_names` of the model's input, as its metadata gives them.
fn described_names(text: &str) -> Option<Vec<String>> {
    let model = Trees::from_bytes(text.as_bytes(), None).unwrap();
    let metadata = model.metadata();
    match find_parameter(&metadata.inputs[0].parameters, FEATURE_NAMES)? {
        ParameterValue::String(json) => Some(serde_json::from_str(json).unwrap()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn xgboost_feature_names_are_described() {
    let text = fixture("xgboost-regression", "model.json");
    assert_eq!(described_names(&text), None, "trained on an array");
    let mut document: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names = ["a", "b", "c", "d", "e"];
    document["learner"]["feature_names"] = serde_json::json!(names);
    assert_eq!(described_names(&document.to_string()).unwrap(), names);
}

#[test]
fn lightgbm_feature_names_are_described_unless_made_up() {
    let text = fixture("lightgbm-regression", "model.txt");
    assert!(text.contains("feature_names=Column_0 Column_1"));
    assert_eq!(described_names(&text), None, "LightGBM's own names");
    let named = text.replace(
        "feature_names=Column_0 Column_1 Column_2 Column_3 Column_4",
        "feature_names=age height weight income score",
    );
    assert_eq!(
        described_names(&named).unwrap(),
        ["age", "height", "weight", "income", "score"]
    );
}
