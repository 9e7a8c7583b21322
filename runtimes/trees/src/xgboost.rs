//! XGBoost models in XGBoost's JSON format (`Booster.save_model("model.json")`), evaluated as
//! XGBoost evaluates them, and answered as MLServer's XGBoost runtime answers.
//!
//! Evaluation follows XGBoost's CPU predictor: features are `float`; a split sends `x` left
//! when `x < split_condition` (in `float`) and a missing value (NaN) to its `default_left`
//! child; each output group starts from the intercept (`base_score`, turned into a margin by
//! the objective: logit for `reg:logistic` and `binary:logistic`, log for the log-link ones) and adds its
//! trees' leaves in `float`, tree by tree, the group of tree `i` being `tree_info[i]`. The
//! objective then transforms the margins (sigmoid, softmax, exp, ...).
//!
//! MLServer loads the file with `XGBRegressor.load_model` and, when that raises `TypeError`
//! (the file says it was saved by an `XGBClassifier`: `learner.attributes.scikit_learn`), with
//! `XGBClassifier.load_model`. A file saved by `Booster.save_model` carries no estimator type,
//! so MLServer serves it as a regressor whatever its objective. The outputs follow:
//!
//! | loaded as | `predict` | `predict_proba` |
//! |---|---|---|
//! | regressor | the booster's output, FP32 `[N, 1]` (`[N, K]` for `multi:softprob` or several targets) | refused |
//! | classifier | INT64 `[N, 1]` labels: argmax of the probabilities, or `p > 0.5` for one output column; INT32 for `multi:softmax` | FP32 `[N, K]`; `[1 - p, p]` for one output column; the softmax of the margins for `multi:softmax` |
//!
//! `parameters.extra.estimator_type` (`"classifier"` or `"regressor"`) overrides the file's.

use crate::ensemble::{CategorySets, Forest, Node, SplitRule, flags};
use mlhost_guest::{Datatype, Error, Tensor};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

/// How the booster's margins become its output (XGBoost's `PredTransform`), and how
/// `base_score` becomes a margin (`ProbToMargin`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// The margin is the output (squared error, absolute error, ranking, ...).
    Identity,
    /// `reg:logistic`, `binary:logistic`: sigmoid; `base_score` is a probability.
    Logistic,
    /// `binary:logitraw`: the margin; `base_score` is a margin too (XGBoost ≥ 2 no longer
    /// takes its logit, and the loading library decides).
    LogitRaw,
    /// `binary:hinge`: 1 when the margin is positive, else 0.
    Hinge,
    /// `count:poisson`, `reg:gamma`, `reg:tweedie`: exp; `base_score` is a mean.
    Exp,
    /// `multi:softprob`: softmax over the classes.
    Softprob,
    /// `multi:softmax`: the index of the largest margin.
    Softmax,
}

impl Objective {
    /// The objective named `name` in the model's `learner.objective.name`.
    fn from_name(name: &str) -> Result<Self, String> {
        Ok(match name {
            "reg:squarederror"
            | "reg:linear"
            | "reg:squaredlogerror"
            | "reg:pseudohubererror"
            | "reg:absoluteerror"
            | "reg:quantileerror"
            | "rank:pairwise"
            | "rank:ndcg"
            | "rank:map" => Objective::Identity,
            "reg:logistic" | "binary:logistic" => Objective::Logistic,
            "binary:logitraw" => Objective::LogitRaw,
            "binary:hinge" => Objective::Hinge,
            "count:poisson" | "reg:gamma" | "reg:tweedie" => Objective::Exp,
            "multi:softprob" => Objective::Softprob,
            "multi:softmax" => Objective::Softmax,
            other => {
                return Err(format!(
                    "objective '{other}' is not supported (supported: reg:squarederror, \
                     reg:squaredlogerror, reg:pseudohubererror, reg:absoluteerror, \
                     reg:quantileerror, reg:logistic, binary:logistic, binary:logitraw, \
                     binary:hinge, count:poisson, reg:gamma, reg:tweedie, multi:softprob, \
                     multi:softmax, rank:pairwise, rank:ndcg, rank:map)"
                ));
            }
        })
    }

