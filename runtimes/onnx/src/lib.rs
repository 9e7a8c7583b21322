//! The `onnx` runtime: ONNX models (ONNX and ONNX-ML operators), run by the host's native
//! backend (ONNX Runtime, through the WIT `onnx` interface: [`native`]) or, sandboxed, by tract
//! inside this component. `backend` in model-settings.json chooses: `auto` (the default: native
//! when the server has ONNX Runtime and allows it), `native` or `sandboxed`. The metadata's
//! `backend` parameter says which serves the model.
//!
//! The model folder holds `model.onnx` (MLServer's name), or `parameters.uri` names the `.onnx`
//! file (or a folder holding exactly one). The graph is analysed and optimized once, when the
//! model loads, with a symbol `N` for dimension 0 of the inputs where the graph leaves it
//! dynamic: one plan serves every batch size.
//!
//! - Metadata: the graph's inputs (initializers excluded) and outputs, with their datatypes and
//!   shapes (`-1` for a dynamic dimension), platform `onnx`.
//! - Inference: every graph input is required, by name; a request's datatype is converted to the
//!   graph's when nothing is lost that a model would notice (FP64 to FP32, as MLServer does;
//!   integers to floats; integers to integers that hold every value). Outputs are named as in
//!   the graph: all of them, or the requested ones.
//! - A file that is not ONNX, or (on tract) uses an operator tract does not implement, does not
//!   load ([`Error::InvalidModel`] names the operators and what to do).
//!
//! scikit-learn models exported with skl2onnx serve as they are (see `README.md` for the
//! operators that work).

pub mod convert;
pub mod model;
pub mod native;
mod ops;

use mlhost_guest::onnx::{self, BackendChoice};
use mlhost_guest::{
    Error, InferenceRequest, InferenceResponse, Model, ModelMetadata, ModelSettings, Parameter,
    TensorMetadata, export_model,
};
use native::NativeModel;
use tract_onnx::prelude::{IntoTValue, TDim, TValue, TVec};

pub use model::{OnnxModel, Port};

/// The platform reported in the model's metadata.
pub const PLATFORM: &str = "onnx";

/// A loaded ONNX model, served through the guest SDK.
#[derive(Debug)]
pub struct Onnx {
    backend: Backend,
}

/// What runs the graph.
#[derive(Debug)]
enum Backend {
    /// tract, inside the component.
    Sandboxed(OnnxModel),
    /// ONNX Runtime, in the host.
    Native(NativeModel),
}

impl Onnx {
    /// Wraps a model loaded with [`OnnxModel::from_bytes`] or [`OnnxModel::from_path`] (served
    /// by tract).
    pub fn new(model: OnnxModel) -> Self {
        Onnx {
            backend: Backend::Sandboxed(model),
        }
    }
}

/// Whether the model is to run on the native backend: its settings' choice, and for `auto`
/// whether the host can serve it natively.
fn wants_native() -> bool {
    match onnx::backend() {
        BackendChoice::Sandboxed => false,
        BackendChoice::Native => true,
        BackendChoice::Auto => onnx::available().is_ok(),
    }
}

/// Fails when the request has an input the graph does not take (`names`), naming them.
pub(crate) fn check_no_unknown_input(
    request: &InferenceRequest,
    names: &[&str],
) -> Result<(), Error> {
    match request
        .inputs
        .iter()
        .find(|input| !names.contains(&input.name.as_str()))
    {
        Some(unknown) => Err(Error::invalid_input(format!(
            "unknown input '{}'; this model takes {names:?}",
            unknown.name
        ))),
        None => Ok(()),
    }
}

/// The error for a graph input (`name`, one of `names`) the request lacks.
pub(crate) fn missing_input(name: &str, names: &[&str]) -> Error {
    Error::invalid_input(format!(
        "missing input '{name}'; this model takes {names:?}"
    ))
}

/// Checks the request's inputs against the graph's and converts them, in the plan's order.
fn tract_inputs(model: &OnnxModel, request: &InferenceRequest) -> Result<TVec<TValue>, Error> {
    let names: Vec<&str> = model.inputs.iter().map(|p| p.name.as_str()).collect();
    check_no_unknown_input(request, &names)?;
    let mut symbols: Vec<(&TDim, u64, &str)> = Vec::new();
    let mut values = TVec::new();
    for port in &model.inputs {
        let input = request
            .inputs
            .iter()
            .find(|i| i.name == port.name)
            .ok_or_else(|| missing_input(&port.name, &names))?;
        check_shape(port, &input.shape, &mut symbols)?;
        values.push(convert::to_tract(input, port.datum_type)?.into_tvalue());
    }
    Ok(values)
}

