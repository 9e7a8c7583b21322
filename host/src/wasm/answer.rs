//! Where a runtime's outputs and descriptions land: the answer of one call, collected through
//! the WIT `host` interface and checked as it comes.
//!
//! A runtime hands its answer over one tensor (or parameter) per call, and each is checked
//! against the model's limits as it arrives: a hostile runtime can make the host hold at most
//! one call's arguments (each bounded by its own memory) beyond what the limits allow. Returned
//! values, by contrast, are copied whole by the component ABI before the host can look at them,
//! and many list descriptors may point at the same guest bytes — which is why the WIT contract
//! returns no lists.

use super::bindings::mlhost::runtime::types as wit;
use super::convert::{check_outputs, datatype_from_wit};
use super::stream::{PartialResponse, StreamSink};
use crate::codec::{ModelMetadata, ParameterValue, Parameters, Tensor, TensorMetadata};

/// Most outputs of one answer, and most inputs or outputs described in metadata.
pub(super) const MAX_TENSORS: usize = 4096;
/// Most dimensions of one tensor.
pub(super) const MAX_RANK: usize = 64;
/// Most parameters on one tensor, response or model.
pub(super) const MAX_PARAMETERS: usize = 1024;
/// What sending one streamed response costs the call's output budget, besides its outputs.
pub(super) const RESPONSE_COST: u64 = 256;

/// Most bytes of metadata (names, shapes, parameters).
pub(super) const MAX_METADATA_BYTES: u64 = 1 << 20;

/// What the runtime is doing, so that each host call is only valid at its time.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Phase {
    #[default]
    Idle,
    Predicting,
    Describing,
}

/// The answer being collected from the runtime during one call.
#[derive(Default)]
pub(super) struct Answer {
    /// Where responses go at once, when the call streams.
    stream: Option<StreamSink>,
    phase: Phase,
    /// Bytes the runtime may still hand over in this call.
    budget: u64,
    limit: u64,
    outputs: Vec<Tensor>,
    parameters: Parameters,
    metadata: ModelMetadata,
    /// Why the answer was refused, once it was.
    refused: Option<String>,
}

impl Answer {
    /// Starts collecting the outputs of a `predict` call, allowing `limit` bytes in all; a
    /// streaming call sends its responses to `stream` as the runtime ends each.
    pub(super) fn begin_predict(&mut self, limit: u64, stream: Option<StreamSink>) {
        *self = Answer {
            phase: Phase::Predicting,
            stream,
            budget: limit,
            limit,
            ..Answer::default()
        };
    }

    /// Starts collecting the description of a `metadata` call.
    pub(super) fn begin_describe(&mut self) {
        *self = Answer {
            phase: Phase::Describing,
            budget: MAX_METADATA_BYTES,
            limit: MAX_METADATA_BYTES,
            ..Answer::default()
        };
    }

    /// Ends the call: the outputs and parameters, or why they were refused.
    pub(super) fn finish_predict(&mut self) -> Result<(Vec<Tensor>, Parameters), String> {
        let answer = std::mem::take(self);
        match answer.refused {
            Some(reason) => Err(reason),
            None => Ok((answer.outputs, answer.parameters)),
        }
    }

    /// Ends the call: the metadata, or why it was refused.
    pub(super) fn finish_describe(&mut self) -> Result<ModelMetadata, String> {
        let answer = std::mem::take(self);
        match answer.refused {
            Some(reason) => Err(reason),
            None => Ok(answer.metadata),
        }
    }

