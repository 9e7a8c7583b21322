//! The `linear` runtime: linear regression and logistic regression from coefficients in JSON.
//!
//! The model folder holds `linear.json` (or `parameters.uri` names the file):
//!
//! ```json
//! {
//!   "kind": "logistic",
//!   "coefficients": [[0.5, -1.2], [0.1, 0.3], [-0.6, 0.9]],
//!   "intercepts": [0.1, 0.0, -0.1],
//!   "classes": [0, 1, 2],
//!   "input_name": "input-0",
//!   "feature_names": ["sepal_length", "sepal_width"]
//! }
//! ```
//!
//! `coefficients` has one row per output (target, or class) and one column per feature, as
//! scikit-learn's `coef_`; `intercepts` is `intercept_`. The one input is a numeric tensor of
//! shape `[rows, features]`. `feature_names` (optional, scikit-learn's `feature_names_in_`) names
//! its columns: the host then also takes the matrix as named columns (MLServer's `pd` requests).
//!
//! Outputs, named as MLServer's scikit-learn runtime names them:
//! - `predict`: for `"kind": "linear"`, FP64 `[rows, targets]` (`X · coefficientsᵀ + intercepts`);
//!   for `"kind": "logistic"`, INT64 `[rows]`: the class with the highest probability.
//! - `predict_proba` (logistic only): FP64 `[rows, classes]`. One coefficient row is a binary
//!   model (sigmoid, two classes); several rows are a multinomial model (softmax).
//!
//! With no outputs requested the runtime answers `predict`.

use mlhost_guest::{
    Datatype, Error, InferenceRequest, InferenceResponse, Model, ModelMetadata, ModelSettings,
    Tensor, TensorMetadata, export_model,
};
use serde::Deserialize;

/// The file read from the model folder when `uri` is a folder.
const DEFAULT_FILE: &str = "linear.json";

/// The contents of `linear.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinearFile {
    kind: Kind,
    coefficients: Vec<Vec<f64>>,
    intercepts: Vec<f64>,
    #[serde(default)]
    classes: Option<Vec<i64>>,
    #[serde(default = "default_input_name")]
    input_name: String,
    #[serde(default)]
    feature_names: Option<Vec<String>>,
}

fn default_input_name() -> String {
    "input-0".to_string()
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Linear,
    Logistic,
}

/// A loaded linear or logistic regression model.
pub struct Linear {
    kind: Kind,
    /// `outputs × features`, row-major.
    coefficients: Vec<f64>,
    intercepts: Vec<f64>,
    features: usize,
    /// Class labels of a logistic model.
    classes: Vec<i64>,
    input_name: String,
    /// The columns' names, when `linear.json` gives them.
    feature_names: Option<Vec<String>>,
}

impl Linear {
    fn from_file(file: LinearFile) -> Result<Self, Error> {
        let outputs = file.coefficients.len();
        let features = file.coefficients.first().map_or(0, Vec::len);
        if outputs == 0 || features == 0 {
            return Err(Error::invalid_model(
                "coefficients must be a non-empty matrix",
            ));
        }
        if file.coefficients.iter().any(|row| row.len() != features) {
            return Err(Error::invalid_model(
                "every row of coefficients must have the same length",
            ));
        }
        if file.intercepts.len() != outputs {
            return Err(Error::invalid_model(format!(
                "{} intercepts for {outputs} rows of coefficients",
                file.intercepts.len()
            )));
        }
        if let Some(names) = &file.feature_names
            && names.len() != features
        {
            return Err(Error::invalid_model(format!(
                "{} feature_names for {features} coefficients per row",
                names.len()
            )));
        }
        let class_count = if outputs == 1 { 2 } else { outputs };
        let classes = match file.classes {
            Some(classes) if file.kind == Kind::Logistic && classes.len() != class_count => {
                return Err(Error::invalid_model(format!(
                    "{} classes for a model of {class_count} classes",
                    classes.len()
                )));
            }
            Some(classes) => classes,
            None => (0..class_count as i64).collect(),
        };
        Ok(Linear {
            kind: file.kind,
            coefficients: file.coefficients.into_iter().flatten().collect(),
            intercepts: file.intercepts,
            features,
            classes,
            input_name: file.input_name,
            feature_names: file.feature_names,
        })
    }

    /// `X · coefficientsᵀ + intercepts`, `rows × outputs`.
    fn decision_function(&self, x: &[f64], rows: usize) -> Vec<f64> {
        let outputs = self.intercepts.len();
        let mut scores = Vec::with_capacity(rows * outputs);
        for row in x.chunks_exact(self.features).take(rows) {
            for (weights, intercept) in self
                .coefficients
                .chunks_exact(self.features)
                .zip(&self.intercepts)
            {
                let dot: f64 = row.iter().zip(weights).map(|(a, b)| a * b).sum();
                scores.push(dot + intercept);
            }
        }
        scores
    }

    /// Class probabilities, `rows × classes`.
    fn probabilities(&self, scores: &[f64], rows: usize) -> Vec<f64> {
        if self.intercepts.len() == 1 {
            scores
                .iter()
                .flat_map(|&score| {
                    let positive = 1.0 / (1.0 + (-score).exp());
                    [1.0 - positive, positive]
                })
                .collect()
        } else {
            let classes = self.intercepts.len();
            let mut probabilities = Vec::with_capacity(rows * classes);
            for row in scores.chunks_exact(classes) {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = row.iter().map(|score| (score - max).exp()).collect();
                let total: f64 = exps.iter().sum();
                probabilities.extend(exps.iter().map(|e| e / total));
            }
            probabilities
        }
    }

