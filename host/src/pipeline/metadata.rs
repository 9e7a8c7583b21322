//! A pipeline's metadata, derived from its steps' models when it loads: its inputs are those
//! of the steps that take the request's tensors, its outputs those of the steps it answers
//! with; references to outputs a step's model does not answer are refused here.

use super::{Binding, Pipeline, Source};
use crate::codec::{ModelMetadata, Parameters, TensorMetadata};

/// The platform a pipeline reports (unless its settings name one).
pub(crate) const PLATFORM: &str = "pipeline";

/// The metadata of `pipeline`, whose step `i` runs a model described by `steps[i]`.
pub(crate) fn derive(
    pipeline: &Pipeline,
    steps: &[&ModelMetadata],
) -> Result<ModelMetadata, String> {
    check_outputs_exist(pipeline, steps)?;
    check_inputs_taken(pipeline, steps)?;
    let mut inputs: Vec<TensorMetadata> = Vec::new();
    for (step, metadata) in pipeline.steps.iter().zip(steps) {
        for binding in &step.inputs {
            for tensor in step_inputs(&step.name, binding, metadata)? {
                if !inputs.iter().any(|known| known.name == tensor.name) {
                    inputs.push(tensor);
                }
            }
        }
    }
    let mut outputs = Vec::new();
    for binding in &pipeline.outputs {
        outputs.extend(answered(binding, steps));
    }
    let mut parameters = Parameters::new();
    let names: Vec<&str> = pipeline
        .steps
        .iter()
        .map(|step| step.name.as_str())
        .collect();
    parameters.push((
        "steps".to_string(),
        crate::codec::ParameterValue::String(names.join(",")),
    ));
    Ok(ModelMetadata {
        platform: PLATFORM.to_string(),
        inputs,
        outputs,
        parameters,
    })
}

/// Refuses a reference to an output its step's model does not list (when it lists any).
fn check_outputs_exist(pipeline: &Pipeline, steps: &[&ModelMetadata]) -> Result<(), String> {
    for binding in pipeline.bindings() {
        let Source::Output { step, name } = &binding.source else {
            continue;
        };
        let listed = &steps[*step].outputs;
        if !listed.is_empty() && !listed.iter().any(|output| output.name == *name) {
            let names: Vec<&str> = listed.iter().map(|output| output.name.as_str()).collect();
            return Err(format!(
                "step '{}' (model '{}') answers no output '{name}'; it answers {names:?}",
                pipeline.steps[*step].name, pipeline.steps[*step].model
            ));
        }
    }
    Ok(())
}

/// Refuses a tensor given to a step under a name its model does not take, when the model
/// takes several named inputs (a model of one input may take it under other names, such as
/// the columns of a table).
fn check_inputs_taken(pipeline: &Pipeline, steps: &[&ModelMetadata]) -> Result<(), String> {
    for (step, metadata) in pipeline.steps.iter().zip(steps) {
        if metadata.inputs.len() < 2 {
            continue;
        }
        for binding in &step.inputs {
            let target = match (&binding.name, &binding.source) {
                (Some(name), _) => name,
                (None, Source::Input(name) | Source::Output { name, .. }) => name,
                (None, Source::AllInputs | Source::AllOutputs(_)) => continue,
            };
            if !metadata.inputs.iter().any(|input| input.name == *target) {
                let names: Vec<&str> = metadata.inputs.iter().map(|i| i.name.as_str()).collect();
                return Err(format!(
                    "step '{}' takes no input '{target}'; its model takes {names:?}",
                    step.name
                ));
            }
        }
    }
    Ok(())
}

/// The pipeline inputs a step's binding takes, described as the step's model describes the
/// inputs they become.
fn step_inputs(
    step: &str,
    binding: &Binding,
    metadata: &ModelMetadata,
) -> Result<Vec<TensorMetadata>, String> {
    match &binding.source {
        Source::AllInputs => Ok(metadata.inputs.clone()),
        Source::Input(name) => {
            let target = binding.name.as_deref().unwrap_or(name);
            let described = match metadata.inputs.as_slice() {
                [] => return Ok(Vec::new()),
                [only] => Some(only),
                many => many.iter().find(|input| input.name == target),
            };
            let Some(described) = described else {
                let names: Vec<&str> = metadata.inputs.iter().map(|i| i.name.as_str()).collect();
                return Err(format!(
                    "step '{step}' takes no input '{target}'; its model takes {names:?}"
                ));
            };
            Ok(vec![TensorMetadata {
                name: name.clone(),
                ..described.clone()
            }])
        }
        Source::Output { .. } | Source::AllOutputs(_) => Ok(Vec::new()),
    }
}

/// What one output binding of the pipeline answers, as its step's model describes it.
fn answered(binding: &Binding, steps: &[&ModelMetadata]) -> Vec<TensorMetadata> {
    match &binding.source {
        Source::AllOutputs(step) => steps[*step].outputs.clone(),
        Source::Output { step, name } => steps[*step]
            .outputs
            .iter()
            .find(|output| output.name == *name)
            .map(|output| TensorMetadata {
                name: binding.name.clone().unwrap_or_else(|| name.clone()),
                ..output.clone()
            })
            .into_iter()
            .collect(),
        // The request's inputs, answered unchanged: described as the pipeline's inputs are.
        Source::Input(_) | Source::AllInputs => Vec::new(),
    }
}
