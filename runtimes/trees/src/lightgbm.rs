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

use crate::ensemble::{CategorySets, Forest, Node, SplitRule, flags};
use mlhost_guest::{Error, Tensor};
use std::collections::HashMap;

/// LightGBM's zero threshold (`kZeroThreshold`, a `float`).
const ZERO_THRESHOLD: f64 = 1.0000000180025095e-35;

/// How the sums become the model's output (LightGBM's `ConvertOutput`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// The sum is the output (regression, ranking, custom objectives).
    Identity,
    /// A regression trained on `sqrt`: `sign(x) · x²`.
    Squared,
    /// `binary`: `1 / (1 + exp(-sigmoid · x))`.
    Binary { sigmoid: f64 },
    /// `cross_entropy`: `1 / (1 + exp(-x))`.
    CrossEntropy,
    /// `cross_entropy_lambda`: `log(1 + exp(x))`.
    CrossEntropyLambda,
    /// `poisson`, `gamma`, `tweedie`: `exp(x)`.
    Exp,
    /// `multiclass`: softmax over the classes.
    Softmax,
    /// `multiclassova`: a sigmoid per class.
    OneVsAll { sigmoid: f64 },
}

impl Objective {
    /// The objective of the header's `objective=` line: a name and `key:value` options.
    fn parse(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or("");
        let mut options = HashMap::new();
        let mut sqrt = false;
        for word in words {
            match word.split_once(':') {
                Some((key, value)) => {
                    options.insert(key, value);
                }
                None if word == "sqrt" => sqrt = true,
                None => {}
            }
        }
        let sigmoid = || -> Result<f64, String> {
            let text = options.get("sigmoid").copied().unwrap_or("1");
            text.parse::<f64>()
                .ok()
                .filter(|value| *value > 0.0)
                .ok_or_else(|| format!("objective '{line}' has sigmoid '{text}'"))
        };
        Ok(match name {
            "" | "custom" | "lambdarank" | "rank_xendcg" => Objective::Identity,
            "regression" | "regression_l1" | "huber" | "fair" | "quantile" | "mape" => {
                if sqrt {
                    Objective::Squared
                } else {
                    Objective::Identity
                }
            }
            "binary" => Objective::Binary {
                sigmoid: sigmoid()?,
            },
            "cross_entropy" | "xentropy" => Objective::CrossEntropy,
            "cross_entropy_lambda" | "xentlambda" => Objective::CrossEntropyLambda,
            "poisson" | "gamma" | "tweedie" => Objective::Exp,
            "multiclass" | "softmax" => Objective::Softmax,
            "multiclassova" | "multiclass_ova" | "ova" | "ovr" => Objective::OneVsAll {
                sigmoid: sigmoid()?,
            },
            other => {
                return Err(format!(
                    "objective '{other}' is not supported (supported: regression, \
                     regression_l1, huber, fair, quantile, mape, binary, cross_entropy, \
                     cross_entropy_lambda, poisson, gamma, tweedie, multiclass, multiclassova, \
                     lambdarank, rank_xendcg)"
                ));
            }
        })
    }

    /// Whether the model is a classifier (it has `predict_proba`).
    fn is_classifier(self) -> bool {
        matches!(
            self,
            Objective::Binary { .. } | Objective::Softmax | Objective::OneVsAll { .. }
        )
    }
}

/// LightGBM's split rule (`Tree::Decision`).
#[derive(Clone, Copy)]
struct LgbRule;

impl SplitRule<f64> for LgbRule {
    #[inline(always)]
    fn go_left(self, x: f64, value: f64, node_flags: u8, categories: &CategorySets) -> bool {
        if node_flags & flags::CATEGORICAL != 0 {
            // `static_cast<int>(x) < 0` on x86: NaN and values past i32 are INT_MIN.
            if !(x > -1.0 && x < 2_147_483_648.0) {
                return false;
            }
            return categories.contains(value as usize, x as u32);
        }
        let mut x = x;
        if x.is_nan() {
            if node_flags & flags::MISSING_NAN != 0 {
                return node_flags & flags::DEFAULT_LEFT != 0;
            }
            x = 0.0;
        }
        if node_flags & flags::MISSING_ZERO != 0 && (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&x)
        {
            return node_flags & flags::DEFAULT_LEFT != 0;
        }
        x <= value
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
}

/// One `Tree=` block: its `key=value` lines.
struct TreeBlock<'a> {
    index: usize,
    fields: HashMap<&'a str, &'a str>,
}