    fn labels(&self, probabilities: &[f64]) -> Vec<i64> {
        probabilities
            .chunks_exact(self.classes.len())
            .map(|row| {
                let best = row.iter().enumerate().fold(
                    0,
                    |best, (index, &p)| if p > row[best] { index } else { best },
                );
                self.classes[best]
            })
            .collect()
    }
}

impl Model for Linear {
    fn load(settings: ModelSettings) -> Result<Self, Error> {
        let path = std::path::Path::new(&settings.uri);
        let path = if path.is_dir() {
            path.join(DEFAULT_FILE)
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&path).map_err(|error| {
            Error::invalid_model(format!("cannot read {}: {error}", path.display()))
        })?;
        let file: LinearFile = serde_json::from_str(&text)
            .map_err(|error| Error::invalid_model(format!("{}: {error}", path.display())))?;
        Linear::from_file(file)
    }

    fn metadata(&self) -> ModelMetadata {
        let mut input = TensorMetadata::new(
            &self.input_name,
            Datatype::Fp64,
            &[-1, self.features as i64],
        );
        if let Some(names) = &self.feature_names {
            input = input.with_feature_names(names);
        }
        let metadata = ModelMetadata::new("linear").input(input);
        match self.kind {
            Kind::Linear => metadata.output(TensorMetadata::new(
                "predict",
                Datatype::Fp64,
                &[-1, self.intercepts.len() as i64],
            )),
            Kind::Logistic => metadata
                .output(TensorMetadata::new("predict", Datatype::Int64, &[-1]))
                .output(TensorMetadata::new(
                    "predict_proba",
                    Datatype::Fp64,
                    &[-1, self.classes.len() as i64],
                )),
        }
    }

    fn predict(&self, request: InferenceRequest) -> Result<InferenceResponse, Error> {
        let input = request.only_input()?;
        input.expect_rank(2)?;
        if input.row_len() != self.features {
            return Err(Error::invalid_input(format!(
                "input '{}' has {} features per row, the model takes {}",
                input.name,
                input.row_len(),
                self.features
            )));
        }
        let rows = input.rows();
        let x = input.to_f64_vec()?;
        let scores = self.decision_function(&x, rows);
        let rows_u64 = rows as u64;

        let available: &[&str] = match self.kind {
            Kind::Linear => &["predict"],
            Kind::Logistic => &["predict", "predict_proba"],
        };
        let mut response = InferenceResponse::new();
        for name in request.output_names(&["predict"], available)? {
            let tensor = match (self.kind, name) {
                (Kind::Linear, _) => {
                    Tensor::from_values(name, &[rows_u64, self.intercepts.len() as u64], &scores)?
                }
                (Kind::Logistic, "predict") => {
                    let labels = self.labels(&self.probabilities(&scores, rows));
                    Tensor::from_values(name, &[rows_u64], &labels)?
                }
                (Kind::Logistic, _) => {
                    let probabilities = self.probabilities(&scores, rows);
                    Tensor::from_values(
                        name,
                        &[rows_u64, self.classes.len() as u64],
                        &probabilities,
                    )?
                }
            };
            response = response.output(tensor);
        }
        Ok(response)
    }
}

export_model!(Linear);

#[cfg(test)]
mod tests {
    use super::*;

    fn model(json: &str) -> Result<Linear, Error> {
        Linear::from_file(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn binary_logistic_uses_the_sigmoid_and_both_classes() {
        let model = model(r#"{"kind": "logistic", "coefficients": [[1.0]], "intercepts": [0.0], "classes": [3, 7]}"#).unwrap();
        let scores = model.decision_function(&[0.0, 2.0], 2);
        let probabilities = model.probabilities(&scores, 2);
        let sigmoid_2 = 1.0 / (1.0 + (-2.0f64).exp());
        assert_eq!(probabilities, vec![0.5, 0.5, 1.0 - sigmoid_2, sigmoid_2]);
        assert_eq!(model.labels(&probabilities), vec![3, 7]);
    }

    #[test]
    fn multinomial_probabilities_sum_to_one() {
        let model = model(r#"{"kind": "logistic", "coefficients": [[1, 0], [0, 1], [-1, -1]], "intercepts": [0, 0, 0]}"#).unwrap();
        let probabilities = model.probabilities(&model.decision_function(&[3.0, 1.0], 1), 1);
        assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(model.labels(&probabilities), vec![0]);
    }

    #[test]
    fn inconsistent_files_are_rejected() {
        for json in [
            r#"{"kind": "linear", "coefficients": [], "intercepts": []}"#,
            r#"{"kind": "linear", "coefficients": [[1, 2], [3]], "intercepts": [0, 0]}"#,
            r#"{"kind": "linear", "coefficients": [[1, 2]], "intercepts": [0, 0]}"#,
            r#"{"kind": "logistic", "coefficients": [[1]], "intercepts": [0], "classes": [1, 2, 3]}"#,
            r#"{"kind": "linear", "coefficients": [[1, 2]], "intercepts": [0], "feature_names": ["a"]}"#,
        ] {
            assert!(matches!(model(json), Err(Error::InvalidModel(_))), "{json}");
        }
    }

    #[test]
    fn coefficients_are_read_to_the_nearest_double() {
        // Full-precision values as scikit-learn writes them (shortest round-trip text):
        // serde_json's fast parser is one ULP off on about one in ten of these.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let values: Vec<f64> = (0..1000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64 * 20.0 - 10.0
            })
            .collect();
        let text: Vec<String> = values.iter().map(|value| format!("{value:?}")).collect();
        let json = format!(
            r#"{{"kind": "linear", "coefficients": [[{}]], "intercepts": [0.0]}}"#,
            text.join(", ")
        );
        let file: LinearFile = serde_json::from_str(&json).unwrap();
        let read = &file.coefficients[0];
        let off = values
            .iter()
            .zip(read)
            .filter(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(off.count(), 0);
    }
}
