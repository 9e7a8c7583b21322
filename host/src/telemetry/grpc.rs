//! The gRPC front end's traces: a call's span is named as MLServer's gRPC instrumentation names
//! it (`/inference.GRPCInferenceService/ModelInfer`); and Triton's `LogSettings` and
//! `TraceSetting` calls.

use super::Recording;
use super::logging::Value;
use crate::codec::grpc::pb;
use opentelemetry::KeyValue;

/// Starts recording a call of `service`'s `method`, when requests are traced and it is an
/// inference call (`ModelInfer`, `ModelStreamInfer`), as Triton traces them.
pub(crate) fn begin(
    headers: &http::HeaderMap,
    service: &str,
    method: &str,
    id: &str,
) -> Option<Recording> {
    if !super::active() || !matches!(method, "ModelInfer" | "ModelStreamInfer") {
        return None;
    }
    Recording::begin(
        headers,
        || format!("/{service}/{method}"),
        || {
            vec![
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", service.to_string()),
                KeyValue::new("rpc.method", method.to_string()),
                KeyValue::new("mlhost.request_id", id.to_string()),
            ]
        },
    )
}

/// The call was answered with the status `code` (its name, e.g. `OK`) numbered `number`.
pub(crate) fn finish(recording: Recording, code: &'static str, number: i64) {
    let attributes = vec![
        KeyValue::new("rpc.grpc.status_code", number),
        KeyValue::new("rpc.grpc.status", code),
    ];
    // As OpenTelemetry's conventions for servers: these codes are the server's failures.
    let failed = matches!(
        code,
        "UNKNOWN"
            | "DEADLINE_EXCEEDED"
            | "UNIMPLEMENTED"
            | "INTERNAL"
            | "UNAVAILABLE"
            | "DATA_LOSS"
    );
    recording.finish(attributes, failed);
}

/// `LogSettings`: applies the settings the request names (none: reads them), answers all.
pub(crate) fn log_settings(
    request: pb::LogSettingsRequest,
) -> Result<pb::LogSettingsResponse, tonic::Status> {
    use pb::log_settings_request::setting_value::ParameterChoice as In;
    let changes: Vec<(String, Option<Value>)> = request
        .settings
        .into_iter()
        .map(|(name, value)| {
            let value = value.parameter_choice.map(|choice| match choice {
                In::BoolParam(on) => Value::Bool(on),
                In::Uint32Param(number) => Value::Uint(number),
                In::StringParam(text) => Value::String(text),
            });
            (name, value)
        })
        .collect();
    super::logging::update(&changes).map_err(tonic::Status::invalid_argument)?;
    use pb::log_settings_response::setting_value::ParameterChoice as Out;
    let settings = super::logging::settings()
        .into_iter()
        .map(|(name, value)| {
            let choice = match value {
                Value::Bool(on) => Out::BoolParam(on),
                Value::Uint(number) => Out::Uint32Param(number),
                Value::String(text) => Out::StringParam(text),
            };
            let value = pb::log_settings_response::SettingValue {
                parameter_choice: Some(choice),
            };
            (name.to_string(), value)
        })
        .collect();
    Ok(pb::LogSettingsResponse { settings })
}

/// `TraceSetting`: applies the settings the request names to the server's or its model's,
/// answers the settings in force. The model must exist (`model_exists` checked it).
pub(crate) fn trace_setting(
    request: pb::TraceSettingRequest,
) -> Result<pb::TraceSettingResponse, tonic::Status> {
    let model = (!request.model_name.is_empty()).then_some(request.model_name.as_str());
    let fields: Vec<(String, Option<Vec<String>>)> = request
        .settings
        .into_iter()
        .map(|(name, value)| (name, (!value.value.is_empty()).then_some(value.value)))
        .collect();
    let status = |error: super::SettingsError| match error {
        super::SettingsError::Invalid(message) => tonic::Status::invalid_argument(message),
        super::SettingsError::Unsupported(message) => tonic::Status::unimplemented(message),
    };
    if !fields.is_empty() {
        let update = super::triton::trace_update(&fields).map_err(status)?;
        super::update_trace_settings(model, &update).map_err(status)?;
    }
    let settings = super::trace_settings(model)
        .into_iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                pb::trace_setting_response::SettingValue { value },
            )
        })
        .collect();
    Ok(pb::TraceSettingResponse { settings })
}
