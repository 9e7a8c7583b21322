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
use crate::workers::headers::Headers;
use crate::workers::{CallError, PoolError};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::time::{Duration, Instant};

/// What every step's request shares: the pipeline request's id, parameters and headers, and
/// the pipeline's deadline.
struct Shared {
    id: Option<String>,
    parameters: Parameters,
    headers: Headers,
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
        let inputs = std::mem::take(&mut request.inputs);
        let answers = self.run_steps(graph, metrics, &inputs, &shared).await?;
        let mut outputs = Vec::new();
        for binding in &graph.outputs {
            outputs.extend(gather(binding, &inputs, &answers, graph)?);
        }
        let outputs = requested(outputs, &request.outputs, &model.name)?;
        let headers = answers
            .into_iter()
            .flatten()
            .flat_map(|reply| reply.headers);
        let reply = Reply {
            response: InferenceResponse {
                model_name: model.name.clone(),
                model_version: model.version.clone(),
                id: shared.id,
                outputs,
                parameters: Parameters::new(),
            },
            headers: headers.collect(),
        };
        // The pipeline's compute is its steps' time, queues included.
        let timings = CallTimings {
            infer: started.elapsed(),
            ..CallTimings::default()
        };
        Ok((reply, timings))
    }

    /// Runs every step once the steps it depends on have answered; the replies by step.
    async fn run_steps(
        &self,
        graph: &Pipeline,
        metrics: &StepMetrics,
        inputs: &[Tensor],
        shared: &Shared,
    ) -> Result<Vec<Option<Reply>>, ServiceError> {
        let mut answers: Vec<Option<Reply>> = vec![None; graph.steps.len()];
        let mut started = vec![false; graph.steps.len()];
        let mut running = FuturesUnordered::new();
        loop {
            for (index, step) in graph.steps.iter().enumerate() {
                if started[index] || !step.after.iter().all(|&before| answers[before].is_some()) {
                    continue;
                }
                started[index] = true;
                let mut step_inputs = Vec::new();
                for binding in &step.inputs {
                    step_inputs.extend(gather(binding, inputs, &answers, graph)?);
                }
                running.push(self.run_step(index, step, step_inputs, shared, metrics));
            }
            match running.next().await {
                Some(result) => {
                    let (index, reply) = result?;
                    answers[index] = Some(reply);
                }
                None => return Ok(answers),
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

/// The tensors `binding` takes, from the request's inputs or a step's answer, named as the
/// binding names them.
fn gather(
    binding: &Binding,
    inputs: &[Tensor],
    answers: &[Option<Reply>],
    graph: &Pipeline,
) -> Result<Vec<Tensor>, ServiceError> {
    let answered = |step: usize| {
        answers[step]
            .as_ref()
            .map(|reply| reply.response.outputs.as_slice())
            .unwrap_or_default()
    };
    let (tensors, wanted): (&[Tensor], Option<&str>) = match &binding.source {
        Source::AllInputs => (inputs, None),
        Source::Input(name) => (inputs, Some(name)),
        Source::AllOutputs(step) => (answered(*step), None),
        Source::Output { step, name } => (answered(*step), Some(name)),
    };
    let Some(wanted) = wanted else {
        return Ok(tensors.to_vec());
    };
    let Some(found) = tensors.iter().find(|tensor| tensor.name == wanted) else {
        return Err(missing(binding, wanted, tensors, graph));
    };
    let mut tensor = found.clone();
    if let Some(name) = &binding.name {
        tensor.name = name.clone();
    }
    Ok(vec![tensor])
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
