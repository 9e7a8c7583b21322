//! A CatBoost model as both of its file formats describe it: features, trees, leaf values,
//! scale and bias, loss and classes. `json` and `cbm` read their format into it; the model is
//! compiled from it.

use serde_json::Value;

/// A float feature: the column it reads and where a missing value goes.
#[derive(Debug, Clone)]
pub struct FloatFeature {
    /// The index among float features (what splits name).
    pub index: usize,
    /// The column of the request's row.
    pub column: usize,
    /// `nan_value_treatment` `AsTrue` (`nan_mode` `Max`): NaN is above every border.
    pub nan_as_true: bool,
    /// Its name (`feature_id`), empty if the model has none.
    pub name: String,
}

/// A categorical feature.
#[derive(Debug, Clone)]
pub struct CatFeature {
    /// The index among categorical features (what splits name).
    pub index: usize,
    /// The column of the request's row.
    pub column: usize,
    /// Its name, if the model has one.
    pub name: String,
    /// Whether one-hot splits encode it (else CTRs do, or nothing).
    pub one_hot: bool,
}

/// One level's condition of an oblivious tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Split {
    /// Float feature `feature` (index among float features) is above `border`.
    Float { feature: usize, border: f32 },
    /// Categorical feature `feature` (index among categorical features) has the value whose
    /// hash is `value`.
    OneHot { feature: usize, value: u32 },
}

/// Where a non-symmetric tree's walk stops: at the node itself, whose leaf is the answer.
pub const STOP: usize = usize::MAX;

/// A node of a non-symmetric tree (`grow_policy` `Depthwise` or `Lossguide`).
#[derive(Debug, Clone, Copy)]
pub struct TreeNode {
    /// The condition: true goes right. `None` for a leaf.
    pub split: Option<Split>,
    /// The child a false condition goes to (an index in the tree), or [`STOP`].
    pub left: usize,
    /// The child a true condition goes to, or [`STOP`].
    pub right: usize,
    /// Where the node's leaf values start in `leaf_values`, when a walk stops here.
    pub leaf: usize,
}

/// The class labels, as `class_params` records them.
#[derive(Debug, Clone, PartialEq)]
pub enum Classes {
    /// Integer labels (`class_label_type` `Integer`).
    Integer(Vec<i64>),
    /// Float labels.
    Float(Vec<f64>),
    /// String labels.
    String(Vec<String>),
}

impl Classes {
    /// The number of classes.
    pub fn len(&self) -> usize {
        match self {
            Classes::Integer(names) => names.len(),
            Classes::Float(names) => names.len(),
            Classes::String(names) => names.len(),
        }
    }
}

/// Everything the model files say that evaluation needs.
#[derive(Debug, Default)]
pub struct Description {
    /// The columns of a row: every feature's flat index, plus one.
    pub columns: usize,
    /// The float features.
    pub floats: Vec<FloatFeature>,
    /// The categorical features.
    pub cats: Vec<CatFeature>,
    /// What the model uses that mlhost does not evaluate (text and embedding features), said
    /// for the error.
    pub unsupported: Vec<String>,
    /// Each tree's splits, level 0 first (level `l` is bit `l` of the leaf index).
    pub trees: Vec<Vec<Split>>,
    /// The non-symmetric trees (a model has these or oblivious ones), each node's children
    /// after it.
    pub node_trees: Vec<Vec<TreeNode>>,
    /// Leaf values, tree after tree: leaf `i` of an oblivious tree holds `dimension` values at
    /// `i * dimension`; a non-symmetric tree's nodes say where theirs start.
    pub leaf_values: Vec<f64>,
    /// The number of values a leaf holds (classes of a multiclass model, targets).
    pub dimension: usize,
    /// `scale_and_bias`: the raw value is `scale * sum + bias[k]`.
    pub scale: f64,
    /// One bias per dimension (or one for all).
    pub bias: Vec<f64>,
    /// The loss function's name (`params.loss_function.type`).
    pub loss: String,
    /// The class labels of a classifier.
    pub classes: Option<Classes>,
    /// `binclass_probability_threshold` (`set_probability_threshold`): a binary classifier's
    /// label is 1 above it (default 0.5).
    pub threshold: Option<f64>,
}

