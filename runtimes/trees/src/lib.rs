//! The `trees` runtime: XGBoost, LightGBM and CatBoost tree ensembles, answered as MLServer's
//! `mlserver_xgboost`, `mlserver_lightgbm` and `mlserver_catboost` runtimes answer.
//!
//! # The model file
//!
//! `parameters.uri` names the model file, or a folder in which the runtime takes the first of
//! `model.bst`, `model.json`, `model.ubj`, `model.txt`, `model.cbm`, `model.bin` that exists
//! (MLServer's well-known names are `model.bst` and `model.json` for XGBoost, `model.bst` for
//! LightGBM, `model.cbm` and `model.bin` for CatBoost). The format is read from the content, not
//! the name:
//!
//! - XGBoost's JSON format (`booster.save_model("model.json")`, or an `XGBClassifier` /
//!   `XGBRegressor`'s `save_model`) and its UBJSON form (`model.ubj`), XGBoost 1.0 and later;
//! - LightGBM's text format (`booster.save_model("model.txt")`, the file MLServer names
//!   `model.bst`);
//! - CatBoost's native format (`model.cbm`) and its JSON export (`save_model(...,
//!   format="json")`), oblivious trees: see [`catboost`].
//!
//! XGBoost's legacy binary format (`.bst` / `.model` of XGBoost < 1.0 defaults) is refused
//! with a message saying how to convert it. See [`xgboost`] and [`lightgbm`] for what each
//! supports (objectives, missing values, categorical splits) and how it is evaluated.
//!
//! # Requests
//!
//! One input (any name) of shape `[rows, features]` and any numeric datatype, converted as the
//! library converts a NumPy array of that datatype. NaN is a missing value. The input's metadata
//! carries the feature names the model file records (XGBoost's `feature_names`, LightGBM's
//! `feature_names` line unless LightGBM made them up): the host then assembles a request of
//! columns (MLServer's `pd`) into the matrix by those names.
//!
//! # Outputs
//!
//! Named and shaped as MLServer's runtimes name them, with MLServer's NumPy codec (a 1-D result
//! is `[N, 1]`, and every output carries `content_type: "np"`): `predict` by default,
//! `predict_proba` when requested. In short:
//!
//! | model | `predict` | `predict_proba` |
//! |---|---|---|
//! | XGBoost classifier (saved by `XGBClassifier`) | INT64 `[N, 1]` labels (INT32 for `multi:softmax`) | FP32 `[N, classes]` |
//! | XGBoost regressor, or saved by `Booster.save_model` | FP32 `[N, 1]` (`[N, K]` for `multi:softprob`): the booster's output | refused, as MLServer does |
//! | LightGBM `binary` | FP64 `[N, 1]`: the probability of class 1 | FP64 `[N, 2]` (mlhost only) |
//! | LightGBM `multiclass`, `multiclassova` | FP64 `[N, K]` | FP64 `[N, K]` (mlhost only) |
//! | LightGBM regression and others | FP64 `[N, 1]` | refused |
//!
//! # Settings
//!
//! `parameters.extra.estimator_type` (`"classifier"` or `"regressor"`) overrides the
//! estimator type an XGBoost file records (a binary model saved by `Booster.save_model` then
//! answers labels and probabilities).

pub mod catboost;
pub mod ensemble;
pub mod features;
pub mod lightgbm;
pub mod ubjson;
pub mod xgboost;

use catboost::CbModel;
use lightgbm::LgbModel;
use mlhost_guest::{
    Datatype, Error, InferenceRequest, InferenceResponse, Model, ModelMetadata, ModelSettings,
    Parameter, TensorMetadata, export_model,
};
use std::path::{Path, PathBuf};
use xgboost::{Estimator, XgbModel};

/// The files looked for, in order, when `uri` is a folder.
pub const WELL_KNOWN_FILES: [&str; 6] = [
    "model.bst",
    "model.json",
    "model.ubj",
    "model.txt",
    "model.cbm",
    "model.bin",
];

/// The name the metadata gives the input (any name is accepted).
const INPUT_NAME: &str = "input-0";

/// A loaded tree ensemble.
#[derive(Debug)]
pub enum Trees {
    /// An XGBoost model.
    XGBoost(XgbModel),
    /// A LightGBM model.
    LightGBM(LgbModel),
    /// A CatBoost model.
    CatBoost(CbModel),
}

/// The formats a model file can be in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    /// JSON: XGBoost's, or CatBoost's export.
    Json,
    XgboostUbjson,
    LightgbmText,
    CatboostBinary,
}

