//! XGBoost's objectives: how `base_score` becomes a margin (`ProbToMargin`) and how the
//! margins become the booster's output (`PredTransform`), with the `float` arithmetic XGBoost
//! and scikit-learn use for them (sigmoid, softmax, argmax).

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
    pub(super) fn from_name(name: &str) -> Result<Self, String> {
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
    pub(super) fn prob_to_margin(self, base_score: f32) -> f32 {
        match self {
            Objective::Logistic => -(1.0f32 / base_score - 1.0).ln(),
            Objective::Exp => base_score.ln(),
            _ => base_score,
        }
    }

    /// The booster's output from its margins (`rows × groups`): `rows × groups`, or
    /// `rows × 1` for `multi:softmax` (the label).
    pub(super) fn transform(self, mut margins: Vec<f32>, groups: usize) -> Vec<f32> {
        match self {
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
pub(super) fn plain_softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    row.iter_mut()
        .for_each(|value| *value = (*value - max).exp());
    let sum: f32 = row.iter().sum();
    row.iter_mut().for_each(|value| *value /= sum);
}

/// The index of the first largest value (XGBoost's `FindMaxIndex`, NumPy's `argmax`).
pub(super) fn argmax(row: &[f32]) -> usize {
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
