//! Multi-column requests (MLServer's `pd` content type, or one input per feature) to a model
//! that takes one feature matrix: the columns are assembled into that matrix, in the model's
//! column order, each cast to the matrix's datatype.
//!
//! A model takes columns when its runtime describes exactly one input of rank 2
//! (`[rows, features]`). The columns' names, in the matrix's order, are (first that applies):
//!
//! 1. the inputs model-settings.json declares in place of the matrix (one per feature, each a
//!    column: `[-1]` or `[-1, 1]`, none named as the runtime's input);
//! 2. the [`FEATURE_NAMES`] parameter of the runtime's input: a JSON array of strings (the
//!    `trees` runtime reports the names XGBoost and LightGBM models store, `linear` those of
//!    `linear.json`);
//! 3. none: the request's columns are then taken in the order they come.
//!
//! Each column is cast to the matrix's datatype the way MLServer's runtimes cast a DataFrame
//! (pandas, then NumPy, then the library): every number directly from its own datatype (an
//! INT64 column to FP32 rounds once), BOOL as 0 and 1. That is the cast XGBoost applies column
//! by column (to `float`) and that LightGBM's widest-type rule gives (its `float64` matrix holds
//! every column exactly; its `float32` one is chosen only when every column fits it).

use super::{DataType, InferenceRequest, Tensor, TensorMetadata, content_type, quoted};
use std::collections::{HashMap, HashSet};

/// The parameter of a runtime's input that names its columns: the text of a JSON array of
/// strings, one per feature, in the matrix's order.
pub(crate) const FEATURE_NAMES: &str = "feature_names";

/// How a model's feature matrix is made of columns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColumnLayout {
    /// The runtime's one input.
    matrix: TensorMetadata,
    /// Its features per row, when the runtime fixes them.
    features: Option<usize>,
    /// The columns' names in the matrix's order, when known.
    names: Option<Vec<String>>,
    /// Why names the model gives were not used, for the log.
    problem: Option<String>,
}

impl ColumnLayout {
    /// The layout of a model whose runtime describes `runtime_inputs`, with the inputs
    /// model-settings.json `declared`; `None` when the runtime does not take one matrix.
    pub(crate) fn of(
        runtime_inputs: &[TensorMetadata],
        declared: &[TensorMetadata],
    ) -> Option<ColumnLayout> {
        let [matrix] = runtime_inputs else {
            return None;
        };
        let &[_, width] = matrix.shape.as_slice() else {
            return None;
        };
        let mut layout = ColumnLayout {
            matrix: matrix.clone(),
            features: usize::try_from(width).ok(),
            names: None,
            problem: None,
        };
        // Declared inputs are the matrix's columns when each is one column and none is the
        // matrix itself (a declared `[-1, F]` input of another name is the matrix, renamed).
        let columns_declared = !declared.is_empty()
            && declared.iter().all(|input| {
                input.name != matrix.name && matches!(input.shape.as_slice(), [_] | [_, 1])
            });
        let named = if columns_declared {
            let names = declared.iter().map(|input| input.name.clone()).collect();
            layout.checked_names(names, "model-settings.json declares")
        } else {
            match feature_names(matrix) {
                Some(Ok(names)) => layout.checked_names(names, "the model names"),
                Some(Err(problem)) => Err(problem),
                None => Ok(None),
            }
        };
        match named {
            Ok(names) => layout.names = names,
            Err(problem) => layout.problem = Some(problem),
        }
        Some(layout)
    }

    /// `names` if they are one per feature and unique.
    fn checked_names(
        &self,
        names: Vec<String>,
        source: &str,
    ) -> Result<Option<Vec<String>>, String> {
        if let Some(features) = self.features
            && names.len() != features
        {
            return Err(format!(
                "{source} {} columns but input '{}' takes {features} features; columns are \
                 taken in the request's order",
                names.len(),
                self.matrix.name
            ));
        }
        let mut seen = HashSet::new();
        if let Some(twice) = names.iter().find(|name| !seen.insert(name.as_str())) {
            return Err(format!(
                "{source} the column '{twice}' twice; columns are taken in the request's order"
            ));
        }
        Ok(Some(names))
    }

    /// Why the model's column names are not used, when it gives names that cannot be.
    pub(crate) fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// Whether `request` gives the matrix as columns: it does not name the runtime's input, and
    /// each of its inputs is one column (`[rows]` or `[rows, 1]`).
    pub(crate) fn applies(&self, request: &InferenceRequest) -> bool {
        !request.inputs.is_empty()
            && request.inputs.iter().all(|input| {
                input.name != self.matrix.name && matches!(input.shape.as_slice(), [_] | [_, 1])
            })
    }