/// Reads the format from the first bytes of a file.
fn detect_format(bytes: &[u8]) -> Result<Format, String> {
    let start = bytes
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .map_or(&[][..], |at| &bytes[at..]);
    match start {
        [b'C', b'B', b'M', b'1', ..] => Ok(Format::CatboostBinary),
        [b'{', b'"' | b' ' | b'\n' | b'\r' | b'\t' | b'}', ..] => Ok(Format::Json),
        [b'{', b'i' | b'U' | b'I' | b'l' | b'L' | b'$' | b'#', ..] => Ok(Format::XgboostUbjson),
        [b't', b'r', b'e', b'e', b'\n' | b'\r', ..] => Ok(Format::LightgbmText),
        [] => Err("the file is empty".to_string()),
        [b'b', b'i', b'n', b'f', ..] | [_, _, _, _, ..]
            if !start.iter().take(64).all(|b| b.is_ascii()) =>
        {
            Err(
                "not a model format this runtime reads: it looks like XGBoost's legacy \
                 binary format (XGBoost < 1.0), which is not supported; load it in Python \
                 with xgboost.Booster(model_file=...) and save it again as model.json"
                    .to_string(),
            )
        }
        _ => Err(
            "not a model format this runtime reads (expected XGBoost's JSON or UBJSON \
                  format, LightGBM's text format, or CatBoost's .cbm or JSON format)"
                .to_string(),
        ),
    }
}

/// The model file `uri` names: the file itself, or the first well-known file in the folder.
fn model_path(uri: &str) -> Result<PathBuf, Error> {
    let path = Path::new(uri);
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    WELL_KNOWN_FILES
        .iter()
        .map(|name| path.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            Error::invalid_model(format!(
                "no model file in {}: looked for {}; set parameters.uri to the model's file",
                path.display(),
                WELL_KNOWN_FILES.join(", ")
            ))
        })
}

/// `parameters.extra.estimator_type`, if set.
fn estimator_override(extra: &str) -> Result<Option<Estimator>, Error> {
    let extra: serde_json::Value = serde_json::from_str(extra)
        .map_err(|error| Error::invalid_model(format!("parameters.extra: {error}")))?;
    match extra.get("estimator_type") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => match value.as_str() {
            Some("classifier") => Ok(Some(Estimator::Classifier)),
            Some("regressor") => Ok(Some(Estimator::Regressor)),
            _ => Err(Error::invalid_model(format!(
                "parameters.extra.estimator_type is {value}: expected \"classifier\" or \
                 \"regressor\""
            ))),
        },
    }
}

impl Trees {
    /// Reads a model from the bytes of its file, whatever its format.
    pub fn from_bytes(bytes: &[u8], estimator: Option<Estimator>) -> Result<Self, String> {
        match detect_format(bytes)? {
            Format::Json => {
                let document: serde_json::Value =
                    serde_json::from_slice(bytes).map_err(|error| {
                        format!("not an XGBoost or CatBoost model in JSON format: {error}")
                    })?;
                if catboost::is_catboost(&document) {
                    CbModel::from_json(&document).map(Trees::CatBoost)
                } else {
                    XgbModel::from_value(document, estimator).map(Trees::XGBoost)
                }
            }
            Format::CatboostBinary => CbModel::from_cbm(bytes).map(Trees::CatBoost),
            Format::XgboostUbjson => {
                let document = ubjson::parse(bytes)
                    .map_err(|error| format!("not an XGBoost model in UBJSON format: {error}"))?;
                XgbModel::from_value(document, estimator).map(Trees::XGBoost)
            }
            Format::LightgbmText => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| "a LightGBM text model that is not UTF-8 text".to_string())?;
                LgbModel::from_text(text).map(Trees::LightGBM)
            }
        }
    }

    /// The number of features a row holds.
    pub fn num_features(&self) -> usize {
        match self {
            Trees::XGBoost(model) => model.num_features(),
            Trees::LightGBM(model) => model.num_features(),
            Trees::CatBoost(model) => model.num_features(),
        }
    }

    /// The columns' names the model file records, if any.
    pub fn feature_names(&self) -> &[String] {
        match self {
            Trees::XGBoost(model) => model.feature_names(),
            Trees::LightGBM(model) => model.feature_names(),
            Trees::CatBoost(model) => model.feature_names(),
        }
    }

    /// The datatype, and the columns, of `predict` and of `predict_proba` (if the model has it).
    fn output_metadata(&self) -> Vec<TensorMetadata> {
        let mut outputs = Vec::new();
        match self {
            Trees::XGBoost(model) => {
                let (datatype, columns) = model.predict_signature();
                outputs.push(TensorMetadata::new(
                    "predict",
                    datatype,
                    &[-1, columns as i64],
                ));
                if let Some(columns) = model.proba_columns() {
                    outputs.push(TensorMetadata::new(
                        "predict_proba",
                        Datatype::Fp32,
                        &[-1, columns as i64],
                    ));
                }
            }
            Trees::LightGBM(model) => {
                outputs.push(TensorMetadata::new(
                    "predict",
                    Datatype::Fp64,
                    &[-1, model.output_columns() as i64],
                ));
                if let Some(columns) = model.proba_columns() {
                    outputs.push(TensorMetadata::new(
                        "predict_proba",
                        Datatype::Fp64,
                        &[-1, columns as i64],
                    ));
                }
            }
            Trees::CatBoost(model) => {
                let (datatype, columns) = model.predict_signature();
                outputs.push(TensorMetadata::new(
                    "predict",
                    datatype,
                    &[-1, columns as i64],
                ));
                if let Some(columns) = model.proba_columns() {
                    outputs.push(TensorMetadata::new(
                        "predict_proba",
                        Datatype::Fp64,
                        &[-1, columns as i64],
                    ));
                }
            }
        }
        outputs
    }
}