    /// `base_score` as a margin (XGBoost's `ProbToMargin`, in `float`).
    fn prob_to_margin(self, base_score: f32) -> f32 {
        match self {
            Objective::Logistic => -(1.0f32 / base_score - 1.0).ln(),
            Objective::Exp => base_score.ln(),
            _ => base_score,
        }
    }
}

/// Whether MLServer serves the model as an `XGBClassifier` or an `XGBRegressor`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Estimator {
    /// `XGBClassifier`: `predict` gives labels, `predict_proba` probabilities.
    Classifier,
    /// `XGBRegressor`: `predict` gives the booster's output.
    Regressor,
}

/// XGBoost's split rule: `x < threshold` goes left, NaN goes to the default child.
#[derive(Clone, Copy)]
struct XgbRule;

impl SplitRule<f32> for XgbRule {
    #[inline(always)]
    fn go_left(self, x: f32, threshold: f32, node_flags: u8, _: &CategorySets) -> bool {
        if x.is_nan() {
            node_flags & flags::DEFAULT_LEFT != 0
        } else {
            x < threshold
        }
    }
}

/// A loaded XGBoost model.
#[derive(Debug)]
pub struct XgbModel {
    forest: Forest<f32>,
    /// The starting margin of each output group.
    base_margin: Vec<f32>,
    objective: Objective,
    objective_name: String,
    estimator: Estimator,
    num_features: usize,
    /// `num_class` of the model (0 for a binary or regression model).
    num_class: usize,
}

// --- the JSON format --------------------------------------------------------------------------

#[derive(Deserialize)]
struct ModelFile {
    learner: Learner,
}

#[derive(Deserialize)]
struct Learner {
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default)]
    feature_types: Vec<String>,
    gradient_booster: Value,
    learner_model_param: LearnerModelParam,
    objective: ObjectiveJson,
}

#[derive(Deserialize)]
struct LearnerModelParam {
    base_score: String,
    #[serde(default)]
    num_class: Option<String>,
    num_feature: String,
    #[serde(default)]
    num_target: Option<String>,
}

#[derive(Deserialize)]
struct ObjectiveJson {
    name: String,
}

#[derive(Deserialize)]
struct GbTreeModel {
    gbtree_model_param: GbTreeModelParam,
    trees: Vec<TreeJson>,
    tree_info: Vec<i64>,
    #[serde(default)]
    iteration_indptr: Option<Vec<u64>>,
}

#[derive(Deserialize)]
struct GbTreeModelParam {
    num_trees: String,
    #[serde(default)]
    num_parallel_tree: Option<String>,
}

#[derive(Deserialize)]
struct TreeJson {
    tree_param: TreeParam,
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    split_indices: Vec<i64>,
    split_conditions: Vec<f64>,
    default_left: Vec<Flag>,
    #[serde(default)]
    split_type: Vec<u8>,
}

#[derive(Deserialize)]
struct TreeParam {
    num_nodes: String,
    #[serde(default)]
    size_leaf_vector: Option<String>,
}

/// A boolean written as `true` / `false` (XGBoost 1.x) or `0` / `1` (later versions).
#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Int(i64),
}

impl Flag {
    fn is_set(&self) -> bool {
        match self {
            Flag::Bool(value) => *value,
            Flag::Int(value) => *value != 0,
        }
    }
}

fn parse_count(field: &str, text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .map_err(|_| format!("{field} is '{text}', expected a count"))
}