    /// Replaces the request's columns by the matrix they make, for model `model`. A `pd`
    /// content type of the request goes with them: the runtime gets a plain matrix.
    pub(crate) fn assemble(
        &self,
        request: &mut InferenceRequest,
        model: &str,
    ) -> Result<(), String> {
        let order = self.order(&request.inputs, model)?;
        let rows = rows(&request.inputs)?;
        let columns: Vec<&Tensor> = order.iter().map(|&index| &request.inputs[index]).collect();
        let data = match self.matrix.datatype {
            DataType::Bytes => bytes_matrix(&columns, rows, model)?,
            datatype => numeric_matrix(&columns, rows, datatype, model)?,
        };
        request.inputs = vec![Tensor {
            name: self.matrix.name.clone(),
            datatype: self.matrix.datatype,
            shape: vec![rows as u64, columns.len() as u64],
            data,
            parameters: Vec::new(),
        }];
        request.parameters.retain(|(name, value)| {
            name != content_type::CONTENT_TYPE
                || !matches!(value, super::ParameterValue::String(text) if text == "pd")
        });
        Ok(())
    }

    /// The index in `inputs` of each column of the matrix, in order.
    fn order(&self, inputs: &[Tensor], model: &str) -> Result<Vec<usize>, String> {
        let Some(names) = &self.names else {
            return match self.features {
                Some(features) if inputs.len() != features => Err(format!(
                    "the request has {} column(s) but model '{model}' takes {features} features \
                     (its input '{}' is {:?}); send one column per feature",
                    inputs.len(),
                    self.matrix.name,
                    self.matrix.shape
                )),
                _ => Ok((0..inputs.len()).collect()),
            };
        };
        let given: HashMap<&str, usize> = inputs
            .iter()
            .enumerate()
            .map(|(index, input)| (input.name.as_str(), index))
            .collect();
        let known: HashSet<&str> = names.iter().map(String::as_str).collect();
        let missing = listed(
            names
                .iter()
                .map(String::as_str)
                .filter(|name| !given.contains_key(name)),
        );
        let unknown = listed(
            inputs
                .iter()
                .map(|input| input.name.as_str())
                .filter(|name| !known.contains(name)),
        );
        if missing.is_empty() && unknown.is_empty() {
            return Ok(names.iter().map(|name| given[name.as_str()]).collect());
        }
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing column(s) {missing}"));
        }
        if !unknown.is_empty() {
            problems.push(format!("unknown column(s) {unknown}"));
        }
        Err(format!(
            "{} for model '{model}'; it takes the columns {}",
            problems.join(" and "),
            listed(names.iter().map(String::as_str))
        ))
    }
}

/// Names as a message lists them: quoted, at most [`LISTED`] of them.
fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut shown = Vec::new();
    let mut more = 0usize;
    for name in names {
        if shown.len() < LISTED {
            shown.push(format!("'{}'", quoted(name)));
        } else {
            more += 1;
        }
    }
    if more > 0 {
        shown.push(format!("and {more} more"));
    }
    shown.join(", ")
}

/// The most names one message lists.
const LISTED: usize = 20;

/// The names in the runtime input's [`FEATURE_NAMES`] parameter, if it has one.
fn feature_names(matrix: &TensorMetadata) -> Option<Result<Vec<String>, String>> {
    let text = matrix
        .parameters
        .iter()
        .find_map(|(name, value)| match value {
            super::ParameterValue::String(text) if name == FEATURE_NAMES => Some(text),
            _ => None,
        })?;
    Some(serde_json::from_str(text).map_err(|error| {
        format!(
            "the {FEATURE_NAMES} of input '{}' are not a JSON array of strings ({error}); \
             columns are taken in the request's order",
            matrix.name
        )
    }))
}

/// The rows every column has.
fn rows(columns: &[Tensor]) -> Result<usize, String> {
    let first = &columns[0];
    for column in columns {
        if column.shape[0] != first.shape[0] {
            return Err(format!(
                "column '{}' has {} rows but column '{}' has {}",
                quoted(&column.name),
                column.shape[0],
                quoted(&first.name),
                first.shape[0]
            ));
        }
    }
    usize::try_from(first.shape[0]).map_err(|_| "too many rows".to_string())
}

/// A number read from a tensor, in the widest type of its kind.
#[derive(Clone, Copy)]
enum Number {
    Float(f64),
    Signed(i64),
    Unsigned(u64),
}

