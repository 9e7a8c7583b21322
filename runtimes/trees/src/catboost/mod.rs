//! CatBoost models — its JSON export (`save_model(path, format="json")`) and its native format
//! (`.cbm`, MLServer's `model.cbm` / `model.bin`) — evaluated as CatBoost evaluates them and
//! answered as MLServer's `mlserver_catboost` runtime answers.
//!
//! Supported: oblivious (symmetric) trees, CatBoost's default, and non-symmetric ones
//! (`grow_policy` `Depthwise`, `Lossguide`); float features with every
//! `nan_mode`; categorical features one-hot encoded (`one_hot_max_size`), whose values in a
//! request are integers; `scale_and_bias`; classifiers (`Logloss`, `CrossEntropy`, `MultiClass`,
//! `MultiClassOneVsAll`) and regressors (`RMSE` and the other regression losses; `Poisson` and
//! `Tweedie` through `exp`, as `CatBoostRegressor.predict`; `MultiRMSE`). Refused, with the
//! reason: CTR features (categorical features with more values than `one_hot_max_size`: their
//! statistics tables are not read), text, embedding and estimated features,
//! `RMSEWithUncertainty`.
//!
//! MLServer's runtime loads every file as a `CatBoostClassifier` and answers `predict` only:
//!
//! | model | `predict` | `predict_proba` (mlhost only) |
//! |---|---|---|
//! | binary classifier | labels `[N, 1]`: INT64 (integer labels), BYTES (strings), FP64 (floats); class 1 above `binclass_probability_threshold` (0.5) | FP64 `[N, 2]` |
//! | multiclass classifier | labels `[N, 1]`, as above | FP64 `[N, classes]` (softmax; one sigmoid per class for `MultiClassOneVsAll`) |
//! | regressor | FP64 `[N, targets]`: `CatBoostRegressor.predict` (MLServer's runtime fails on regressors) | refused |

mod cbm;
mod cityhash;
mod description;
mod json;
mod oblivious;

pub use json::is_catboost;

use description::{Classes, Description};
use mlhost_guest::{Datatype, Error, Tensor};
use oblivious::Oblivious;

/// What a model's loss makes of its raw values.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Loss {
    /// `Logloss`, `CrossEntropy`: one raw value, the log-odds of class 1.
    Binary,
    /// `MultiClass`: softmax.
    MultiClass,
    /// `MultiClassOneVsAll`: a sigmoid per class.
    OneVsAll,
    /// `Poisson`, `Tweedie`: `exp` of the raw value.
    Exponent,
    /// Every other loss: the raw value.
    Raw,
}

/// A loaded CatBoost model.
#[derive(Debug)]
pub struct CbModel {
    trees: Oblivious,
    loss: Loss,
    loss_name: String,
    classes: Option<Classes>,
    /// A binary classifier's label is 1 where the raw value is above this (the logit of
    /// `binclass_probability_threshold`, 0 by default).
    margin_threshold: f64,
    feature_names: Vec<String>,
}

impl CbModel {
    /// Reads a model from a `.cbm` file's bytes (they start with `CBM1`).
    pub fn from_cbm(bytes: &[u8]) -> Result<Self, String> {
        let (model, ctrs) = cbm::read(bytes)?;
        Self::build(model, ctrs)
    }

    /// Reads a model from its JSON export, parsed.
    pub fn from_json(document: &serde_json::Value) -> Result<Self, String> {
        let (model, ctrs) = json::read(document)?;
        Self::build(model, ctrs)
    }

    fn build(model: Description, ctrs: usize) -> Result<Self, String> {
        model.check_supported(ctrs)?;
        let loss = match model.loss.as_str() {
            "Logloss" | "CrossEntropy" => Loss::Binary,
            "MultiClass" => Loss::MultiClass,
            "MultiClassOneVsAll" => Loss::OneVsAll,
            "Poisson" | "Tweedie" => Loss::Exponent,
            "RMSEWithUncertainty" => {
                return Err("loss RMSEWithUncertainty is not supported".to_string());
            }
            "" => return Err("the model records no loss function (params.loss_function)".into()),
            _ => Loss::Raw,
        };
        let trees = Oblivious::compile(&model)?;
        let feature_names = model.feature_names();
        let dimension = trees.dimension();
        let classes = match loss {
            Loss::Binary | Loss::MultiClass | Loss::OneVsAll => {
                let count = if loss == Loss::Binary { 2 } else { dimension };
                if loss == Loss::Binary && dimension != 1 {
                    return Err(format!(
                        "a {} model with {dimension} values per leaf",
                        model.loss
                    ));
                }
                match model.classes {
                    Some(classes) if classes.len() == count => Some(classes),
                    Some(classes) => {
                        return Err(format!(
                            "the model names {} classes and has {count} outputs",
                            classes.len()
                        ));
                    }
                    None => Some(Classes::Integer((0..count as i64).collect())),
                }
            }
            _ => None,
        };
        Ok(CbModel {
            trees,
            loss,
            loss_name: model.loss,
            classes,
            margin_threshold: match model.threshold {
                Some(p) if p > 0.0 && p < 1.0 => (p / (1.0 - p)).ln(),
                Some(p) => {
                    return Err(format!(
                        "binclass_probability_threshold {p} is not in (0, 1)"
                    ));
                }
                None => 0.0,
            },
            feature_names,
        })
    }

