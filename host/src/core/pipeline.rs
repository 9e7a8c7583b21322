//! Running a pipeline's request: each step a request to its model, on that model's workers
//! and within its limits, started as soon as the steps it takes outputs of have answered (steps
//! that do not depend on each other run at the same time), all under the pipeline's one
//! deadline. The first step to fail fails the request, naming the step; the steps still
//! running are cancelled with it.

use super::InferenceService;
use super::checks::prepare_pipeline;
use super::context::RequestContext;
use super::error::ServiceError;
use super::infer::Reply;
use crate::codec::{
    InferenceRequest, InferenceResponse, Parameters, RequestedOutput, TIMEOUT_PARAMETER, Tensor,
    content_type, quoted,
};
use crate::metrics::StepMetrics;
use crate::pipeline::{Binding, Pipeline, Source, Step};
use crate::repository::LoadedModel;
use crate::stats::CallTimings;
use crate::workers::headers::{Headers, RequestHeaders};
use crate::workers::{CallError, PoolError};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::time::{Duration, Instant};

/// What every step's request shares: the pipeline request's id, parameters and headers, and
/// the pipeline's deadline.
struct Shared {
    id: Option<String>,
    parameters: Parameters,
    headers: RequestHeaders,
    deadline: Instant,
    timeout: Duration,
}

impl InferenceService {
    /// Runs a request through `graph`, the pipeline of `model`, whose steps' series are
    /// `metrics`; answers with the outputs the pipeline declares (those the request asks for).
    pub(super) async fn run_pipeline(
        &self,
        model: &LoadedModel,
        graph: &Pipeline,
        metrics: &StepMetrics,
        mut request: InferenceRequest,
        context: RequestContext,
        received: Instant,
    ) -> Result<(Reply, CallTimings), ServiceError> {
        let timeout = prepare_pipeline(model, &request, &context)?;
        let started = Instant::now();
        let shared = Shared {
            id: request.id.clone(),
            parameters: forwarded(&request.parameters),
            headers: context.headers,
            deadline: received + timeout,
            timeout,
        };
        let mut tensors = Tensors::new(graph, std::mem::take(&mut request.inputs));
        self.run_steps(graph, metrics, &mut tensors, &shared)
            .await?;
        let mut outputs = Vec::new();
        for binding in &graph.outputs {
            outputs.extend(tensors.take(binding, graph)?);
        }
        let outputs = requested(outputs, &request.outputs, &model.name)?;
        let reply = Reply {
            response: InferenceResponse {
                model_name: model.name.clone(),
                model_version: model.version.clone(),
                id: shared.id,
                outputs,
                parameters: Parameters::new(),
            },
            headers: tensors.headers,
        };
        // The pipeline's compute is its steps' time, queues included.
        let timings = CallTimings {
            infer: started.elapsed(),
            ..CallTimings::default()
        };
        Ok((reply, timings))
    }

    /// Runs every step once the steps it depends on have answered, keeping their answers.
    async fn run_steps(
        &self,
        graph: &Pipeline,
        metrics: &StepMetrics,
        tensors: &mut Tensors,
        shared: &Shared,
    ) -> Result<(), ServiceError> {
        let mut started = vec![false; graph.steps.len()];
        let mut running = FuturesUnordered::new();
        loop {
            for (index, step) in graph.steps.iter().enumerate() {
                if started[index] || !step.after.iter().all(|&before| tensors.answered(before)) {
                    continue;
                }
                started[index] = true;
                let mut step_inputs = Vec::new();
                for binding in &step.inputs {
                    step_inputs.extend(tensors.take(binding, graph)?);
                }
                running.push(self.run_step(index, step, step_inputs, shared, metrics));
            }
            match running.next().await {
                Some(result) => {
                    let (index, reply) = result?;
                    tensors.keep(index, reply);
                }
                None => return Ok(()),
            }
        }
    }

    /// Runs one step: a request to its model, as a client's request to it would run.
    async fn run_step(
        &self,
        index: usize,
        step: &Step,
        inputs: Vec<Tensor>,
        shared: &Shared,
        metrics: &StepMetrics,
    ) -> Result<(usize, Reply), ServiceError> {
        let started = Instant::now();
        let outcome = self.call_step(step, inputs, shared).await;
        match outcome {
            Ok(reply) => {
                metrics.succeeded(index, started.elapsed());
                Ok((index, reply))
            }
            Err(error) => {
                metrics.failed(index, started.elapsed());
                Err(ServiceError::Step {
                    step: step.name.clone(),
                    model: step.model.clone(),
                    source: Box::new(error),
                })
            }
        }
    }

    async fn call_step(
        &self,
        step: &Step,
        inputs: Vec<Tensor>,
        shared: &Shared,
    ) -> Result<Reply, ServiceError> {
        let model = self.model(&step.model, step.version.as_deref())?;
        if model.pipeline().is_some() {
            return Err(ServiceError::BadRequest(format!(
                "model '{}' is a pipeline: a pipeline's steps are models with runtimes",
                quoted(&step.model)
            )));
        }
        let remaining = shared.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            let expired = CallError::DeadlineExceeded(shared.timeout);
            return Err(PoolError::Call(expired).into());
        }
        let outputs = step.requested.iter().flatten().map(|name| RequestedOutput {
            name: name.clone(),
            parameters: Parameters::new(),
        });
        let request = InferenceRequest {
            id: shared.id.clone(),
            inputs,
            outputs: outputs.collect(),
            parameters: shared.parameters.clone(),
        };
        let context = RequestContext {
            timeout: Some(remaining),
            headers: shared.headers.clone(),
        };
        self.infer_model(&model, request, context).await
    }
}