/// `base_score`: `"5E-1"` (XGBoost < 3) or `"[5E-1]"` / `"[a,b,c]"` (XGBoost 3: one per group).
fn parse_base_score(text: &str) -> Result<Vec<f32>, String> {
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

impl XgbModel {
    /// Reads a model from XGBoost's JSON format (a parsed document: JSON or UBJSON).
    ///
    /// `estimator` overrides the estimator type the file records.
    pub fn from_value(document: Value, estimator: Option<Estimator>) -> Result<Self, String> {
        let file: ModelFile = serde_json::from_value(document)
            .map_err(|error| format!("not an XGBoost model in JSON format: {error}"))?;
        Self::from_file(file, estimator)
    }

    /// Reads a model from XGBoost's JSON text.
    pub fn from_json(text: &[u8], estimator: Option<Estimator>) -> Result<Self, String> {
        let file: ModelFile = serde_json::from_slice(text)
            .map_err(|error| format!("not an XGBoost model in JSON format: {error}"))?;
        Self::from_file(file, estimator)
    }

    fn from_file(file: ModelFile, estimator: Option<Estimator>) -> Result<Self, String> {
        let learner = file.learner;
        let objective_name = learner.objective.name.clone();
        let objective = Objective::from_name(&objective_name)?;
        let param = &learner.learner_model_param;
        let num_features = parse_count("num_feature", &param.num_feature)?;
        let num_class = match &param.num_class {
            Some(text) => parse_count("num_class", text)?,
            None => 0,
        };
        let num_target = match &param.num_target {
            Some(text) => parse_count("num_target", text)?.max(1),
            None => 1,
        };
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

        let base_score = parse_base_score(&param.base_score)?;
        let base_margin: Vec<f32> = match base_score.as_slice() {
            [one] => vec![objective.prob_to_margin(*one); num_groups],
            many if many.len() == num_groups => many
                .iter()
                .map(|&score| objective.prob_to_margin(score))
                .collect(),
            many => {
                return Err(format!(
                    "base_score has {} values for {num_groups} outputs",
                    many.len()
                ));
            }
        };

        let estimator = match estimator {
            Some(estimator) => estimator,
            None => recorded_estimator(&learner.attributes)?,
        };

        let (model, weights) = gradient_booster(learner.gradient_booster)?;
        let last_tree = tree_limit(&model, &learner.attributes, num_groups)?;
        let mut forest = Forest::new(num_features, num_groups);
        for (index, tree) in model.trees.iter().enumerate().take(last_tree) {
            let group = *model
                .tree_info
                .get(index)
                .ok_or_else(|| format!("tree {index} has no entry in tree_info"))?;
            let group = usize::try_from(group)
                .map_err(|_| format!("tree_info of tree {index} is {group}"))?;
            let weight = weights.as_ref().map(|weights| weights.get(index).copied());
            let weight = match weight {
                None => None,
                Some(Some(weight)) => Some(weight),
                Some(None) => return Err(format!("tree {index} has no dart weight")),
            };
            let nodes =
                tree_nodes(tree, weight).map_err(|error| format!("tree {index}: {error}"))?;
            forest
                .add_tree(group, &nodes, (&[], &[]))
                .map_err(|error| format!("tree {index}: {error}"))?;
        }

        Ok(XgbModel {
            forest,
            base_margin,
            objective,
            objective_name,
            estimator,
            num_features,
            num_class,
        })
    }

    /// The number of features a row holds.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Whether MLServer would serve the model as a classifier.
    pub fn estimator(&self) -> Estimator {
        self.estimator
    }

    /// The number of trees evaluated.
    pub fn num_trees(&self) -> usize {
        self.forest.len()
    }

    /// `n_classes_` of `XGBClassifier`: `num_class`, at least 2.
    fn n_classes(&self) -> usize {
        self.num_class.max(2)
    }

    /// The columns of the booster's output: 1 for `multi:softmax` (a label), else the groups.
    pub fn output_columns(&self) -> usize {
        if self.objective == Objective::Softmax {
            1
        } else {
            self.forest.num_groups()
        }
    }

    /// The datatype and the columns of `predict`.
    pub fn predict_signature(&self) -> (Datatype, usize) {
        let columns = self.output_columns();
        match self.estimator {
            Estimator::Regressor => (Datatype::Fp32, columns),
            Estimator::Classifier if columns > 1 && self.n_classes() != 2 => (Datatype::Int64, 1),
            Estimator::Classifier if columns > 1 => (Datatype::Fp64, columns),
            Estimator::Classifier if self.objective == Objective::Softmax => (Datatype::Int32, 1),
            Estimator::Classifier => (Datatype::Int64, 1),
        }
    }

    /// The columns of `predict_proba`, or `None` when the model has none (a regressor).
    pub fn proba_columns(&self) -> Option<usize> {
        match self.estimator {
            Estimator::Regressor => None,
            Estimator::Classifier => Some(match self.output_columns() {
                1 if self.objective != Objective::Softmax => 2,
                _ => self.forest.num_groups(),
            }),
        }
    }

    /// The margins of `rows` rows of features: `rows × groups`.
    pub fn margins(&self, features: &[f32], rows: usize) -> Vec<f32> {
        let groups = self.forest.num_groups();
        let mut margins = Vec::with_capacity(rows * groups);
        for _ in 0..rows {
            margins.extend_from_slice(&self.base_margin);
        }
        self.forest
            .accumulate(XgbRule, &features[..rows * self.num_features], &mut margins);
        margins
    }

    /// The booster's output (`Booster.predict`): the objective's transform of the margins,
    /// `rows × output_columns()`.
    pub fn transform(&self, mut margins: Vec<f32>) -> Vec<f32> {
        let groups = self.forest.num_groups();
        match self.objective {
            Objective::Identity | Objective::LogitRaw => margins,
            Objective::Logistic => {
                margins.iter_mut().for_each(|m| *m = sigmoid(*m));
                margins
            }
            Objective::Hinge => {
                margins
                    .iter_mut()
                    .for_each(|m| *m = if *m > 0.0 { 1.0 } else { 0.0 });
                margins
            }
            Objective::Exp => {
                margins.iter_mut().for_each(|m| *m = m.exp());
                margins
            }
            Objective::Softprob => {
                margins.chunks_exact_mut(groups).for_each(softmax);
                margins
            }
            Objective::Softmax => margins
                .chunks_exact(groups)
                .map(|row| argmax(row) as f32)
                .collect(),
        }
    }

    /// The output `name` for `rows` rows of features, as MLServer's runtime computes it.
    pub fn output(&self, name: &str, features: &[f32], rows: usize) -> Result<Tensor, Error> {
        let margins = self.margins(features, rows);
        let groups = self.forest.num_groups();
        let columns = self.output_columns();
        let rows_u64 = rows as u64;
        match (self.estimator, name) {
            (Estimator::Regressor, "predict") => {
                let output = self.transform(margins);
                Tensor::from_values(name, &[rows_u64, columns as u64], &output)
            }
            (Estimator::Regressor, _) => Err(Error::invalid_input(format!(
                "this model is served as an XGBRegressor (its file records no classifier: \
                 it was saved by XGBRegressor or Booster.save_model; objective {}), which \
                 has no '{name}' — as in MLServer. Save it with XGBClassifier.save_model, or \
                 set parameters.extra.estimator_type to \"classifier\"",
                self.objective_name
            ))),
            (Estimator::Classifier, "predict") => {
                let output = self.transform(margins);
                if columns > 1 && self.n_classes() != 2 {
                    let labels: Vec<i64> = output
                        .chunks_exact(columns)
                        .map(|row| argmax(row) as i64)
                        .collect();
                    Tensor::from_values(name, &[rows_u64, 1], &labels)
                } else if columns > 1 {
                    // Several outputs and two classes: XGBoost's multi-label case.
                    let labels: Vec<f64> = output
                        .iter()
                        .map(|&p| if p > 0.5 { 1.0 } else { 0.0 })
                        .collect();
                    Tensor::from_values(name, &[rows_u64, columns as u64], &labels)
                } else if self.objective == Objective::Softmax {
                    let labels: Vec<i32> = output.iter().map(|&label| label as i32).collect();
                    Tensor::from_values(name, &[rows_u64, 1], &labels)
                } else {
                    let labels: Vec<i64> = output.iter().map(|&p| i64::from(p > 0.5)).collect();
                    Tensor::from_values(name, &[rows_u64, 1], &labels)
                }
            }
            (Estimator::Classifier, _) => {
                if self.objective == Objective::Softmax {
                    // XGBClassifier.predict_proba: scipy's softmax of the margins, in float32.
                    let mut probabilities = margins;
                    probabilities
                        .chunks_exact_mut(groups)
                        .for_each(plain_softmax);
                    return Tensor::from_values(name, &[rows_u64, groups as u64], &probabilities);
                }
                let output = self.transform(margins);
                if columns > 1 {
                    Tensor::from_values(name, &[rows_u64, columns as u64], &output)
                } else {
                    let probabilities: Vec<f32> =
                        output.iter().flat_map(|&p| [1.0 - p, p]).collect();
                    Tensor::from_values(name, &[rows_u64, 2], &probabilities)
                }
            }
        }
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
        "dart" => {
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
            let parallel = match &model.gbtree_model_param.num_parallel_tree {
                Some(text) => parse_count("num_parallel_tree", text)?.max(1),
                None => 1,
            };
            Ok((iterations * parallel * num_groups).min(num_trees))
        }
    }
}

/// The nodes of one tree; a dart weight scales the leaves, as XGBoost's dart prediction does.
fn tree_nodes(tree: &TreeJson, weight: Option<f32>) -> Result<Vec<Node<f32>>, String> {
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

/// XGBoost's `common::Sigmoid`, in `float`.
#[inline]
fn sigmoid(x: f32) -> f32 {
    let denominator = (-x).min(88.7).exp() + 1.0 + 1e-16;
    1.0 / denominator
}

/// XGBoost's `common::Softmax`: `float` exponentials, summed in `double`.
fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for value in row.iter_mut() {
        *value = (*value - max).exp();
        sum += f64::from(*value);
    }
    let sum = sum as f32;
    row.iter_mut().for_each(|value| *value /= sum);
}

/// scipy's `softmax` on a `float32` row: exponentials and their sum in `float32`.
fn plain_softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    row.iter_mut()
        .for_each(|value| *value = (*value - max).exp());
    let sum: f32 = row.iter().sum();
    row.iter_mut().for_each(|value| *value /= sum);
}

/// The index of the first largest value (XGBoost's `FindMaxIndex`, NumPy's `argmax`).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (index, &value) in row.iter().enumerate() {
        if value > row[best] {
            best = index;
        }
    }
    best
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

    #[test]
    fn logistic_base_score_is_a_probability() {
        assert_eq!(Objective::Logistic.prob_to_margin(0.5), 0.0);
        assert!((Objective::Logistic.prob_to_margin(0.3) - (0.3f32 / 0.7).ln()).abs() < 1e-6);
        assert_eq!(Objective::Identity.prob_to_margin(0.3), 0.3);
        assert_eq!(Objective::Exp.prob_to_margin(1.0), 0.0);
    }

    #[test]
    fn unknown_objectives_are_named() {
        let error = Objective::from_name("survival:cox").unwrap_err();
        assert!(error.contains("survival:cox") && error.contains("binary:logistic"));
    }

    #[test]
    fn softmax_and_argmax() {
        let mut row = [1.0f32, 2.0, 3.0];
        softmax(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(argmax(&row), 2);
        assert_eq!(argmax(&[1.0, 1.0]), 0, "the first of equal values");
        assert!(sigmoid(-1000.0) >= 0.0 && sigmoid(1000.0) == 1.0);
    }
}