    /// The number of columns a row holds.
    pub fn num_features(&self) -> usize {
        self.trees.columns()
    }

    /// The columns' names the model records (`feature_id`s), if any.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The datatype and columns of `predict`.
    pub fn predict_signature(&self) -> (Datatype, usize) {
        match &self.classes {
            Some(Classes::Integer(_)) => (Datatype::Int64, 1),
            Some(Classes::Float(_)) => (Datatype::Fp64, 1),
            Some(Classes::String(_)) => (Datatype::Bytes, 1),
            None => (Datatype::Fp64, self.trees.dimension()),
        }
    }

    /// The columns of `predict_proba`, for a classifier.
    pub fn proba_columns(&self) -> Option<usize> {
        self.classes.as_ref().map(Classes::len)
    }

    /// The output `name` for the request's `input` (`rows` rows).
    pub fn output(&self, name: &str, input: &Tensor, rows: usize) -> Result<Tensor, Error> {
        let floats = crate::features::to_f32(input)?;
        let categories = if self.trees.reads_categories() {
            input.to_f64_vec()?
        } else {
            Vec::new()
        };
        let raw = self.trees.raw(&floats, &categories, rows)?;
        let rows_u64 = rows as u64;
        match (&self.classes, name) {
            (None, "predict") => {
                let values = if self.loss == Loss::Exponent {
                    raw.into_iter().map(f64::exp).collect()
                } else {
                    raw
                };
                Tensor::from_values(name, &[rows_u64, self.trees.dimension() as u64], &values)
            }
            (None, _) => Err(Error::invalid_input(format!(
                "this CatBoost model is a regressor (loss {}), which has no '{name}'",
                self.loss_name
            ))),
            (Some(classes), "predict") => self.labels(name, classes, &raw, rows),
            (Some(classes), _) => {
                let probabilities = self.probabilities(raw);
                Tensor::from_values(name, &[rows_u64, classes.len() as u64], &probabilities)
            }
        }
    }

    /// `predict_proba`: each row's class probabilities.
    fn probabilities(&self, raw: Vec<f64>) -> Vec<f64> {
        match self.loss {
            Loss::Binary => raw
                .into_iter()
                .flat_map(|margin| {
                    let p = sigmoid(margin);
                    [1.0 - p, p]
                })
                .collect(),
            Loss::OneVsAll => raw.into_iter().map(sigmoid).collect(),
            _ => {
                let mut values = raw;
                values
                    .chunks_exact_mut(self.trees.dimension())
                    .for_each(softmax);
                values
            }
        }
    }

    /// `CatBoostClassifier.predict`: each row's label.
    fn labels(
        &self,
        name: &str,
        classes: &Classes,
        raw: &[f64],
        rows: usize,
    ) -> Result<Tensor, Error> {
        let shape = [rows as u64, 1];
        let winners: Vec<usize> = if self.loss == Loss::Binary {
            raw.iter()
                .map(|&margin| usize::from(margin > self.margin_threshold))
                .collect()
        } else {
            raw.chunks_exact(self.trees.dimension())
                .map(argmax)
                .collect()
        };
        match classes {
            Classes::Integer(names) => {
                let labels: Vec<i64> = winners.iter().map(|&i| names[i]).collect();
                Tensor::from_values(name, &shape, &labels)
            }
            Classes::Float(names) => {
                let labels: Vec<f64> = winners.iter().map(|&i| names[i]).collect();
                Tensor::from_values(name, &shape, &labels)
            }
            Classes::String(names) => {
                let labels: Vec<&[u8]> = winners.iter().map(|&i| names[i].as_bytes()).collect();
                Tensor::from_bytes_elements(name, &shape, &labels)
            }
        }
    }
}

fn sigmoid(margin: f64) -> f64 {
    1.0 / (1.0 + (-margin).exp())
}

fn softmax(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for value in row.iter_mut() {
        *value = (*value - max).exp();
        total += *value;
    }
    row.iter_mut().for_each(|value| *value /= total);
}

/// The first index of the largest value.
fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (index, &value) in row.iter().enumerate() {
        if value > row[best] {
            best = index;
        }
    }
    best
}
