//! Building an [`XgbModel`] from XGBoost's model document: the learner's parameters (outputs,
//! features, objective, `base_score`), the estimator type, the booster (`gbtree`, or `dart`
//! with its tree weights), how many trees to evaluate, and each tree's nodes.

use super::format::{
    GbTreeModel, Learner, ModelFile, TreeJson, parse_base_score, parse_count, parse_optional_count,
};
use super::{Estimator, Objective, XgbModel};
use crate::ensemble::{Forest, Node, flags};
use serde_json::Value;
use std::collections::HashMap;

impl XgbModel {
    /// Reads a model from XGBoost's JSON format (a parsed document: JSON or UBJSON).
    ///
    /// `estimator` overrides the estimator type the file records.
    pub fn from_value(document: Value, estimator: Option<Estimator>) -> Result<Self, String> {
        let file: ModelFile = serde_json::from_value(document)
            .map_err(|error| format!("not an XGBoost model in JSON format: {error}"))?;
        from_file(file, estimator)
    }

    /// Reads a model from XGBoost's JSON text.
    pub fn from_json(text: &[u8], estimator: Option<Estimator>) -> Result<Self, String> {
        let file: ModelFile = serde_json::from_slice(text)
            .map_err(|error| format!("not an XGBoost model in JSON format: {error}"))?;
        from_file(file, estimator)
    }
}

/// What the learner's parameters say about the model's inputs and outputs.
struct Shape {
    objective: Objective,
    objective_name: String,
    num_features: usize,
    /// `num_class` (0 for a binary or regression model).
    num_class: usize,
    /// The output groups: classes, or targets, at least 1.
    num_groups: usize,
}

/// Builds the model from its parsed document.
fn from_file(file: ModelFile, estimator: Option<Estimator>) -> Result<XgbModel, String> {
    let learner = file.learner;
    let shape = shape(&learner)?;
    let base_margin = base_margin(
        &learner.learner_model_param.base_score,
        shape.objective,
        shape.num_groups,
    )?;
    let estimator = match estimator {
        Some(estimator) => estimator,
        None => recorded_estimator(&learner.attributes)?,
    };
    let (model, weights) = gradient_booster(learner.gradient_booster)?;
    let last_tree = tree_limit(&model, &learner.attributes, shape.num_groups)?;
    let forest = forest(&model, weights.as_deref(), last_tree, &shape)?;
    Ok(XgbModel {
        forest,
        base_margin,
        objective: shape.objective,
        objective_name: shape.objective_name,
        estimator,
        num_features: shape.num_features,
        num_class: shape.num_class,
        feature_names: learner.feature_names,
    })
}

/// The objective, the features and the output groups, checked against each other.
fn shape(learner: &Learner) -> Result<Shape, String> {
    let objective_name = learner.objective.name.clone();
    let objective = Objective::from_name(&objective_name)?;
    let param = &learner.learner_model_param;
    let num_features = parse_count("num_feature", &param.num_feature)?;
    let num_class = parse_optional_count("num_class", param.num_class.as_ref(), 0)?;
    let num_target = parse_optional_count("num_target", param.num_target.as_ref(), 1)?.max(1);
    if num_class > 1 && num_target > 1 {
        return Err(format!(
            "num_class {num_class} and num_target {num_target}: a model has one or the other"
        ));
    }
    let num_groups = num_class.max(num_target).max(1);
    if matches!(objective, Objective::Softprob | Objective::Softmax) && num_class < 1 {
        return Err(format!("objective {objective_name} without num_class"));
    }
    if learner.feature_types.iter().any(|kind| kind == "c") {
        return Err(
            "categorical features (feature_types 'c') are not supported: train with \
             numerical (one-hot or ordinal) features"
                .to_string(),
        );
    }
    Ok(Shape {
        objective,
        objective_name,
        num_features,
        num_class,
        num_groups,
    })
}

/// The starting margin of each output group, from `base_score` (one value, or one a group).
fn base_margin(
    base_score: &str,
    objective: Objective,
    num_groups: usize,
) -> Result<Vec<f32>, String> {
    let base_score = parse_base_score(base_score)?;
    match base_score.as_slice() {
        [one] => Ok(vec![objective.prob_to_margin(*one); num_groups]),
        many if many.len() == num_groups => Ok(many
            .iter()
            .map(|&score| objective.prob_to_margin(score))
            .collect()),
        many => Err(format!(
            "base_score has {} values for {num_groups} outputs",
            many.len()
        )),
    }
}

/// The estimator type `XGBModel.save_model` records in `attributes.scikit_learn`.
fn recorded_estimator(attributes: &HashMap<String, String>) -> Result<Estimator, String> {
    let Some(meta) = attributes.get("scikit_learn") else {
        return Ok(Estimator::Regressor);
    };
    let meta: Value = serde_json::from_str(meta)
        .map_err(|error| format!("attributes.scikit_learn is not JSON: {error}"))?;
    match meta.get("_estimator_type").and_then(Value::as_str) {
        None | Some("regressor") => Ok(Estimator::Regressor),
        Some("classifier") => Ok(Estimator::Classifier),
        Some(other) => Err(format!(
            "the model was saved by a scikit-learn estimator of type '{other}'; MLServer's \
             XGBoost runtime (and this one) serves classifiers and regressors only"
        )),
    }
}