impl Model for Trees {
    fn load(settings: ModelSettings) -> Result<Self, Error> {
        let estimator = estimator_override(&settings.extra)?;
        let path = model_path(&settings.uri)?;
        let bytes = std::fs::read(&path).map_err(|error| {
            Error::invalid_model(format!("cannot read {}: {error}", path.display()))
        })?;
        Trees::from_bytes(&bytes, estimator)
            .map_err(|error| Error::invalid_model(format!("{}: {error}", path.display())))
    }

    fn metadata(&self) -> ModelMetadata {
        let (platform, datatype) = match self {
            Trees::XGBoost(_) => ("xgboost", Datatype::Fp32),
            Trees::LightGBM(_) => ("lightgbm", Datatype::Fp64),
            Trees::CatBoost(_) => ("catboost", Datatype::Fp32),
        };
        let mut input =
            TensorMetadata::new(INPUT_NAME, datatype, &[-1, self.num_features() as i64]);
        if !self.feature_names().is_empty() {
            input = input.with_feature_names(self.feature_names());
        }
        self.output_metadata().into_iter().fold(
            ModelMetadata::new(platform).input(input),
            |metadata, output| metadata.output(output),
        )
    }

    fn predict(&self, request: InferenceRequest) -> Result<InferenceResponse, Error> {
        let input = request.only_input()?;
        let rows = features::check_shape(input, self.num_features())?;
        let names = request.output_names(&["predict"], &["predict", "predict_proba"])?;
        let mut response = InferenceResponse::new();
        match self {
            Trees::XGBoost(model) => {
                let x = features::to_f32(input)?;
                for name in names {
                    response = response.output(with_content_type(model.output(name, &x, rows)?));
                }
            }
            Trees::LightGBM(model) => {
                let x = features::to_lightgbm_f64(input)?;
                for name in names {
                    response = response.output(with_content_type(model.output(name, &x, rows)?));
                }
            }
            Trees::CatBoost(model) => {
                for name in names {
                    response = response.output(with_content_type(model.output(name, input, rows)?));
                }
            }
        }
        Ok(response)
    }
}

/// Tags an output as MLServer's NumPy codec does.
fn with_content_type(tensor: mlhost_guest::Tensor) -> mlhost_guest::Tensor {
    tensor.with_parameter(Parameter::string("content_type", "np"))
}

export_model!(Trees);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_apart_by_content() {
        assert_eq!(detect_format(b"{\"learner\": {}}"), Ok(Format::Json));
        assert_eq!(detect_format(b"  {\n}"), Ok(Format::Json));
        assert_eq!(
            detect_format(b"CBM1\xd8\x1a\x00\x00"),
            Ok(Format::CatboostBinary)
        );
        assert_eq!(
            detect_format(b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner"),
            Ok(Format::XgboostUbjson)
        );
        assert_eq!(
            detect_format(b"tree\nversion=v4\n"),
            Ok(Format::LightgbmText)
        );
        assert!(detect_format(b"").unwrap_err().contains("empty"));
        assert!(
            detect_format(b"binf\x00\x00\x80\x3f\xff\xfe")
                .unwrap_err()
                .contains("legacy")
        );
        assert!(
            detect_format(b"hello")
                .unwrap_err()
                .contains("not a model format")
        );
    }

    #[test]
    fn the_estimator_type_can_be_set() {
        assert_eq!(estimator_override("{}").unwrap(), None);
        assert_eq!(
            estimator_override(r#"{"estimator_type": "classifier"}"#).unwrap(),
            Some(Estimator::Classifier)
        );
        assert!(estimator_override(r#"{"estimator_type": "ranker"}"#).is_err());
    }
}