impl Description {
    /// The loss function and classes from the model's `params` and `class_params` (as JSON
    /// values: objects in the JSON export, JSON text in a `.cbm` file's info map).
    pub fn read_info(
        &mut self,
        params: Option<&Value>,
        class_params: Option<&Value>,
        threshold: Option<&Value>,
    ) {
        self.threshold = threshold.and_then(|value| match value {
            Value::String(text) => text.trim().parse().ok(),
            other => other.as_f64(),
        });
        self.loss = params
            .and_then(|params| params.pointer("/loss_function/type"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.classes = class_params.and_then(classes);
    }

    /// Refuses what mlhost does not evaluate, naming it; and notes the categorical features
    /// that no one-hot split encodes but the model uses (through CTRs).
    pub fn check_supported(&self, ctr_count: usize) -> Result<(), String> {
        if self.floats.iter().any(|f| f.index >= self.floats.len())
            || self.cats.iter().any(|c| c.index >= self.cats.len())
        {
            return Err("a feature's index is past the model's features".to_string());
        }
        let mut unsupported = self.unsupported.clone();
        if ctr_count > 0 {
            let names: Vec<String> = self
                .cats
                .iter()
                .filter(|cat| !cat.one_hot)
                .map(|cat| {
                    if cat.name.is_empty() {
                        format!("column {}", cat.column)
                    } else {
                        format!("'{}' (column {})", cat.name, cat.column)
                    }
                })
                .collect();
            unsupported.push(format!(
                "{ctr_count} CTR feature(s) (target statistics of the categorical feature(s) {}, \
                 computed from tables mlhost does not evaluate); retrain with one_hot_max_size \
                 at least each categorical feature's number of values, so that every one is \
                 one-hot encoded",
                names.join(", ")
            ));
        }
        if unsupported.is_empty() {
            return Ok(());
        }
        Err(format!(
            "this CatBoost model uses what the trees runtime does not support: {}",
            unsupported.join("; ")
        ))
    }
}

/// `class_params.class_names` with the type `class_label_type` says.
fn classes(class_params: &Value) -> Option<Classes> {
    let names = class_params.get("class_names")?.as_array()?;
    if names.is_empty() {
        return None;
    }
    match class_params.get("class_label_type").and_then(Value::as_str) {
        Some("String") => names
            .iter()
            .map(|name| match name {
                Value::String(text) => Some(text.clone()),
                other => Some(other.to_string()),
            })
            .collect::<Option<Vec<_>>>()
            .map(Classes::String),
        Some("Float") => names
            .iter()
            .map(Value::as_f64)
            .collect::<Option<Vec<_>>>()
            .map(Classes::Float),
        _ => names
            .iter()
            .map(Value::as_i64)
            .collect::<Option<Vec<_>>>()
            .map(Classes::Integer),
    }
}

impl Description {
    /// The columns' names (`feature_id`s), or none when the model records none.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = vec![String::new(); self.columns];
        for (column, name) in self
            .floats
            .iter()
            .map(|f| (f.column, &f.name))
            .chain(self.cats.iter().map(|c| (c.column, &c.name)))
        {
            names[column] = name.clone();
        }
        if names.iter().all(String::is_empty) {
            names.clear();
        }
        names
    }
}

/// The column count: one past the largest flat index of any feature, which is at most the
/// number of features (each has its own column).
pub fn columns(flat_indices: &[usize]) -> Result<usize, String> {
    let columns = flat_indices
        .iter()
        .map(|index| index + 1)
        .max()
        .unwrap_or(0);
    if columns > flat_indices.len() {
        return Err(format!(
            "a feature's column ({}) is past the model's {} features",
            columns - 1,
            flat_indices.len()
        ));
    }
    Ok(columns)
}
