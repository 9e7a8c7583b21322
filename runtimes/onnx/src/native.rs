//! The model on the host's native backend (ONNX Runtime, through the SDK's [`onnx`] module):
//! requests are checked and converted here, in the sandbox, and the graph runs in the host.
//!
//! Inputs are converted to the graph's datatypes by the same rules as on tract (see
//! [`crate::convert`]); BF16 and the integer widths tract lacks pass through unchanged when the
//! request already has the graph's datatype.

use crate::convert;
use mlhost_guest::onnx::{self, Port, Session};
use mlhost_guest::{
    Datatype, Error, InferenceRequest, InferenceResponse, ModelMetadata, Parameter, Tensor,
    TensorMetadata,
};
use tract_onnx::prelude::DatumType;

/// A graph loaded in the host's ONNX Runtime.
#[derive(Debug)]
pub struct NativeModel {
    session: Session,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
}

impl NativeModel {
    /// Opens the ONNX file at `path` (under `/model`) in the host's ONNX Runtime.
    pub fn open(path: &str) -> Result<Self, Error> {
        onnx::available().map_err(Error::invalid_model)?;
        let session = Session::open(path)?;
        Ok(NativeModel {
            inputs: session.inputs(),
            outputs: session.outputs(),
            session,
        })
    }

    /// The graph's inputs and outputs, platform `onnx`, and the `backend` parameter `native`.
    pub fn metadata(&self) -> ModelMetadata {
        let describe = |port: &Port| TensorMetadata::new(&port.name, port.datatype, &port.shape);
        let mut metadata = ModelMetadata::new(crate::PLATFORM);
        metadata.inputs = self.inputs.iter().map(describe).collect();
        metadata.outputs = self.outputs.iter().map(describe).collect();
        metadata
            .parameters
            .push(Parameter::string("backend", "native"));
        metadata
    }

    /// Runs one request: every graph input by name, converted to the graph's datatype; the
    /// requested outputs (all by default).
    pub fn predict(&self, mut request: InferenceRequest) -> Result<InferenceResponse, Error> {
        let available: Vec<&str> = self.outputs.iter().map(|p| p.name.as_str()).collect();
        let wanted: Vec<String> = request
            .output_names(&available, &available)?
            .into_iter()
            .map(str::to_string)
            .collect();
        let names: Vec<&str> = self.inputs.iter().map(|p| p.name.as_str()).collect();
        crate::check_no_unknown_input(&request, &names)?;
        let mut inputs = Vec::with_capacity(self.inputs.len());
        for port in &self.inputs {
            let position = request
                .inputs
                .iter()
                .position(|input| input.name == port.name)
                .ok_or_else(|| crate::missing_input(&port.name, &names))?;
            let input = request.inputs.swap_remove(position);
            inputs.push(to_graph_datatype(input, port.datatype)?);
        }
        let outputs = self.session.run(&inputs, &wanted)?;
        Ok(outputs
            .into_iter()
            .fold(InferenceResponse::new(), InferenceResponse::output))
    }
}

/// `input` in the graph's datatype `wanted`: unchanged when it already is, else converted
/// through tract's tensors by the runtime's conversion rules.
fn to_graph_datatype(input: Tensor, wanted: Datatype) -> Result<Tensor, Error> {
    if input.datatype == wanted {
        return Ok(input);
    }
    let target = datum_type(wanted).ok_or_else(|| {
        Error::invalid_input(format!(
            "input '{}' is {} but the model takes {}; send {}",
            input.name,
            input.datatype.protocol_name(),
            wanted.protocol_name(),
            wanted.protocol_name()
        ))
    })?;
    let converted = convert::to_tract(&input, target)?;
    convert::from_tract(&input.name, &converted)
}

/// tract's element type for a protocol datatype (none for BF16, which tract lacks).
fn datum_type(datatype: Datatype) -> Option<DatumType> {
    Some(match datatype {
        Datatype::Bool => DatumType::Bool,
        Datatype::Uint8 => DatumType::U8,
        Datatype::Uint16 => DatumType::U16,
        Datatype::Uint32 => DatumType::U32,
        Datatype::Uint64 => DatumType::U64,
        Datatype::Int8 => DatumType::I8,
        Datatype::Int16 => DatumType::I16,
        Datatype::Int32 => DatumType::I32,
        Datatype::Int64 => DatumType::I64,
        Datatype::Fp16 => DatumType::F16,
        Datatype::Fp32 => DatumType::F32,
        Datatype::Fp64 => DatumType::F64,
        Datatype::Bytes => DatumType::String,
        Datatype::Bf16 => return None,
    })
}