/// The elements of a numeric or BOOL column, each as a [`Number`].
fn numbers(column: &Tensor) -> Option<Box<dyn Iterator<Item = Number> + '_>> {
    fn each<const N: usize>(
        data: &[u8],
        read: impl Fn([u8; N]) -> Number + 'static,
    ) -> Box<dyn Iterator<Item = Number> + '_> {
        Box::new(
            data.chunks_exact(N)
                .map(move |bytes| read(bytes.try_into().expect("N bytes"))),
        )
    }
    let data = column.data.as_slice();
    Some(match column.datatype {
        DataType::Bool | DataType::Uint8 => each(data, |[b]: [u8; 1]| Number::Unsigned(b.into())),
        DataType::Int8 => each(data, |b| Number::Signed(i8::from_le_bytes(b).into())),
        DataType::Uint16 => each(data, |b| Number::Unsigned(u16::from_le_bytes(b).into())),
        DataType::Int16 => each(data, |b| Number::Signed(i16::from_le_bytes(b).into())),
        DataType::Uint32 => each(data, |b| Number::Unsigned(u32::from_le_bytes(b).into())),
        DataType::Int32 => each(data, |b| Number::Signed(i32::from_le_bytes(b).into())),
        DataType::Uint64 => each(data, |b| Number::Unsigned(u64::from_le_bytes(b))),
        DataType::Int64 => each(data, |b| Number::Signed(i64::from_le_bytes(b))),
        DataType::Fp16 => each(data, |b| Number::Float(half::f16::from_le_bytes(b).into())),
        DataType::Bf16 => each(data, |b| Number::Float(half::bf16::from_le_bytes(b).into())),
        DataType::Fp32 => each(data, |b| Number::Float(f32::from_le_bytes(b).into())),
        DataType::Fp64 => each(data, |b| Number::Float(f64::from_le_bytes(b))),
        DataType::Bytes => return None,
    })
}

/// Writes `number` as `datatype` (a numeric datatype), as a C cast would (NumPy's `astype`).
fn write(number: Number, datatype: DataType, out: &mut [u8]) {
    macro_rules! cast {
        ($type:ty) => {
            out.copy_from_slice(
                &match number {
                    Number::Float(value) => value as $type,
                    Number::Signed(value) => value as $type,
                    Number::Unsigned(value) => value as $type,
                }
                .to_le_bytes(),
            )
        };
    }
    let wide = match number {
        Number::Float(value) => value,
        Number::Signed(value) => value as f64,
        Number::Unsigned(value) => value as f64,
    };
    match datatype {
        DataType::Fp32 => cast!(f32),
        DataType::Fp64 => cast!(f64),
        DataType::Int8 => cast!(i8),
        DataType::Int16 => cast!(i16),
        DataType::Int32 => cast!(i32),
        DataType::Int64 => cast!(i64),
        DataType::Uint8 => cast!(u8),
        DataType::Uint16 => cast!(u16),
        DataType::Uint32 => cast!(u32),
        DataType::Uint64 => cast!(u64),
        DataType::Fp16 => out.copy_from_slice(&half::f16::from_f64(wide).to_le_bytes()),
        DataType::Bf16 => out.copy_from_slice(&half::bf16::from_f64(wide).to_le_bytes()),
        DataType::Bool => out[0] = u8::from(wide != 0.0),
        DataType::Bytes => unreachable!("BYTES matrices are assembled by bytes_matrix"),
    }
}

/// The row-major data of a numeric (or BOOL) matrix of `columns`.
fn numeric_matrix(
    columns: &[&Tensor],
    rows: usize,
    datatype: DataType,
    model: &str,
) -> Result<Vec<u8>, String> {
    let size = datatype.element_size().expect("a numeric datatype");
    let width = columns.len();
    let mut data = vec![0u8; rows * width * size];
    for (index, column) in columns.iter().enumerate() {
        let refused = column.datatype == DataType::Bytes
            || (datatype == DataType::Bool && column.datatype != DataType::Bool);
        let values = numbers(column).filter(|_| !refused).ok_or_else(|| {
            format!(
                "column '{}' is {} but model '{model}' takes {datatype} features",
                quoted(&column.name),
                column.datatype
            )
        })?;
        for (row, number) in values.enumerate() {
            let at = (row * width + index) * size;
            write(number, datatype, &mut data[at..at + size]);
        }
    }
    Ok(data)
}

/// The row-major data of a BYTES matrix of `columns`, which must all be BYTES.
fn bytes_matrix(columns: &[&Tensor], rows: usize, model: &str) -> Result<Vec<u8>, String> {
    let mut elements = Vec::with_capacity(columns.len());
    for column in columns {
        if column.datatype != DataType::Bytes {
            return Err(format!(
                "column '{}' is {} but model '{model}' takes BYTES features",
                quoted(&column.name),
                column.datatype
            ));
        }
        let column_elements = column
            .bytes_elements()
            .collect::<Result<Vec<&[u8]>, _>>()
            .map_err(|error| format!("column '{}': {error}", quoted(&column.name)))?;
        elements.push(column_elements);
    }
    let total: usize = columns.iter().map(|column| column.data.len()).sum();
    let mut data = Vec::with_capacity(total);
    for row in 0..rows {
        for column in &elements {
            let element = column[row];
            data.extend((element.len() as u32).to_le_bytes());
            data.extend(element);
        }
    }
    Ok(data)
}

#[cfg(test)]
#[path = "columns_tests.rs"]
mod tests;
