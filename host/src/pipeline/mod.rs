//! Pipelines: a model made of other models of the repository, each a step whose inputs come
//! from the pipeline's request or from earlier steps' outputs (docs/pipelines.md).
//!
//! This module holds the graph, checked when the pipeline loads ([`Pipeline::from_settings`]):
//! references resolved to steps, no cycles, the order steps may run in. The core runs it
//! (`core::pipeline`), each step on its own model's workers; the repository derives the
//! pipeline's metadata from its steps' (`metadata`).

pub(crate) mod metadata;

use crate::config::{PipelineSettings, TensorSources};

/// The most steps a pipeline may have.
pub(crate) const MAX_STEPS: usize = 64;

/// A pipeline's graph, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipeline {
    /// The steps, in the order declared.
    pub steps: Vec<Step>,
    /// What the pipeline answers.
    pub outputs: Vec<Binding>,
}

/// One step: the model it runs and where its inputs come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    pub name: String,
    pub model: String,
    pub version: Option<String>,
    pub inputs: Vec<Binding>,
    /// The steps whose outputs it takes (indices into [`Pipeline::steps`]), each once.
    pub after: Vec<usize>,
    /// The outputs the step's model is asked for: those later steps or the pipeline take by
    /// name; `None` when something takes all of them (the model's default outputs).
    pub requested: Option<Vec<String>>,
}

/// A tensor (or all tensors) of a source, under its own name or the one given.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Binding {
    /// The name it takes (`None`: its own).
    pub name: Option<String>,
    pub source: Source,
}

/// Where tensors come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    /// The request's input of that name.
    Input(String),
    /// Every input of the request.
    AllInputs,
    /// Step `step`'s output of that name.
    Output { step: usize, name: String },
    /// Every output step `step` answered.
    AllOutputs(usize),
}

impl Pipeline {
    /// Checks the pipeline of model `model` as its settings declare it.
    pub(crate) fn from_settings(
        model: &str,
        settings: &PipelineSettings,
    ) -> Result<Pipeline, String> {
        check_steps(model, settings)?;
        let names: Vec<&str> = settings
            .steps
            .iter()
            .map(|step| step.name.as_str())
            .collect();
        let mut steps = Vec::with_capacity(names.len());
        for (index, step) in settings.steps.iter().enumerate() {
            let default = match index {
                0 => vec![Binding::all(Source::AllInputs)],
                _ => vec![Binding::all(Source::AllOutputs(index - 1))],
            };
            let inputs = match &step.inputs {
                Some(sources) => bindings(sources, &names)
                    .map_err(|error| format!("step '{}': inputs: {error}", step.name))?,
                None => default,
            };
            let mut after: Vec<usize> = inputs.iter().filter_map(Binding::step).collect();
            after.sort_unstable();
            after.dedup();
            steps.push(Step {
                name: step.name.clone(),
                model: step.model.clone().unwrap_or_else(|| step.name.clone()),
                version: step.version.clone(),
                inputs,
                after,
                requested: None,
            });
        }
        let outputs = match &settings.outputs {
            Some(sources) => {
                bindings(sources, &names).map_err(|error| format!("outputs: {error}"))?
            }
            None => vec![Binding::all(Source::AllOutputs(steps.len() - 1))],
        };
        let mut pipeline = Pipeline { steps, outputs };
        pipeline.check_acyclic()?;
        pipeline.set_requested_outputs();
        Ok(pipeline)
    }

    /// Refuses a graph with a cycle, naming the steps on it.
    fn check_acyclic(&self) -> Result<(), String> {
        let mut done = vec![false; self.steps.len()];
        let mut progress = true;
        while progress {
            progress = false;
            for (index, step) in self.steps.iter().enumerate() {
                if !done[index] && step.after.iter().all(|&before| done[before]) {
                    done[index] = true;
                    progress = true;
                }
            }
        }
        let stuck: Vec<&str> = (self.steps.iter().zip(&done))
            .filter(|(_, done)| !**done)
            .map(|(step, _)| step.name.as_str())
            .collect();
        match stuck.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "the steps {stuck:?} wait for each other (a cycle): each step may only take \
                 outputs of steps that do not take its own"
            )),
        }
    }

    /// Works out which outputs each step's model is asked for.
    fn set_requested_outputs(&mut self) {
        let uses: Vec<&Source> = self.bindings().map(|binding| &binding.source).collect();
        let requested: Vec<Option<Vec<String>>> = (0..self.steps.len())
            .map(|index| {
                let mut names: Vec<String> = Vec::new();
                for source in &uses {
                    match source {
                        Source::AllOutputs(step) if *step == index => return None,
                        Source::Output { step, name }
                            if *step == index && !names.contains(name) =>
                        {
                            names.push(name.clone())
                        }
                        _ => {}
                    }
                }
                Some(names)
            })
            .collect();
        for (step, requested) in self.steps.iter_mut().zip(requested) {
            step.requested = requested;
        }
    }
}

