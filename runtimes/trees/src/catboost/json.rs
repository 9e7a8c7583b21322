//! CatBoost's JSON export (`save_model(path, format="json")`) read into a [`Description`].

use super::description::{self, CatFeature, Description, FloatFeature, STOP, Split, TreeNode};
use serde_json::Value;

/// Whether a JSON document is CatBoost's export rather than XGBoost's.
pub fn is_catboost(document: &Value) -> bool {
    ["oblivious_trees", "features_info", "scale_and_bias"]
        .iter()
        .any(|key| document.get(key).is_some())
}

fn usize_of(value: &Value, key: &str) -> Result<usize, String> {
    value
        .get(key)
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .ok_or_else(|| format!("'{key}' is missing or not a count"))
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Reads the export's document.
pub fn read(document: &Value) -> Result<(Description, usize), String> {
    let mut model = Description::default();
    let features = document
        .get("features_info")
        .ok_or("not a CatBoost model: no 'features_info'")?;
    for feature in array(features, "float_features") {
        model.floats.push(FloatFeature {
            index: usize_of(feature, "feature_index")?,
            column: usize_of(feature, "flat_feature_index")?,
            nan_as_true: feature.get("nan_value_treatment").and_then(Value::as_str)
                == Some("AsTrue"),
            name: feature
                .get("feature_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        });
    }
    for feature in array(features, "categorical_features") {
        model.cats.push(CatFeature {
            index: usize_of(feature, "feature_index")?,
            column: usize_of(feature, "flat_feature_index")?,
            name: feature
                .get("feature_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            one_hot: feature.get("values").is_some(),
        });
    }
    let mut flat: Vec<usize> = model.floats.iter().map(|f| f.column).collect();
    flat.extend(model.cats.iter().map(|c| c.column));
    for (key, what) in [
        ("text_features", "text features"),
        ("embedding_features", "embedding features"),
        ("estimated_features", "estimated features"),
    ] {
        for feature in array(features, key) {
            flat.extend(
                feature
                    .get("flat_feature_index")
                    .and_then(Value::as_u64)
                    .map(|n| n as usize),
            );
        }
        if !array(features, key).is_empty() {
            model.unsupported.push(what.to_string());
        }
    }
    model.columns = description::columns(&flat)?;
    let ctrs = array(features, "ctrs").len();
    let info = document.get("model_info");
    model.read_info(
        info.and_then(|info| info.get("params")),
        info.and_then(|info| info.get("class_params")),
        info.and_then(|info| info.get("binclass_probability_threshold")),
    );
    read_scale_and_bias(document, &mut model)?;
    if model.unsupported.is_empty() && ctrs == 0 {
        read_trees(document, &mut model)?;
        for (number, tree) in array(document, "trees").iter().enumerate() {
            let mut nodes = Vec::new();
            read_node(tree, &mut nodes, &mut model).map_err(|e| format!("tree {number}: {e}"))?;
            model.node_trees.push(nodes);
        }
    }
    Ok((model, ctrs))
}

/// `scale_and_bias`: `[scale, [bias, ...]]` (or `[scale, bias]`).
fn read_scale_and_bias(document: &Value, model: &mut Description) -> Result<(), String> {
    let Some(pair) = document.get("scale_and_bias") else {
        model.scale = 1.0;
        model.bias = vec![0.0];
        return Ok(());
    };
    let bad = || "'scale_and_bias' is not [scale, [bias, ...]]".to_string();
    let pair = pair
        .as_array()
        .filter(|pair| pair.len() == 2)
        .ok_or_else(bad)?;
    model.scale = pair[0].as_f64().ok_or_else(bad)?;
    model.bias = match &pair[1] {
        Value::Array(values) => values
            .iter()
            .map(Value::as_f64)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad)?,
        value => vec![value.as_f64().ok_or_else(bad)?],
    };
    Ok(())
}

/// `oblivious_trees`: each tree's splits and leaf values.
fn read_trees(document: &Value, model: &mut Description) -> Result<(), String> {
    let trees = array(document, "oblivious_trees");
    for (number, tree) in trees.iter().enumerate() {
        let context = |error: String| format!("tree {number}: {error}");
        let splits = array(tree, "splits")
            .iter()
            .map(split)
            .collect::<Result<Vec<_>, _>>()
            .map_err(context)?;
        let leaves = array(tree, "leaf_values");
        let depth = u32::try_from(splits.len()).ok().filter(|&d| d <= 16);
        let depth = depth.ok_or_else(|| context("deeper than 16 levels".to_string()))?;
        let dimension = leaves.len() >> depth;
        if dimension == 0 || dimension << depth != leaves.len() {
            return Err(context(format!(
                "{} leaf values for a tree of depth {depth}",
                leaves.len()
            )));
        }
        if number > 0 && dimension != model.dimension {
            return Err(context("a different number of values per leaf".to_string()));
        }
        model.dimension = dimension;
        for leaf in leaves {
            let value = leaf
                .as_f64()
                .ok_or_else(|| context("a leaf value is not a number".to_string()))?;
            model.leaf_values.push(value);
        }
        model.trees.push(splits);
    }
    if trees.is_empty() && document.get("trees").is_none() {
        model.dimension = model.bias.len().max(1);
    }
    Ok(())
}

/// A node of a non-symmetric tree (`{"split", "left", "right"}` or a leaf `{"value"}`) and its
/// subtree, appended to `nodes` in pre-order; returns its index.
fn read_node(
    value: &Value,
    nodes: &mut Vec<TreeNode>,
    model: &mut Description,
) -> Result<usize, String> {
    let index = nodes.len();
    if let Some(condition) = value.get("split") {
        nodes.push(TreeNode {
            split: Some(split(condition)?),
            left: STOP,
            right: STOP,
            leaf: 0,
        });
        let child = |side| {
            value
                .get(side)
                .ok_or(format!("a split node without '{side}'"))
        };
        let left = read_node(child("left")?, nodes, model)?;
        let right = read_node(child("right")?, nodes, model)?;
        (nodes[index].left, nodes[index].right) = (left, right);
        return Ok(index);
    }
    let leaf = model.leaf_values.len();
    match value.get("value") {
        Some(Value::Array(values)) => {
            for value in values {
                model
                    .leaf_values
                    .push(value.as_f64().ok_or("a leaf value is not a number")?);
            }
        }
        Some(value) => model
            .leaf_values
            .push(value.as_f64().ok_or("a leaf value is not a number")?),
        None => return Err("a node with neither a split nor a value".to_string()),
    }
    let dimension = model.leaf_values.len() - leaf;
    if model.dimension == 0 {
        model.dimension = dimension;
    } else if dimension != model.dimension {
        return Err("leaves with different numbers of values".to_string());
    }
    nodes.push(TreeNode {
        split: None,
        left: STOP,
        right: STOP,
        leaf,
    });
    Ok(index)
}

fn split(split: &Value) -> Result<Split, String> {
    match split.get("split_type").and_then(Value::as_str) {
        Some("FloatFeature") => Ok(Split::Float {
            feature: usize_of(split, "float_feature_index")?,
            border: split
                .get("border")
                .and_then(Value::as_f64)
                .ok_or("a float split without a border")? as f32,
        }),
        Some("OneHotFeature") => Ok(Split::OneHot {
            feature: usize_of(split, "cat_feature_index")?,
            value: split
                .get("value")
                .and_then(Value::as_i64)
                .ok_or("a one-hot split without a value")? as u32,
        }),
        Some(other) => Err(format!("a split of type '{other}', which is not supported")),
        None => Err("a split without a 'split_type'".to_string()),
    }
}
