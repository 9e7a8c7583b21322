//! A graph loaded in ONNX Runtime, and its runs: inputs checked against the graph by name and
//! datatype, outputs bounded by the model's output limit, every run stopped at its deadline.

use super::library::environment;
use super::values::{self, RawTensor};
use super::watchdog;
use crate::codec::DataType;
use ort::session::{RunOptions, Session, SessionInputValue};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// An input or output of a graph, as mlhost carries it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Port {
    pub name: String,
    pub datatype: DataType,
    /// `-1` for a variable dimension.
    pub shape: Vec<i64>,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum RunError {
    /// The inputs do not fit the graph.
    #[error("{0}")]
    InvalidInput(String),
    /// ONNX Runtime failed.
    #[error("ONNX Runtime failed: {0}")]
    Failed(String),
    /// The outputs are over the model's output limit.
    #[error("the outputs hold {size} bytes, over the model's limit of {limit}")]
    OutputTooLarge { size: u64, limit: u64 },
    /// The deadline passed and the run was stopped.
    #[error("the run was stopped at the call's deadline")]
    Deadline,
}

/// A loaded graph with its session's settings (one per model instance: runs take it mutably).
// `pub`: the generated WIT bindings re-export it as the `session` resource's host type.
#[allow(unreachable_pub)]
pub struct OnnxSession {
    session: Session,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
    /// The options of every run (the watchdog terminates a run through them).
    run_options: Arc<RunOptions>,
}