/// Checks `shape` against the port's: the same rank, the same fixed dimensions, and one size
/// for each symbol (the batch `N`) across the inputs seen so far.
fn check_shape<'a>(
    port: &'a Port,
    shape: &[u64],
    symbols: &mut Vec<(&'a TDim, u64, &'a str)>,
) -> Result<(), Error> {
    let expected = port.metadata_shape();
    if shape.len() != port.shape.len() {
        return Err(Error::invalid_input(format!(
            "input '{}' has shape {shape:?}, the model takes {expected:?}",
            port.name
        )));
    }
    for ((dim, &size), &fixed) in port.shape.iter().zip(shape).zip(&expected) {
        if fixed >= 0 && fixed as u64 != size {
            return Err(Error::invalid_input(format!(
                "input '{}' has shape {shape:?}, the model takes {expected:?}",
                port.name
            )));
        }
        if let TDim::Sym(_) = dim {
            match symbols.iter().find(|(symbol, _, _)| *symbol == dim) {
                Some(&(_, seen, other)) if seen != size => {
                    return Err(Error::invalid_input(format!(
                        "input '{}' has {size} rows where input '{other}' has {seen}; the model \
                         takes the same number",
                        port.name
                    )));
                }
                Some(_) => {}
                None => symbols.push((dim, size, &port.name)),
            }
        }
    }
    Ok(())
}

/// The metadata of a model served by tract, with the `backend` parameter `sandboxed`.
fn tract_metadata(model: &OnnxModel) -> ModelMetadata {
    let describe = |port: &Port| {
        let datatype = convert::datatype(port.datum_type)
            .expect("ports are checked for a protocol datatype at load");
        TensorMetadata::new(&port.name, datatype, &port.metadata_shape())
    };
    let metadata = model
        .inputs
        .iter()
        .fold(ModelMetadata::new(PLATFORM), |metadata, port| {
            metadata.input(describe(port))
        });
    let mut metadata = model
        .outputs
        .iter()
        .fold(metadata, |metadata, port| metadata.output(describe(port)));
    metadata
        .parameters
        .push(Parameter::string("backend", "sandboxed"));
    metadata
}

/// Runs one request on tract.
fn tract_predict(model: &OnnxModel, request: InferenceRequest) -> Result<InferenceResponse, Error> {
    let available: Vec<&str> = model.outputs.iter().map(|p| p.name.as_str()).collect();
    let wanted = request.output_names(&available, &available)?;
    let inputs = tract_inputs(model, &request)?;
    let outputs = model.run(inputs)?;
    let mut response = InferenceResponse::new();
    for name in wanted {
        let index = available
            .iter()
            .position(|output| *output == name)
            .expect("output_names only returns available outputs");
        let value = outputs.get(index).ok_or_else(|| {
            Error::internal(format!("the plan returned no value for output '{name}'"))
        })?;
        response = response.output(convert::from_tract(name, value)?);
    }
    Ok(response)
}

impl Model for Onnx {
    fn load(settings: ModelSettings) -> Result<Self, Error> {
        let path = model::model_file(&settings.uri)?;
        if wants_native() {
            let path = path
                .to_str()
                .ok_or_else(|| Error::invalid_model("the model's path is not UTF-8"))?;
            return Ok(Onnx {
                backend: Backend::Native(NativeModel::open(path)?),
            });
        }
        Ok(Onnx::new(OnnxModel::from_path(&path)?))
    }

    fn metadata(&self) -> ModelMetadata {
        match &self.backend {
            Backend::Sandboxed(model) => tract_metadata(model),
            Backend::Native(model) => model.metadata(),
        }
    }

    fn predict(&self, request: InferenceRequest) -> Result<InferenceResponse, Error> {
        match &self.backend {
            Backend::Sandboxed(model) => tract_predict(model, request),
            Backend::Native(model) => model.predict(request),
        }
    }
}

export_model!(Onnx);