/// The trees of `gbtree`, or of `dart` with its tree weights; `gblinear` is refused.
fn gradient_booster(booster: Value) -> Result<(GbTreeModel, Option<Vec<f32>>), String> {
    let name = booster
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match name.as_str() {
        "gbtree" => {
            let model = booster
                .get("model")
                .cloned()
                .ok_or("gradient_booster has no model")?;
            let model = serde_json::from_value(model)
                .map_err(|error| format!("gradient_booster.model: {error}"))?;
            Ok((model, None))
        }
        "dart" => dart_booster(&booster),
        "gblinear" => Err(
            "gblinear (linear booster) models are not supported: this runtime serves tree \
             ensembles (booster gbtree or dart)"
                .to_string(),
        ),
        other => Err(format!(
            "gradient_booster '{other}' is not supported (gbtree or dart)"
        )),
    }
}

/// A `dart` booster: its inner `gbtree` and the weight of each tree (`weight_drop`).
fn dart_booster(booster: &Value) -> Result<(GbTreeModel, Option<Vec<f32>>), String> {
    let weights: Vec<f32> = booster
        .get("weight_drop")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|error| format!("dart weight_drop: {error}"))?
        .ok_or("dart booster without weight_drop")?;
    let inner = booster
        .get("gbtree")
        .cloned()
        .ok_or("dart booster without gbtree")?;
    let (model, _) = gradient_booster(inner)?;
    Ok((model, Some(weights)))
}

/// How many trees to evaluate: all, or those of the first `best_iteration + 1` iterations
/// when the model records a `best_iteration` (scikit-learn's `predict` stops there).
fn tree_limit(
    model: &GbTreeModel,
    attributes: &HashMap<String, String>,
    num_groups: usize,
) -> Result<usize, String> {
    let num_trees = parse_count("num_trees", &model.gbtree_model_param.num_trees)?;
    if num_trees != model.trees.len() || model.tree_info.len() != model.trees.len() {
        return Err(format!(
            "num_trees is {num_trees} but the model holds {} trees and {} tree_info entries",
            model.trees.len(),
            model.tree_info.len()
        ));
    }
    let Some(best) = attributes.get("best_iteration") else {
        return Ok(num_trees);
    };
    let best = parse_count("best_iteration", best)?;
    let iterations = best + 1;
    match &model.iteration_indptr {
        Some(indptr) if indptr.len() >= 2 => {
            let end = indptr
                .get(iterations)
                .or(indptr.last())
                .copied()
                .unwrap_or(0);
            Ok((end as usize).min(num_trees))
        }
        _ => {
            let parallel = parse_optional_count(
                "num_parallel_tree",
                model.gbtree_model_param.num_parallel_tree.as_ref(),
                1,
            )?
            .max(1);
            Ok((iterations * parallel * num_groups).min(num_trees))
        }
    }
}

/// The first `last_tree` trees, each added to the output group `tree_info` gives it.
fn forest(
    model: &GbTreeModel,
    weights: Option<&[f32]>,
    last_tree: usize,
    shape: &Shape,
) -> Result<Forest<f32>, String> {
    let mut forest = Forest::new(shape.num_features, shape.num_groups);
    for (index, tree) in model.trees.iter().enumerate().take(last_tree) {
        let group = *model
            .tree_info
            .get(index)
            .ok_or_else(|| format!("tree {index} has no entry in tree_info"))?;
        let group =
            usize::try_from(group).map_err(|_| format!("tree_info of tree {index} is {group}"))?;
        let weight = match weights {
            None => None,
            Some(weights) => Some(
                weights
                    .get(index)
                    .copied()
                    .ok_or_else(|| format!("tree {index} has no dart weight"))?,
            ),
        };
        let nodes = tree_nodes(tree, weight).map_err(|error| format!("tree {index}: {error}"))?;
        forest
            .add_tree(group, &nodes, (&[], &[]))
            .map_err(|error| format!("tree {index}: {error}"))?;
    }
    Ok(forest)
}

/// The nodes of one tree; a dart weight scales the leaves, as XGBoost's dart prediction does.
fn tree_nodes(tree: &TreeJson, weight: Option<f32>) -> Result<Vec<Node<f32>>, String> {
    let count = check_tree(tree)?;
    (0..count)
        .map(|index| {
            let left = tree.left_children[index];
            let value = tree.split_conditions[index] as f32;
            if left == -1 {
                return Ok(Node::leaf(match weight {
                    Some(weight) => value * weight,
                    None => value,
                }));
            }
            let child = |child: i64| {
                u32::try_from(child).map_err(|_| format!("node {index} has child {child}"))
            };
            let feature = u32::try_from(tree.split_indices[index]).map_err(|_| {
                format!(
                    "node {index} splits on feature {}",
                    tree.split_indices[index]
                )
            })?;
            Ok(Node {
                feature,
                value,
                left: child(left)?,
                right: child(tree.right_children[index])?,
                flags: if tree.default_left[index].is_set() {
                    flags::DEFAULT_LEFT
                } else {
                    0
                },
            })
        })
        .collect()
}

/// Checks that a tree is one this runtime evaluates, with node arrays of `num_nodes` values;
/// returns `num_nodes`.
fn check_tree(tree: &TreeJson) -> Result<usize, String> {
    let count = parse_count("num_nodes", &tree.tree_param.num_nodes)?;
    if let Some(size) = &tree.tree_param.size_leaf_vector
        && parse_count("size_leaf_vector", size)? > 1
    {
        return Err(
            "vector leaves (multi_strategy 'multi_output_tree') are not supported".to_string(),
        );
    }
    let lengths = [
        tree.left_children.len(),
        tree.right_children.len(),
        tree.split_indices.len(),
        tree.split_conditions.len(),
        tree.default_left.len(),
    ];
    if lengths.iter().any(|&length| length != count) {
        return Err(format!(
            "num_nodes is {count} but the node arrays have lengths {lengths:?}"
        ));
    }
    if tree.split_type.iter().any(|&kind| kind != 0) {
        return Err("categorical splits are not supported".to_string());
    }
    Ok(count)
}
