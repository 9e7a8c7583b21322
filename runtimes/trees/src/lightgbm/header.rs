//! The header of a LightGBM text model: its version, its outputs (`num_class`,
//! `num_tree_per_iteration`), its features (`max_feature_idx`) and its objective.

use super::objective::Objective;
use std::collections::HashMap;

/// What the header says, checked.
pub(super) struct Header {
    /// Outputs per row: `num_tree_per_iteration` (trees per iteration).
    pub num_outputs: usize,
    pub num_features: usize,
    pub objective: Objective,
    /// The `objective=` line, to name the objective in messages.
    pub objective_line: String,
}

impl Header {
    /// Reads the header's `key=value` lines.
    pub fn parse(header: &HashMap<&str, &str>) -> Result<Self, String> {
        if let Some(version) = header.get("version")
            && !matches!(*version, "v2" | "v3" | "v4")
        {
            return Err(format!(
                "LightGBM model version '{version}' is not supported (v2, v3, v4)"
            ));
        }
        let num_class = count(header, "num_class")?;
        let num_outputs = match header.get("num_tree_per_iteration") {
            Some(_) => count(header, "num_tree_per_iteration")?,
            None => num_class,
        };
        if num_outputs == 0 {
            return Err("num_tree_per_iteration is 0".to_string());
        }
        let num_features = num_features(header)?;
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
        Ok(Header {
            num_outputs,
            num_features,
            objective,
            objective_line,
        })
    }
}

/// The count `key`, which the header must have.
fn count(header: &HashMap<&str, &str>, key: &str) -> Result<usize, String> {
    let text = header
        .get(key)
        .ok_or_else(|| format!("the header has no {key}"))?;
    text.parse::<usize>()
        .map_err(|_| format!("{key} is '{text}', expected a count"))
}

/// The number of features: `max_feature_idx + 1`.
fn num_features(header: &HashMap<&str, &str>) -> Result<usize, String> {
    let max_feature_idx = header
        .get("max_feature_idx")
        .ok_or("the header has no max_feature_idx")?;
    max_feature_idx
        .parse::<i64>()
        .ok()
        .and_then(|max| usize::try_from(max + 1).ok())
        .ok_or_else(|| format!("max_feature_idx is '{max_feature_idx}'"))
}