    /// `add-output`: adds an output to the response being built.
    pub(super) fn add_output(
        &mut self,
        name: String,
        datatype: wit::Datatype,
        shape: Vec<u64>,
        data: Vec<u8>,
    ) -> Result<(), String> {
        let bytes = (name.len() + shape.len() * 8 + data.len()) as u64;
        self.admit(Phase::Predicting, bytes, "add-output")?;
        if self.outputs.len() >= MAX_TENSORS {
            return self.refuse(format!(
                "the runtime returned more than {MAX_TENSORS} outputs"
            ));
        }
        if self.outputs.iter().any(|output| output.name == name) {
            return self.refuse(format!("the runtime returned the output '{name}' twice"));
        }
        if shape.len() > MAX_RANK {
            return self.refuse(format!(
                "output '{name}' has more than {MAX_RANK} dimensions"
            ));
        }
        self.outputs.push(Tensor {
            name,
            datatype: datatype_from_wit(datatype),
            shape,
            data,
            parameters: Parameters::new(),
        });
        Ok(())
    }

    /// `add-output-parameter`: a parameter of the last output named `output`, or of the response.
    pub(super) fn add_output_parameter(
        &mut self,
        output: Option<String>,
        name: String,
        value: wit::ParameterValue,
    ) -> Result<(), String> {
        let (value, value_bytes) = parameter_value(value);
        let bytes = (name.len() + output.as_ref().map_or(0, String::len)) as u64 + value_bytes;
        self.admit(Phase::Predicting, bytes, "add-output-parameter")?;
        push_parameter(
            self,
            |answer| match &output {
                None => Some(&mut answer.parameters),
                Some(output) => answer
                    .outputs
                    .iter_mut()
                    .rev()
                    .find(|tensor| &tensor.name == output)
                    .map(|tensor| &mut tensor.parameters),
            },
            name,
            value,
        )
    }

    /// `streaming`: whether the call in progress streams its responses.
    pub(super) fn streaming(&self) -> bool {
        self.phase == Phase::Predicting && self.stream.is_some()
    }

    /// `send-response`: takes the response built since the last one, checked, with where it
    /// goes; sending it is the caller's (it may wait, see [`super::stream`]).
    pub(super) fn take_response(&mut self) -> Result<(&StreamSink, PartialResponse), String> {
        // Each response costs the model's output budget something, empty or not: a runtime
        // cannot send responses without end within its limit.
        self.admit(Phase::Predicting, RESPONSE_COST, "send-response")?;
        if self.stream.is_none() {
            return Err("this call does not stream: return one response".to_string());
        }
        if let Err(reason) = check_outputs(&self.outputs) {
            self.refuse(format!("the runtime returned an invalid output: {reason}"))?;
        }
        let response = PartialResponse::new(
            std::mem::take(&mut self.outputs),
            std::mem::take(&mut self.parameters),
        );
        let stream = self.stream.as_ref().expect("checked above");
        Ok((stream, response))
    }

    /// `describe-platform`: the model's platform.
    pub(super) fn describe_platform(&mut self, platform: String) -> Result<(), String> {
        self.admit(
            Phase::Describing,
            platform.len() as u64,
            "describe-platform",
        )?;
        self.metadata.platform = platform;
        Ok(())
    }

    /// `describe-tensor`: one input or output of the model.
    pub(super) fn describe_tensor(
        &mut self,
        role: wit::TensorRole,
        name: String,
        datatype: wit::Datatype,
        shape: Vec<i64>,
    ) -> Result<(), String> {
        self.admit(
            Phase::Describing,
            (name.len() + shape.len() * 8) as u64,
            "describe-tensor",
        )?;
        if shape.len() > MAX_RANK {
            return self.refuse(format!("'{name}' has more than {MAX_RANK} dimensions"));
        }
        let tensors = match role {
            wit::TensorRole::Input => &mut self.metadata.inputs,
            wit::TensorRole::Output => &mut self.metadata.outputs,
        };
        if tensors.len() >= MAX_TENSORS {
            return self.refuse(format!("more than {MAX_TENSORS} tensors described"));
        }
        if tensors.iter().any(|tensor| tensor.name == name) {
            return self.refuse(format!("'{name}' is described twice"));
        }
        tensors.push(TensorMetadata {
            name,
            datatype: datatype_from_wit(datatype),
            shape,
            parameters: Parameters::new(),
        });
        Ok(())
    }

