//! LightGBM models in LightGBM's text format (`Booster.save_model`, `model.txt`), evaluated
//! as LightGBM evaluates them, and answered as MLServer's LightGBM runtime answers.
//!
//! Evaluation follows LightGBM's `Tree::GetLeaf` in `double`: a numerical split sends `x` left
//! when `x <= threshold`; its `decision_type` says where missing values go (missing type None:
//! NaN reads as 0; Zero: 0 and NaN take the default child; NaN: NaN takes the default child).
//! A categorical split sends `x` left when `(int) x` is in its category set; NaN, negative and
//! out-of-range values go right (as `static_cast<int>` does on x86). Tree `i` adds to output
//! `i % num_tree_per_iteration`; random-forest models (`average_output`) divide by the number
//! of iterations; the objective transforms the sums (sigmoid, softmax, exp, ...).
//!
//! MLServer's runtime answers `lgb.Booster.predict(X)` as one output, `predict`: FP64
//! `[N, 1]` (the probability of class 1 for `binary`, the value for a regression), or FP64
//! `[N, K]` for `multiclass` / `multiclassova`. mlhost adds `predict_proba` for the
//! classification objectives (not in MLServer): FP64 `[N, 2]` (`[1 - p, p]`) for `binary`,
//! `[N, K]` for the multi-class ones.
//!
//! Parts: `text` cuts the file into its header and tree blocks, `header` reads the header,
//! `tree` each tree's nodes, `split` how a node decides (categorical splits included), and
//! `objective` how the sums become the output; the model and its outputs are here.

mod header;
mod objective;
mod split;
mod text;
mod tree;

pub use objective::Objective;

use crate::ensemble::Forest;
use header::Header;
use mlhost_guest::{Error, Tensor};
use split::LgbRule;
use std::collections::HashMap;
use text::Sections;

/// The `feature_names` line of the header: none when it holds the names LightGBM makes up for
/// an array's columns (`Column_0`, `Column_1`, ...), or does not name every feature.
fn feature_names(header: &HashMap<&str, &str>, num_features: usize) -> Vec<String> {
    let Some(line) = header.get("feature_names") else {
        return Vec::new();
    };
    let names: Vec<String> = line.split(' ').map(str::to_string).collect();
    let made_up = names
        .iter()
        .enumerate()
        .all(|(index, name)| *name == format!("Column_{index}"));
    if made_up || names.len() != num_features {
        Vec::new()
    } else {
        names
    }
}

/// A loaded LightGBM model.
#[derive(Debug)]
pub struct LgbModel {
    forest: Forest<f64>,
    objective: Objective,
    objective_line: String,
    num_features: usize,
    /// Outputs per row: `num_tree_per_iteration`.
    num_outputs: usize,
    /// Iterations evaluated, for `average_output`.
    iterations: usize,
    average_output: bool,
    /// The columns' names, when the model was trained on named columns.
    feature_names: Vec<String>,
}

impl LgbModel {
    /// Reads a model from LightGBM's text format.
    pub fn from_text(text: &str) -> Result<Self, String> {
        let sections = Sections::parse(text)?;
        let header = Header::parse(&sections.header)?;
        let trees = &sections.trees;
        let num_outputs = header.num_outputs;
        if !trees.len().is_multiple_of(num_outputs) {
            return Err(format!(
                "{} trees is not a whole number of iterations of {num_outputs} trees \
                 (is the file truncated?)",
                trees.len()
            ));
        }
        let mut forest = Forest::new(header.num_features, num_outputs);
        for tree in trees {
            let (nodes, bounds, words) = tree::tree_nodes(tree)?;
            forest
                .add_tree(tree.index % num_outputs, &nodes, (&bounds, &words))
                .map_err(|error| format!("tree {}: {error}", tree.index))?;
        }
        Ok(LgbModel {
            forest,
            objective: header.objective,
            objective_line: header.objective_line,
            num_features: header.num_features,
            num_outputs,
            iterations: trees.len() / num_outputs,
            average_output: sections.flags.contains(&"average_output"),
            feature_names: feature_names(&sections.header, header.num_features),
        })
    }

