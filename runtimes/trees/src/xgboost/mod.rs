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

//!
//! Parts: `format` is the document's layout, `load` builds the model from it, `objective`
//! holds the objectives' arithmetic; evaluation and the outputs are here.

mod format;
mod load;
mod objective;

pub use objective::Objective;

use crate::ensemble::{CategorySets, Forest, SplitRule, flags};
use mlhost_guest::{Datatype, Error, Tensor};
use objective::{argmax, plain_softmax};

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
    /// `learner.feature_names`: empty when the model was trained without names.
    feature_names: Vec<String>,
}

impl XgbModel {
    /// The number of features a row holds.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// The columns' names the file records (none for a model trained on an array).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
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
    pub fn transform(&self, margins: Vec<f32>) -> Vec<f32> {
        self.objective.transform(margins, self.forest.num_groups())
    }

    /// The output `name` for `rows` rows of features, as MLServer's runtime computes it.
    pub fn output(&self, name: &str, features: &[f32], rows: usize) -> Result<Tensor, Error> {
        let margins = self.margins(features, rows);
        match (self.estimator, name) {
            (Estimator::Regressor, "predict") => {
                let output = self.transform(margins);
                let columns = self.output_columns() as u64;
                Tensor::from_values(name, &[rows as u64, columns], &output)
            }
            (Estimator::Regressor, _) => Err(Error::invalid_input(format!(
                "this model is served as an XGBRegressor (its file records no classifier: \
                 it was saved by XGBRegressor or Booster.save_model; objective {}), which \
                 has no '{name}' — as in MLServer. Save it with XGBClassifier.save_model, or \
                 set parameters.extra.estimator_type to \"classifier\"",
                self.objective_name
            ))),
            (Estimator::Classifier, "predict") => self.labels(name, margins, rows),
            (Estimator::Classifier, _) => self.probabilities(name, margins, rows),
        }
    }

    /// `XGBClassifier.predict`: the labels of `rows` rows, from their margins.
    fn labels(&self, name: &str, margins: Vec<f32>, rows: usize) -> Result<Tensor, Error> {
        let columns = self.output_columns();
        let rows_u64 = rows as u64;
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

    /// `XGBClassifier.predict_proba`: the class probabilities of `rows` rows, from their
    /// margins.
    fn probabilities(&self, name: &str, margins: Vec<f32>, rows: usize) -> Result<Tensor, Error> {
        let groups = self.forest.num_groups();
        let columns = self.output_columns();
        let rows_u64 = rows as u64;
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
            let probabilities: Vec<f32> = output.iter().flat_map(|&p| [1.0 - p, p]).collect();
            Tensor::from_values(name, &[rows_u64, 2], &probabilities)
        }
    }
}