/// The request parameters each step's request carries: all but the deadline (the pipeline's
/// applies) and the request's content type (which describes the pipeline's inputs).
fn forwarded(parameters: &Parameters) -> Parameters {
    parameters
        .iter()
        .filter(|(name, _)| name != TIMEOUT_PARAMETER && name != content_type::CONTENT_TYPE)
        .cloned()
        .collect()
}

/// The tensors of a pipeline's request so far: the request's inputs and each answered step's
/// outputs. Each is copied to the bindings that take it but the last, which it is handed to.
struct Tensors {
    inputs: Vec<Tensor>,
    /// Each step's outputs, once it has answered.
    outputs: Vec<Option<Vec<Tensor>>>,
    /// The bindings yet to take from the request's inputs (last) and from each step.
    uses: Vec<usize>,
    /// The headers the steps' runtimes set, in the order they answered.
    headers: Headers,
}

impl Tensors {
    fn new(graph: &Pipeline, inputs: Vec<Tensor>) -> Self {
        let steps = graph.steps.len();
        let mut uses = vec![0; steps + 1];
        for binding in graph.bindings() {
            uses[slot(&binding.source, steps)] += 1;
        }
        Tensors {
            inputs,
            outputs: vec![None; steps],
            uses,
            headers: Headers::new(),
        }
    }

    fn answered(&self, step: usize) -> bool {
        self.outputs[step].is_some()
    }

    /// Keeps step `step`'s answer.
    fn keep(&mut self, step: usize, reply: Reply) {
        self.outputs[step] = Some(reply.response.outputs);
        self.headers.extend(reply.headers);
    }

    /// The tensors `binding` takes, named as it names them.
    fn take(&mut self, binding: &Binding, graph: &Pipeline) -> Result<Vec<Tensor>, ServiceError> {
        let at = slot(&binding.source, graph.steps.len());
        self.uses[at] = self.uses[at].saturating_sub(1);
        let last = self.uses[at] == 0;
        let tensors = match &binding.source {
            Source::AllInputs | Source::Input(_) => &mut self.inputs,
            Source::AllOutputs(step) | Source::Output { step, .. } => {
                match self.outputs[*step].as_mut() {
                    Some(outputs) => outputs,
                    None => {
                        let message = format!("step {step} was read before it answered");
                        return Err(ServiceError::internal(message, None));
                    }
                }
            }
        };
        let wanted = match &binding.source {
            Source::Input(name) | Source::Output { name, .. } => name,
            Source::AllInputs | Source::AllOutputs(_) => {
                return Ok(match last {
                    true => std::mem::take(tensors),
                    false => tensors.clone(),
                });
            }
        };
        let Some(found) = tensors.iter().position(|tensor| tensor.name == *wanted) else {
            return Err(missing(binding, wanted, tensors, graph));
        };
        let mut tensor = match last {
            true => tensors.swap_remove(found),
            false => tensors[found].clone(),
        };
        if let Some(name) = &binding.name {
            tensor.name = name.clone();
        }
        Ok(vec![tensor])
    }
}

/// Where a source's tensors are counted in [`Tensors::uses`]: its step, or after the steps for
/// the request's inputs.
fn slot(source: &Source, steps: usize) -> usize {
    match source {
        Source::Output { step, .. } | Source::AllOutputs(step) => *step,
        Source::Input(_) | Source::AllInputs => steps,
    }
}

/// The error of a tensor a binding names that its source does not have.
fn missing(binding: &Binding, wanted: &str, present: &[Tensor], graph: &Pipeline) -> ServiceError {
    let names: Vec<&str> = present.iter().map(|tensor| tensor.name.as_str()).collect();
    match &binding.source {
        Source::Output { step, .. } => {
            let step = &graph.steps[*step];
            ServiceError::internal(
                format!(
                    "pipeline step '{}' (model '{}') answered no output '{}' (it answered \
                     {names:?})",
                    step.name,
                    step.model,
                    quoted(wanted)
                ),
                None,
            )
        }
        _ => ServiceError::BadRequest(format!(
            "the pipeline takes an input '{}', which the request does not have (it has {names:?})",
            quoted(wanted)
        )),
    }
}

/// The outputs the request asks for (all when it names none), in the order it asks.
fn requested(
    mut outputs: Vec<Tensor>,
    asked: &[RequestedOutput],
    pipeline: &str,
) -> Result<Vec<Tensor>, ServiceError> {
    if asked.is_empty() {
        return Ok(outputs);
    }
    let mut chosen = Vec::with_capacity(asked.len());
    for wanted in asked {
        let Some(at) = outputs.iter().position(|output| output.name == wanted.name) else {
            let names: Vec<&str> = outputs.iter().map(|output| output.name.as_str()).collect();
            return Err(ServiceError::BadRequest(format!(
                "pipeline '{pipeline}' has no output '{}'; it answers {names:?}",
                quoted(&wanted.name)
            )));
        };
        chosen.push(outputs.swap_remove(at));
    }
    Ok(chosen)
}
