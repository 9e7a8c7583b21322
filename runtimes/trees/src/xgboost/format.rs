//! The layout of XGBoost's JSON model document (the same for its UBJSON form, once read into
//! a `serde_json::Value`), as serde types, and the readers of the numbers XGBoost writes as
//! strings (counts and `base_score`).

use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

/// The whole document.
#[derive(Deserialize)]
pub(super) struct ModelFile {
    pub learner: Learner,
}

/// `learner`: what the model learnt and how to read it.
#[derive(Deserialize)]
pub(super) struct Learner {
    #[serde(default)]
    pub attributes: HashMap<String, String>,
    /// The columns' names, when the model was trained on named columns (a DataFrame).
    #[serde(default)]
    pub feature_names: Vec<String>,
    #[serde(default)]
    pub feature_types: Vec<String>,
    /// Read once its `name` says which booster it is (`gbtree`, `dart`, ...).
    pub gradient_booster: Value,
    pub learner_model_param: LearnerModelParam,
    pub objective: ObjectiveJson,
}

/// `learner.learner_model_param`.
#[derive(Deserialize)]
pub(super) struct LearnerModelParam {
    pub base_score: String,
    #[serde(default)]
    pub num_class: Option<String>,
    pub num_feature: String,
    #[serde(default)]
    pub num_target: Option<String>,
}

/// `learner.objective`.
#[derive(Deserialize)]
pub(super) struct ObjectiveJson {
    pub name: String,
}

/// The `model` of a `gbtree` booster.
#[derive(Deserialize)]
pub(super) struct GbTreeModel {
    pub gbtree_model_param: GbTreeModelParam,
    pub trees: Vec<TreeJson>,
    pub tree_info: Vec<i64>,
    #[serde(default)]
    pub iteration_indptr: Option<Vec<u64>>,
}

/// `gbtree_model_param`.
#[derive(Deserialize)]
pub(super) struct GbTreeModelParam {
    pub num_trees: String,
    #[serde(default)]
    pub num_parallel_tree: Option<String>,
}

/// One tree, as parallel node arrays.
#[derive(Deserialize)]
pub(super) struct TreeJson {
    pub tree_param: TreeParam,
    pub left_children: Vec<i64>,
    pub right_children: Vec<i64>,
    pub split_indices: Vec<i64>,
    pub split_conditions: Vec<f64>,
    pub default_left: Vec<Flag>,
    #[serde(default)]
    pub split_type: Vec<u8>,
}

/// A tree's `tree_param`.
#[derive(Deserialize)]
pub(super) struct TreeParam {
    pub num_nodes: String,
    #[serde(default)]
    pub size_leaf_vector: Option<String>,
}

/// A boolean written as `true` / `false` (XGBoost 1.x) or `0` / `1` (later versions).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Flag {
    Bool(bool),
    Int(i64),
}

impl Flag {
    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        match self {
            Flag::Bool(value) => *value,
            Flag::Int(value) => *value != 0,
        }
    }
}

/// A count XGBoost writes as a string (`"num_feature": "4"`).
pub(super) fn parse_count(field: &str, text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .map_err(|_| format!("{field} is '{text}', expected a count"))
}

/// An optional count, `default` when absent.
pub(super) fn parse_optional_count(
    field: &str,
    text: Option<&String>,
    default: usize,
) -> Result<usize, String> {
    text.map_or(Ok(default), |text| parse_count(field, text))
}

/// `base_score`: `"5E-1"` (XGBoost < 3) or `"[5E-1]"` / `"[a,b,c]"` (XGBoost 3: one per group).
pub(super) fn parse_base_score(text: &str) -> Result<Vec<f32>, String> {
    let inner = text.trim();
    let inner = inner
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(inner);
    inner
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<f32>()
                .map_err(|_| format!("base_score is '{text}', expected numbers"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_score_is_read_from_every_version() {
        assert_eq!(parse_base_score("5E-1").unwrap(), vec![0.5]);
        assert_eq!(parse_base_score("[5.35E-1]").unwrap(), vec![0.535]);
        assert_eq!(
            parse_base_score("[1E-1,-2E-1,3E0]").unwrap(),
            vec![0.1, -0.2, 3.0]
        );
        assert!(parse_base_score("[a]").is_err());
    }
}