    /// `describe-parameter`: a parameter of a described tensor, or of the model.
    pub(super) fn describe_parameter(
        &mut self,
        tensor: Option<(wit::TensorRole, String)>,
        name: String,
        value: wit::ParameterValue,
    ) -> Result<(), String> {
        let (value, value_bytes) = parameter_value(value);
        let bytes =
            (name.len() + tensor.as_ref().map_or(0, |(_, name)| name.len())) as u64 + value_bytes;
        self.admit(Phase::Describing, bytes, "describe-parameter")?;
        push_parameter(
            self,
            |answer| match &tensor {
                None => Some(&mut answer.metadata.parameters),
                Some((role, tensor)) => {
                    let tensors = match role {
                        wit::TensorRole::Input => &mut answer.metadata.inputs,
                        wit::TensorRole::Output => &mut answer.metadata.outputs,
                    };
                    tensors
                        .iter_mut()
                        .find(|described| &described.name == tensor)
                        .map(|described| &mut described.parameters)
                }
            },
            name,
            value,
        )
    }

    /// Checks a host call against the phase and the budget; remembers the first refusal.
    fn admit(&mut self, phase: Phase, bytes: u64, call: &str) -> Result<(), String> {
        if let Some(reason) = &self.refused {
            return Err(reason.clone());
        }
        let refusal = if self.phase != phase {
            Some(format!("{call} is not valid at this point of the call"))
        } else if bytes > self.budget {
            let what = if phase == Phase::Describing {
                "metadata"
            } else {
                "output"
            };
            Some(format!(
                "the runtime returned more than the {} bytes of {what} allowed",
                self.limit
            ))
        } else {
            None
        };
        match refusal {
            Some(reason) => {
                self.refused = Some(reason.clone());
                Err(reason)
            }
            None => {
                self.budget -= bytes;
                Ok(())
            }
        }
    }

    fn refuse(&mut self, reason: String) -> Result<(), String> {
        self.refused.get_or_insert(reason.clone());
        Err(reason)
    }
}

fn parameter_value(value: wit::ParameterValue) -> (ParameterValue, u64) {
    match value {
        wit::ParameterValue::Bool(value) => (ParameterValue::Bool(value), 1),
        wit::ParameterValue::Int64(value) => (ParameterValue::Int64(value), 8),
        wit::ParameterValue::Uint64(value) => (ParameterValue::Uint64(value), 8),
        wit::ParameterValue::Double(value) => (ParameterValue::Double(value), 8),
        wit::ParameterValue::String(value) => {
            let len = value.len() as u64;
            (ParameterValue::String(value), len)
        }
    }
}

fn push_parameter(
    answer: &mut Answer,
    target: impl FnOnce(&mut Answer) -> Option<&mut Parameters>,
    name: String,
    value: ParameterValue,
) -> Result<(), String> {
    match target(answer) {
        Some(parameters) if parameters.len() < MAX_PARAMETERS => {
            parameters.push((name, value));
            Ok(())
        }
        Some(_) => answer.refuse(format!(
            "more than {MAX_PARAMETERS} parameters on one tensor"
        )),
        None => answer.refuse(format!("no tensor for the parameter '{name}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_once_and_for_all() {
        let mut answer = Answer::default();
        answer.begin_predict(10, None);
        assert!(answer.admit(Phase::Predicting, 6, "add-output").is_ok());
        assert!(answer.admit(Phase::Predicting, 6, "add-output").is_err());
        assert!(
            answer.admit(Phase::Predicting, 1, "add-output").is_err(),
            "refusals stick"
        );
        assert!(
            answer
                .finish_predict()
                .unwrap_err()
                .contains("more than the 10 bytes of output")
        );
        assert!(
            answer.admit(Phase::Predicting, 1, "add-output").is_err(),
            "idle after finishing"
        );
    }

    #[test]
    fn calls_out_of_phase_are_refused() {
        let mut answer = Answer::default();
        answer.begin_describe();
        assert!(
            answer
                .admit(Phase::Predicting, 1, "add-output")
                .unwrap_err()
                .contains("not valid")
        );
    }
}