impl Pipeline {
    /// Every binding of the graph: the steps' inputs, then the pipeline's outputs.
    pub(crate) fn bindings(&self) -> impl Iterator<Item = &Binding> {
        (self.steps.iter().flat_map(|step| &step.inputs)).chain(&self.outputs)
    }
}

impl Binding {
    fn all(source: Source) -> Binding {
        Binding { name: None, source }
    }

    /// The step it takes outputs of, if any.
    fn step(&self) -> Option<usize> {
        match self.source {
            Source::Output { step, .. } | Source::AllOutputs(step) => Some(step),
            Source::Input(_) | Source::AllInputs => None,
        }
    }
}

/// Checks the steps' count and names.
fn check_steps(model: &str, settings: &PipelineSettings) -> Result<(), String> {
    if settings.steps.is_empty() || settings.steps.len() > MAX_STEPS {
        return Err(format!(
            "a pipeline has 1 to {MAX_STEPS} steps; this one has {}",
            settings.steps.len()
        ));
    }
    for (index, step) in settings.steps.iter().enumerate() {
        let name = step.name.as_str();
        if name.is_empty() || name.contains('.') || name == "inputs" {
            return Err(format!(
                "step {}: the name '{name}' is not usable: give a name without dots, \
                 other than `inputs`",
                index + 1
            ));
        }
        if settings.steps[..index].iter().any(|step| step.name == name) {
            return Err(format!("two steps are named '{name}'"));
        }
        if step.model.as_deref().unwrap_or(name) == model {
            return Err(format!("step '{name}' runs the pipeline '{model}' itself"));
        }
    }
    Ok(())
}

/// The bindings of a list of references, or of named references.
fn bindings(sources: &TensorSources, steps: &[&str]) -> Result<Vec<Binding>, String> {
    match sources {
        TensorSources::List(references) => references
            .iter()
            .map(|reference| Ok(Binding::all(source(reference, steps)?)))
            .collect(),
        TensorSources::Named(pairs) => pairs
            .iter()
            .map(|(name, reference)| match source(reference, steps)? {
                source @ (Source::Input(_) | Source::Output { .. }) => Ok(Binding {
                    name: Some(name.clone()),
                    source,
                }),
                _ => Err(format!(
                    "`{name}`: `{reference}` names several tensors; name one \
                     (`inputs.NAME` or `STEP.outputs.NAME`)"
                )),
            })
            .collect(),
    }
}

/// Reads one reference: `inputs`, `inputs.NAME`, `STEP`, `STEP.outputs`, `STEP.outputs.NAME`.
fn source(reference: &str, steps: &[&str]) -> Result<Source, String> {
    let (head, rest) = match reference.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (reference, None),
    };
    if head == "inputs" {
        return match rest {
            None => Ok(Source::AllInputs),
            Some(name) if !name.is_empty() => Ok(Source::Input(name.to_string())),
            Some(_) => Err(format!("`{reference}`: no tensor named")),
        };
    }
    let Some(step) = steps.iter().position(|name| *name == head) else {
        return Err(format!(
            "`{reference}`: no step is named '{head}' (references are `inputs.NAME` or \
             `STEP.outputs.NAME`; the steps are {steps:?})"
        ));
    };
    match rest {
        None | Some("outputs") => Ok(Source::AllOutputs(step)),
        Some(rest) => match rest.strip_prefix("outputs.") {
            Some(name) if !name.is_empty() => Ok(Source::Output {
                step,
                name: name.to_string(),
            }),
            _ => Err(format!(
                "`{reference}`: a step's tensors are `{head}.outputs.NAME`"
            )),
        },
    }
}

#[cfg(test)]
mod tests;