    /// The number of features a row holds.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// The columns' names the file records (none for a model trained on an array).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The number of trees.
    pub fn num_trees(&self) -> usize {
        self.forest.len()
    }

    /// The columns of `predict`.
    pub fn output_columns(&self) -> usize {
        self.num_outputs
    }

    /// The columns of `predict_proba`, or `None` when the model is not a classifier.
    pub fn proba_columns(&self) -> Option<usize> {
        match self.objective {
            Objective::Binary { .. } => Some(2),
            objective if objective.is_classifier() => Some(self.num_outputs),
            _ => None,
        }
    }

    /// `Booster.predict` of `rows` rows of features: `rows × output_columns()`.
    pub fn predict(&self, features: &[f64], rows: usize) -> Vec<f64> {
        let outputs = self.num_outputs;
        let mut sums = vec![0.0f64; rows * outputs];
        self.forest
            .accumulate(LgbRule, &features[..rows * self.num_features], &mut sums);
        if self.average_output && self.iterations > 0 {
            let iterations = self.iterations as f64;
            sums.iter_mut().for_each(|sum| *sum /= iterations);
        }
        self.objective.convert(&mut sums, outputs);
        sums
    }

    /// The output `name` for `rows` rows of features.
    pub fn output(&self, name: &str, features: &[f64], rows: usize) -> Result<Tensor, Error> {
        let rows_u64 = rows as u64;
        if name == "predict" {
            let output = self.predict(features, rows);
            return Tensor::from_values(name, &[rows_u64, self.num_outputs as u64], &output);
        }
        match self.proba_columns() {
            Some(2) if self.num_outputs == 1 => {
                let output = self.predict(features, rows);
                let probabilities: Vec<f64> = output.iter().flat_map(|&p| [1.0 - p, p]).collect();
                Tensor::from_values(name, &[rows_u64, 2], &probabilities)
            }
            Some(columns) => {
                let output = self.predict(features, rows);
                Tensor::from_values(name, &[rows_u64, columns as u64], &output)
            }
            None => Err(Error::invalid_input(format!(
                "this LightGBM model (objective '{}') is not a classifier: it has no \
                 '{name}', only 'predict'",
                self.objective_line
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUMP: &str = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
        max_feature_idx=1\nobjective=regression\n\nTree=0\nnum_leaves=2\nnum_cat=0\n\
        split_feature=1\nthreshold=0.5\ndecision_type=10\nleft_child=-1\nright_child=-2\n\
        leaf_value=1 2\nis_linear=0\nshrinkage=1\n\n\nend of trees\n";

    #[test]
    fn a_stump_compares_with_less_or_equal() {
        let model = LgbModel::from_text(STUMP).unwrap();
        let rows = [0.0, 0.5, 0.0, 0.6, 0.0, f64::NAN];
        assert_eq!(model.predict(&rows, 3), vec![1.0, 2.0, 1.0]);
    }

    #[test]
    fn broken_files_say_what_is_wrong() {
        for (text, expected) in [
            ("{}", "first line"),
            (
                &STUMP.replace("leaf_value=1 2", "leaf_value=1"),
                "leaf_value",
            ),
            (&STUMP.replace("is_linear=0", "is_linear=1"), "linear"),
            (
                &STUMP.replace("right_child=-2", "right_child=-7"),
                "out of range",
            ),
            (
                &STUMP.replace("split_feature=1", "split_feature=2"),
                "feature 2",
            ),
            (
                &STUMP.replace("decision_type=10", "decision_type=14"),
                "missing",
            ),
            (
                &STUMP.replace("objective=regression", "objective=foo"),
                "foo",
            ),
            (&STUMP.replace("max_feature_idx=1\n", ""), "max_feature_idx"),
            (&STUMP.replace("Tree=0", "Tree=3"), "tree 3"),
        ] {
            let error = LgbModel::from_text(text).unwrap_err();
            assert!(error.contains(expected), "{error} (expected {expected})");
        }
    }
}
