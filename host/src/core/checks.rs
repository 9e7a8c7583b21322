//! What the host checks of a request before a runtime sees it, and the deadline it runs under.

use super::context::RequestContext;
use super::error::ServiceError;
use crate::codec::quoted;
use crate::codec::{
    InferenceRequest, ParameterValue, TIMEOUT_PARAMETER, Tensor, TensorMetadata, content_type,
};
use crate::repository::LoadedModel;
use std::collections::HashSet;
use std::time::Duration;

/// Makes a request ready for the runtime: fills in and decodes its content types and checks it
/// against the model. Returns how long it may run: the shortest of the client's timeout, the
/// request's `timeout` parameter and the model's limit.
pub(super) fn prepare(
    model: &LoadedModel,
    request: &mut InferenceRequest,
    context: &RequestContext,
) -> Result<Duration, ServiceError> {
    content_type::apply_defaults(
        request,
        model.default_content_type.as_deref(),
        &model.metadata.inputs,
    );
    content_type::decode_inputs(request).map_err(ServiceError::BadRequest)?;
    check_request(request)?;
    if let Some(columns) = &model.columns
        && columns.applies(request)
    {
        // The columns become the runtime's matrix, made to fit it: nothing more to check.
        columns
            .assemble(request, &model.name)
            .map_err(ServiceError::BadRequest)?;
    } else {
        check_known(model, request)?;
    }
    run_time(model, request, context)
}

/// Checks a pipeline's request as far as the pipeline can (its steps check the rest) and
/// returns how long it may run, all steps together: the shortest of the client's timeout, the
/// request's `timeout` parameter and the pipeline's `timeout_seconds`.
pub(super) fn prepare_pipeline(
    model: &LoadedModel,
    request: &InferenceRequest,
    context: &RequestContext,
) -> Result<Duration, ServiceError> {
    check_request(request)?;
    run_time(model, request, context)
}

/// How long a request may run: the shortest of the client's timeout, the request's `timeout`
/// parameter and the model's limit.
fn run_time(
    model: &LoadedModel,
    request: &InferenceRequest,
    context: &RequestContext,
) -> Result<Duration, ServiceError> {
    let requested = requested_timeout(request)?;
    Ok([requested, context.timeout]
        .into_iter()
        .flatten()
        .fold(model.limits.timeout, Duration::min))
}

/// The request's own deadline: the `timeout` parameter, in microseconds as Triton's.
fn requested_timeout(request: &InferenceRequest) -> Result<Option<Duration>, ServiceError> {
    let Some((_, value)) = request
        .parameters
        .iter()
        .find(|(name, _)| name == TIMEOUT_PARAMETER)
    else {
        return Ok(None);
    };
    let micros = match value {
        ParameterValue::Int64(micros) if *micros > 0 => *micros as u64,
        ParameterValue::Uint64(micros) if *micros > 0 => *micros,
        _ => {
            return Err(ServiceError::BadRequest(format!(
                "the `{TIMEOUT_PARAMETER}` parameter must be a positive number of microseconds"
            )));
        }
    };
    Ok(Some(Duration::from_micros(micros)))
}

/// Checks what the host can check of any request: inputs present, unique and well-formed.
fn check_request(request: &InferenceRequest) -> Result<(), ServiceError> {
    if request.inputs.is_empty() {
        return Err(ServiceError::BadRequest(
            "the request has no inputs".to_string(),
        ));
    }
    let mut seen = HashSet::with_capacity(request.inputs.len());
    for input in &request.inputs {
        if !seen.insert(input.name.as_str()) {
            return Err(ServiceError::BadRequest(format!(
                "input '{}' is given twice",
                quoted(&input.name)
            )));
        }
        input.validate().map_err(|error| {
            ServiceError::BadRequest(format!("input '{}': {error}", quoted(&input.name)))
        })?;
    }
    Ok(())
}

/// Checks the request's inputs against the model's: known to it when the model describes its
/// inputs, and of the declared datatype and shape when model-settings.json declares them.
fn check_known(model: &LoadedModel, request: &InferenceRequest) -> Result<(), ServiceError> {
    let strict = !model.declared_inputs.is_empty();
    let declared = if strict {
        &model.declared_inputs
    } else {
        &model.metadata.inputs
    };
    if declared.is_empty() {
        return Ok(());
    }
    for input in &request.inputs {
        let Some(expected) = declared.iter().find(|tensor| tensor.name == input.name) else {
            let names: Vec<&str> = declared.iter().map(|tensor| tensor.name.as_str()).collect();
            return Err(ServiceError::BadRequest(format!(
                "unknown input '{}' for model '{}'; it takes {names:?}",
                quoted(&input.name),
                model.name
            )));
        };
        // The runtime's own metadata only names inputs; model-settings.json declarations are a
        // contract on datatype and shape too.
        if strict {
            check_declared(input, expected)?;
        }
    }
    Ok(())
}

fn check_declared(input: &Tensor, expected: &TensorMetadata) -> Result<(), ServiceError> {
    if input.datatype != expected.datatype {
        return Err(ServiceError::BadRequest(format!(
            "input '{}' has datatype {}, the model takes {}",
            quoted(&input.name),
            input.datatype,
            expected.datatype
        )));
    }
    let fits = input.shape.len() == expected.shape.len()
        && input
            .shape
            .iter()
            .zip(&expected.shape)
            .all(|(&actual, &declared)| declared < 0 || actual == declared as u64);
    if !fits {
        return Err(ServiceError::BadRequest(format!(
            "input '{}' has shape {:?}, the model takes {:?}",
            quoted(&input.name),
            input.shape,
            expected.shape
        )));
    }
    Ok(())
}