impl std::fmt::Debug for OnnxSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxSession")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl OnnxSession {
    /// Loads the ONNX file at `path` with `threads` intra-op threads.
    pub(crate) fn open(path: &Path, threads: usize) -> Result<Self, String> {
        let session = builder(threads)?
            .commit_from_file(path)
            .map_err(|error| format!("ONNX Runtime cannot load the model: {error}"))?;
        Self::describe(session)
    }

    /// Loads an ONNX graph from its bytes with `threads` intra-op threads.
    pub(crate) fn from_bytes(graph: &[u8], threads: usize) -> Result<Self, String> {
        let session = builder(threads)?
            .commit_from_memory(graph)
            .map_err(|error| format!("ONNX Runtime cannot load the model: {error}"))?;
        Self::describe(session)
    }

    /// Reads the graph's ports; refuses a graph whose values mlhost cannot carry.
    fn describe(session: Session) -> Result<Self, String> {
        let ports = |outlets: &[ort::value::Outlet], role: &str| {
            outlets
                .iter()
                .map(|outlet| {
                    let (datatype, shape) = values::port_type(outlet.dtype()).ok_or_else(|| {
                        format!(
                            "the graph's {role} '{}' is a {}, which mlhost cannot carry",
                            outlet.name(),
                            outlet.dtype()
                        )
                    })?;
                    Ok(Port {
                        name: outlet.name().to_string(),
                        datatype,
                        shape,
                    })
                })
                .collect::<Result<Vec<_>, String>>()
        };
        let inputs = ports(session.inputs(), "input")?;
        let outputs = ports(session.outputs(), "output")?;
        let run_options = RunOptions::new()
            .map_err(|error| format!("cannot set up ONNX Runtime's run options: {error}"))?;
        Ok(OnnxSession {
            session,
            inputs,
            outputs,
            run_options: Arc::new(run_options),
        })
    }

    /// The graph's inputs, in order.
    pub(crate) fn inputs(&self) -> &[Port] {
        &self.inputs
    }

    /// The graph's outputs, in order.
    pub(crate) fn outputs(&self) -> &[Port] {
        &self.outputs
    }

    /// Runs the graph on `inputs` (each graph input, by name), returning the outputs named in
    /// `wanted` (all, in order, when empty), at most `max_output_bytes` of them, stopping at
    /// `deadline`.
    pub(crate) fn run(
        &mut self,
        inputs: &[RawTensor],
        wanted: &[String],
        deadline: Instant,
        max_output_bytes: u64,
    ) -> Result<Vec<RawTensor>, RunError> {
        let values = self.input_values(inputs)?;
        let wanted = self.wanted_outputs(wanted)?;
        let watch = watchdog::watch(deadline, self.run_options.clone());
        let result = self.session.run_with_options(values, &self.run_options);
        if watch.finish() {
            // Stopped (or told to stop just as it ended): the next run must not be.
            self.run_options
                .unterminate()
                .map_err(|error| RunError::Failed(error.to_string()))?;
            if result.is_err() {
                return Err(RunError::Deadline);
            }
        }
        let outputs = match result {
            Err(error) if error.code() == ort::error::ErrorCode::InvalidArgument => {
                return Err(RunError::InvalidInput(error.to_string()));
            }
            Err(error) => return Err(RunError::Failed(error.to_string())),
            Ok(outputs) => outputs,
        };
        let mut answer = Vec::with_capacity(wanted.len());
        let mut size = 0u64;
        for name in wanted {
            let value = outputs
                .get(&name)
                .ok_or_else(|| RunError::Failed(format!("the graph gave no output '{name}'")))?;
            let tensor = values::from_value(&name, value).map_err(RunError::Failed)?;
            size += tensor.data.len() as u64;
            if size > max_output_bytes {
                return Err(RunError::OutputTooLarge {
                    size,
                    limit: max_output_bytes,
                });
            }
            answer.push(tensor);
        }
        Ok(answer)
    }

    /// The graph's inputs from `inputs`: each present once, of the graph's datatype.
    fn input_values<'a>(
        &self,
        inputs: &'a [RawTensor],
    ) -> Result<Vec<(String, SessionInputValue<'a>)>, RunError> {
        let names = || {
            let names: Vec<&str> = self.inputs.iter().map(|p| p.name.as_str()).collect();
            format!("{names:?}")
        };
        if let Some(unknown) = inputs
            .iter()
            .find(|input| !self.inputs.iter().any(|port| port.name == input.name))
        {
            return Err(RunError::InvalidInput(format!(
                "unknown input '{}'; the graph takes {}",
                unknown.name,
                names()
            )));
        }
        let mut values = Vec::with_capacity(self.inputs.len());
        for port in &self.inputs {
            let input = inputs
                .iter()
                .find(|input| input.name == port.name)
                .ok_or_else(|| {
                    RunError::InvalidInput(format!(
                        "missing input '{}'; the graph takes {}",
                        port.name,
                        names()
                    ))
                })?;
            if input.datatype != port.datatype {
                return Err(RunError::InvalidInput(format!(
                    "input '{}' is {}; the graph takes {}",
                    port.name, input.datatype, port.datatype
                )));
            }
            let value = values::to_value(input).map_err(RunError::InvalidInput)?;
            values.push((port.name.clone(), value));
        }
        Ok(values)
    }

    /// The names of the outputs to return: those asked for, each one of the graph's.
    fn wanted_outputs(&self, wanted: &[String]) -> Result<Vec<String>, RunError> {
        if wanted.is_empty() {
            return Ok(self.outputs.iter().map(|port| port.name.clone()).collect());
        }
        for name in wanted {
            if !self.outputs.iter().any(|port| &port.name == name) {
                let names: Vec<&str> = self.outputs.iter().map(|p| p.name.as_str()).collect();
                return Err(RunError::InvalidInput(format!(
                    "unknown output '{name}'; the graph gives {names:?}"
                )));
            }
        }
        Ok(wanted.to_vec())
    }
}

/// A session builder with mlhost's settings: `threads` intra-op threads, one inter-op thread.
fn builder(threads: usize) -> Result<ort::session::builder::SessionBuilder, String> {
    let environment =
        environment().ok_or_else(|| "ONNX Runtime's library is not loaded".to_string())?;
    let fail = |error: ort::Error<ort::session::builder::SessionBuilder>| {
        format!("cannot set up an ONNX Runtime session: {error}")
    };
    Session::builder(environment)
        .map_err(|error| format!("cannot set up an ONNX Runtime session: {error}"))?
        .with_intra_threads(threads.max(1))
        .map_err(fail)?
        .with_inter_threads(1)
        .map_err(fail)
}
