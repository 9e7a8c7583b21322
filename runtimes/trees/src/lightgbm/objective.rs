//! LightGBM's objectives, as the header's `objective=` line names them, and how each turns a
//! row's sums into the model's output (LightGBM's `ConvertOutput`).

use std::collections::HashMap;

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
    pub(super) fn parse(line: &str) -> Result<Self, String> {
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
    pub(super) fn is_classifier(self) -> bool {
        matches!(
            self,
            Objective::Binary { .. } | Objective::Softmax | Objective::OneVsAll { .. }
        )
    }

    /// Turns the sums of rows of `outputs` values into the model's output, in place.
    pub(super) fn convert(self, sums: &mut [f64], outputs: usize) {
        match self {
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
    }
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
}