impl<'a> TreeBlock<'a> {
    fn field(&self, key: &str) -> Result<&'a str, String> {
        self.fields
            .get(key)
            .copied()
            .ok_or_else(|| format!("tree {} has no {key}", self.index))
    }

    fn array<T: std::str::FromStr>(&self, key: &str, length: usize) -> Result<Vec<T>, String> {
        let text = if length == 0 {
            self.fields.get(key).copied().unwrap_or("")
        } else {
            self.field(key)?
        };
        let values = text
            .split_whitespace()
            .map(|word| {
                word.parse::<T>()
                    .map_err(|_| format!("tree {}: {key} holds '{word}'", self.index))
            })
            .collect::<Result<Vec<T>, String>>()?;
        if values.len() != length {
            return Err(format!(
                "tree {}: {key} has {} values, expected {length}",
                self.index,
                values.len()
            ));
        }
        Ok(values)
    }
}

impl LgbModel {
    /// Reads a model from LightGBM's text format.
    pub fn from_text(text: &str) -> Result<Self, String> {
        let text = text.split("end of trees").next().unwrap_or("");
        let mut lines = text.lines().map(str::trim).peekable();
        if lines.next() != Some("tree") {
            return Err("not a LightGBM text model: the first line is not 'tree'".to_string());
        }

        let mut header: HashMap<&str, &str> = HashMap::new();
        let mut flags_seen: Vec<&str> = Vec::new();
        let mut trees: Vec<TreeBlock> = Vec::new();
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let (key, value) = match line.split_once('=') {
                Some(pair) => pair,
                None => {
                    flags_seen.push(line);
                    continue;
                }
            };
            if key == "Tree" {
                let index = value
                    .parse::<usize>()
                    .map_err(|_| format!("'{line}' does not number a tree"))?;
                if index != trees.len() {
                    return Err(format!("tree {index} comes at position {}", trees.len()));
                }
                trees.push(TreeBlock {
                    index,
                    fields: HashMap::new(),
                });
            } else if let Some(tree) = trees.last_mut() {
                tree.fields.insert(key, value);
            } else {
                header.insert(key, value);
            }
        }

        if let Some(version) = header.get("version")
            && !matches!(*version, "v2" | "v3" | "v4")
        {
            return Err(format!(
                "LightGBM model version '{version}' is not supported (v2, v3, v4)"
            ));
        }
        let count = |key: &str| -> Result<usize, String> {
            let text = header
                .get(key)
                .ok_or_else(|| format!("the header has no {key}"))?;
            text.parse::<usize>()
                .map_err(|_| format!("{key} is '{text}', expected a count"))
        };
        let num_class = count("num_class")?;
        let num_outputs = match header.get("num_tree_per_iteration") {
            Some(_) => count("num_tree_per_iteration")?,
            None => num_class,
        };
        if num_outputs == 0 {
            return Err("num_tree_per_iteration is 0".to_string());
        }
        let max_feature_idx = header
            .get("max_feature_idx")
            .ok_or("the header has no max_feature_idx")?;
        let num_features = max_feature_idx
            .parse::<i64>()
            .ok()
            .and_then(|max| usize::try_from(max + 1).ok())
            .ok_or_else(|| format!("max_feature_idx is '{max_feature_idx}'"))?;
        let objective_line = header.get("objective").copied().unwrap_or("").to_string();
        let objective = Objective::parse(&objective_line)?;
        if matches!(objective, Objective::Softmax | Objective::OneVsAll { .. })
            && num_outputs != num_class
        {
            return Err(format!(
                "objective '{objective_line}' with num_class {num_class} but \
                 num_tree_per_iteration {num_outputs}"
            ));
        }
        if !trees.len().is_multiple_of(num_outputs) {
            return Err(format!(
                "{} trees is not a whole number of iterations of {num_outputs} trees \
                 (is the file truncated?)",
                trees.len()
            ));
        }

        let mut forest = Forest::new(num_features, num_outputs);
        for tree in &trees {
            let (nodes, bounds, words) = tree_nodes(tree)?;
            forest
                .add_tree(tree.index % num_outputs, &nodes, (&bounds, &words))
                .map_err(|error| format!("tree {}: {error}", tree.index))?;
        }
        Ok(LgbModel {
            forest,
            objective,
            objective_line,
            num_features,
            num_outputs,
            iterations: trees.len() / num_outputs,
            average_output: flags_seen.contains(&"average_output"),
        })
    }

    /// The number of features a row holds.
    pub fn num_features(&self) -> usize {
        self.num_features
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
        match self.objective {
            Objective::Identity => {}
            Objective::Squared => sums.iter_mut().for_each(|x| *x = x.signum() * *x * *x),
            Objective::Binary { sigmoid } | Objective::OneVsAll { sigmoid } => sums
                .iter_mut()
                .for_each(|x| *x = 1.0 / (1.0 + (-sigmoid * *x).exp())),
            Objective::CrossEntropy => sums.iter_mut().for_each(|x| *x = 1.0 / (1.0 + (-*x).exp())),
            Objective::CrossEntropyLambda => sums.iter_mut().for_each(|x| *x = x.exp().ln_1p()),
            Objective::Exp => sums.iter_mut().for_each(|x| *x = x.exp()),
            Objective::Softmax => sums.chunks_exact_mut(outputs).for_each(softmax),
        }
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

/// The nodes of a tree: its internal nodes, then its leaves (LightGBM's child `~k` is leaf
/// `k`); and its category sets.
type TreeParts = (Vec<Node<f64>>, Vec<u32>, Vec<u32>);

fn tree_nodes(tree: &TreeBlock) -> Result<TreeParts, String> {
    let index = tree.index;
    let num_leaves = tree
        .field("num_leaves")?
        .parse::<usize>()
        .ok()
        .filter(|&leaves| leaves >= 1)
        .ok_or_else(|| format!("tree {index}: num_leaves is not a positive count"))?;
    if tree
        .fields
        .get("is_linear")
        .is_some_and(|value| *value != "0")
    {
        return Err(format!(
            "tree {index} is a linear tree (linear_tree=true): not supported; retrain \
             without linear_tree"
        ));
    }
    let leaf_values: Vec<f64> = tree.array("leaf_value", num_leaves)?;
    if num_leaves == 1 {
        return Ok((vec![Node::leaf(leaf_values[0])], Vec::new(), Vec::new()));
    }
    let internal = num_leaves - 1;
    let features: Vec<u32> = tree.array("split_feature", internal)?;
    let thresholds: Vec<f64> = tree.array("threshold", internal)?;
    let decision_types: Vec<i16> = tree.array("decision_type", internal)?;
    let left: Vec<i64> = tree.array("left_child", internal)?;
    let right: Vec<i64> = tree.array("right_child", internal)?;
    let num_cat = match tree.fields.get("num_cat") {
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| format!("tree {index}: num_cat is '{text}'"))?,
        None => 0,
    };
    let (bounds, words) = if num_cat > 0 {
        let bounds: Vec<u32> = tree.array("cat_boundaries", num_cat + 1)?;
        let words_len = *bounds.last().unwrap_or(&0) as usize;
        let words: Vec<u32> = tree.array("cat_threshold", words_len)?;
        (bounds, words)
    } else {
        (Vec::new(), Vec::new())
    };

    let child = |child: i64| -> Result<u32, String> {
        let node = if child >= 0 {
            child
        } else {
            // ~leaf: leaves follow the internal nodes.
            internal as i64 + !child
        };
        u32::try_from(node)
            .ok()
            .filter(|&node| (node as usize) < internal + num_leaves)
            .ok_or_else(|| format!("tree {index}: child {child} is out of range"))
    };
    let mut nodes = Vec::with_capacity(internal + num_leaves);
    for node in 0..internal {
        let decision = decision_types[node];
        let missing = (decision >> 2) & 3;
        let mut node_flags = 0u8;
        if decision & 1 != 0 {
            node_flags |= flags::CATEGORICAL;
        }
        if decision & 2 != 0 {
            node_flags |= flags::DEFAULT_LEFT;
        }
        match missing {
            0 => {}
            1 => node_flags |= flags::MISSING_ZERO,
            2 => node_flags |= flags::MISSING_NAN,
            _ => {
                return Err(format!(
                    "tree {index}: node {node} has decision_type {decision} (unknown missing \
                     type)"
                ));
            }
        }
        let value = thresholds[node];
        if node_flags & flags::CATEGORICAL != 0 && !(value >= 0.0 && value < num_cat as f64) {
            return Err(format!(
                "tree {index}: categorical node {node} refers to category set {value}, the \
                 tree has {num_cat}"
            ));
        }
        nodes.push(Node {
            feature: features[node],
            value,
            left: child(left[node])?,
            right: child(right[node])?,
            flags: node_flags,
        });
    }
    nodes.extend(leaf_values.into_iter().map(Node::leaf));
    Ok((nodes, bounds, words))
}

/// LightGBM's `Common::Softmax`, in `double`.
fn softmax(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for value in row.iter_mut() {
        *value = (*value - max).exp();
        sum += *value;
    }
    row.iter_mut().for_each(|value| *value /= sum);
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
    fn objectives_are_parsed_with_their_options() {
        assert_eq!(
            Objective::parse("binary sigmoid:2").unwrap(),
            Objective::Binary { sigmoid: 2.0 }
        );
        assert_eq!(
            Objective::parse("regression sqrt").unwrap(),
            Objective::Squared
        );
        assert_eq!(
            Objective::parse("multiclass num_class:3").unwrap(),
            Objective::Softmax
        );
        let error = Objective::parse("my_objective").unwrap_err();
        assert!(error.contains("my_objective"));
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
