//! The `config` of a repository load (Triton's model repository extension): a JSON model
//! configuration, in Triton's shape (`model_config.proto`, as `GET .../config` answers it) or
//! with MLServer's `model-settings.json` fields, turned into the model settings it overrides.
//!
//! Triton's fields that have a meaning for mlhost are mapped; a field asking for what mlhost
//! does not do is refused, by name. Fields left at their empty value (`false`, `0`, `""`, `[]`,
//! `{}`, `FORMAT_NONE`) ask for nothing and are accepted.

use crate::config::ModelSettings;
use serde_json::{Map, Value};

/// The built-in runtimes a Triton `backend` may name.
const RUNTIMES: [&str; 6] = ["linear", "trees", "xgboost", "lightgbm", "catboost", "onnx"];

/// The values of mlhost's own `backend` setting (the `onnx` runtime's graph backend).
const GRAPH_BACKENDS: [&str; 3] = ["native", "sandboxed", "auto"];

/// Triton's platforms and backends that have no runtime in mlhost.
const FOREIGN: [&str; 12] = [
    "tensorflow_savedmodel",
    "tensorflow_graphdef",
    "tensorflow",
    "pytorch_libtorch",
    "pytorch",
    "tensorrt_plan",
    "tensorrt",
    "ensemble",
    "python",
    "openvino",
    "dali",
    "fil",
];

/// The settings `config` overrides for model `name`: model-settings.json's fields and values.
/// Errors say which field cannot be applied and why.
pub(crate) fn settings_override(name: &str, config: &str) -> Result<Map<String, Value>, String> {
    let config: Value = serde_json::from_str(config)
        .map_err(|error| format!("the load's config is not JSON: {error}"))?;
    let Value::Object(config) = config else {
        return Err("the load's config is not a JSON object".to_string());
    };
    let mut settings = Map::new();
    let mut refused = Vec::new();
    let known = settings_fields();
    let batch_dimension = config
        .get("max_batch_size")
        .and_then(number)
        .is_some_and(|size| size > 0.0);
    for (key, value) in &config {
        match key.as_str() {
            "name" => check_name(name, value)?,
            "backend" => backend(value, &mut settings)?,
            "platform" => platform(value, &mut settings)?,
            "dynamic_batching" => dynamic_batching(value, &mut settings, &mut refused)?,
            "instance_group" => instance_group(value, &mut settings, &mut refused)?,
            "input" | "output" => {
                let tensors = tensors(key, value, batch_dimension, &mut refused)?;
                settings.insert(format!("{key}s"), tensors);
            }
            "parameters" => parameters(value, &mut settings),
            _ if known.contains(key) => {
                settings.insert(key.clone(), value.clone());
            }
            _ if is_empty(value) => {}
            _ => refused.push(key.clone()),
        }
    }
    if refused.is_empty() {
        Ok(settings)
    } else {
        Err(format!(
            "the load's config asks for what mlhost does not support: {} (mlhost applies name, \
             platform, backend, max_batch_size, dynamic_batching.max_queue_delay_microseconds, \
             instance_group counts, input, output, parameters and model-settings.json's fields)",
            refused.join(", ")
        ))
    }
}

/// model-settings.json's field names.
fn settings_fields() -> Vec<String> {
    match serde_json::to_value(ModelSettings::default()) {
        Ok(Value::Object(fields)) => fields.into_iter().map(|(key, _)| key).collect(),
        _ => Vec::new(),
    }
}

/// Whether `value` asks for nothing: `null`, `false`, `0`, `""`, `[]`, `{}` or Triton's
/// `FORMAT_NONE`.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(flag) => !flag,
        Value::Number(number) => number.as_f64() == Some(0.0),
        Value::String(text) => text.is_empty() || text == "FORMAT_NONE",
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
    }
}

/// A number, or a number written as a string (protobuf's JSON writes 64-bit integers so).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn check_name(name: &str, value: &Value) -> Result<(), String> {
    match value.as_str() {
        Some(given) if given == name || given.is_empty() => Ok(()),
        _ => Err(format!(
            "the load's config names the model {value}, not '{}'",
            crate::codec::quoted(name)
        )),
    }
}

/// Triton's `backend`: a runtime (`onnxruntime` is `onnx`), or mlhost's own `backend` setting
/// (`native`, `sandboxed`, `auto`); `mlhost`, what mlhost reports, changes nothing.
fn backend(value: &Value, settings: &mut Map<String, Value>) -> Result<(), String> {
    let Some(backend) = value.as_str() else {
        return Err(format!(
            "the load's config: backend {value} is not a string"
        ));
    };
    match backend {
        // What mlhost reports as every model's backend.
        "" | "mlhost" => {}
        "onnxruntime" => {
            settings.insert("implementation".into(), "onnx".into());
        }
        _ if GRAPH_BACKENDS.contains(&backend) => {
            settings.insert("backend".into(), backend.into());
        }
        _ if RUNTIMES.contains(&backend) => {
            settings.insert("implementation".into(), backend.into());
        }
        _ => return Err(no_runtime("backend", backend)),
    }
    Ok(())
}

/// Triton's `platform`: `onnxruntime_onnx` asks for the `onnx` runtime; any other name but
/// Triton's other platforms is the platform the model's metadata reports (MLServer's field).
fn platform(value: &Value, settings: &mut Map<String, Value>) -> Result<(), String> {
    let Some(platform) = value.as_str() else {
        return Err(format!(
            "the load's config: platform {value} is not a string"
        ));
    };
    if FOREIGN.contains(&platform) {
        return Err(no_runtime("platform", platform));
    }
    if platform == "onnxruntime_onnx" && !settings.contains_key("implementation") {
        settings.insert("implementation".into(), "onnx".into());
    }
    settings.insert("platform".into(), platform.into());
    Ok(())
}

fn no_runtime(field: &str, name: &str) -> String {
    format!(
        "the load's config: {field} '{}' has no runtime in mlhost (its runtimes: {}, or a .wasm \
         component named by `implementation`)",
        crate::codec::quoted(name),
        RUNTIMES.join(", ")
    )
}

/// `dynamic_batching`: its `max_queue_delay_microseconds` is `max_batch_time` (in seconds).
fn dynamic_batching(
    value: &Value,
    settings: &mut Map<String, Value>,
    refused: &mut Vec<String>,
) -> Result<(), String> {
    let Value::Object(fields) = value else {
        return Err("the load's config: dynamic_batching is not an object".to_string());
    };
    for (key, value) in fields {
        match key.as_str() {
            "max_queue_delay_microseconds" => {
                let delay = number(value).filter(|delay| *delay >= 0.0).ok_or_else(|| {
                    format!(
                        "the load's config: dynamic_batching.max_queue_delay_microseconds {value} is not a number of microseconds"
                    )
                })?;
                if delay > 0.0 {
                    settings.insert("max_batch_time".into(), (delay / 1e6).into());
                }
            }
            _ if is_empty(value) => {}
            _ => refused.push(format!("dynamic_batching.{key}")),
        }
    }
    Ok(())
}

/// `instance_group`: CPU instances, their counts summed into `parallel_workers`.
fn instance_group(
    value: &Value,
    settings: &mut Map<String, Value>,
    refused: &mut Vec<String>,
) -> Result<(), String> {
    let Value::Array(groups) = value else {
        return Err("the load's config: instance_group is not a list".to_string());
    };
    let mut workers = 0.0;
    for group in groups {
        let Value::Object(fields) = group else {
            return Err("the load's config: an instance_group is not an object".to_string());
        };
        let mut count = 1.0;
        for (key, value) in fields {
            match key.as_str() {
                "count" => {
                    count = number(value).filter(|count| *count >= 0.0).ok_or_else(|| {
                        format!("the load's config: instance_group.count {value} is not a count")
                    })?;
                }
                "kind" => match value.as_str() {
                    Some("KIND_CPU" | "KIND_AUTO" | "") => {}
                    _ => {
                        return Err(format!(
                            "the load's config: instance_group.kind {value}: mlhost runs models on CPUs only (KIND_CPU)"
                        ));
                    }
                },
                "name" => {}
                _ if is_empty(value) => {}
                _ => refused.push(format!("instance_group.{key}")),
            }
        }
        workers += count;
    }
    if !groups.is_empty() {
        settings.insert("parallel_workers".into(), (workers as u64).into());
    }
    Ok(())
}

/// Triton's `input` / `output` as model-settings.json's `inputs` / `outputs`: `TYPE_FP32` is
/// `FP32` (`TYPE_STRING` is `BYTES`), and with a batch dimension (`max_batch_size` > 0) the
/// shape is `dims` after a variable dimension 0.
fn tensors(
    key: &str,
    value: &Value,
    batch_dimension: bool,
    refused: &mut Vec<String>,
) -> Result<Value, String> {
    let Value::Array(tensors) = value else {
        return Err(format!("the load's config: {key} is not a list"));
    };
    let mut converted = Vec::with_capacity(tensors.len());
    for tensor in tensors {
        let Value::Object(fields) = tensor else {
            return Err(format!("the load's config: an {key} is not an object"));
        };
        let mut out = Map::new();
        let mut dims = Vec::new();
        for (field, value) in fields {
            match field.as_str() {
                "name" => {
                    out.insert("name".into(), value.clone());
                }
                "data_type" => {
                    let datatype = match value.as_str() {
                        Some("TYPE_STRING") => "BYTES",
                        Some(name) => name.strip_prefix("TYPE_").unwrap_or(name),
                        None => {
                            return Err(format!(
                                "the load's config: {key}.data_type {value} is not a string"
                            ));
                        }
                    };
                    out.insert("datatype".into(), datatype.into());
                }
                "dims" => {
                    let Value::Array(values) = value else {
                        return Err(format!("the load's config: {key}.dims is not a list"));
                    };
                    dims = values
                        .iter()
                        .map(|dim| number(dim).map(|d| d as i64))
                        .collect::<Option<_>>()
                        .ok_or_else(|| {
                            format!(
                                "the load's config: {key}.dims {value} is not a list of numbers"
                            )
                        })?;
                }
                _ if is_empty(value) => {}
                _ => refused.push(format!("{key}.{field}")),
            }
        }
        if batch_dimension {
            dims.insert(0, -1);
        }
        out.insert("shape".into(), dims.into());
        converted.push(Value::Object(out));
    }
    Ok(Value::Array(converted))
}

/// `parameters`: Triton's (`{"key": {"string_value": "..."}}`) reach the runtime as `extra`;
/// MLServer's (`uri`, `version`, `extra`, ...) are model-settings.json's.
fn parameters(value: &Value, settings: &mut Map<String, Value>) {
    let triton = value.as_object().filter(|fields| {
        !fields.is_empty()
            && fields.values().all(|value| {
                value
                    .as_object()
                    .is_some_and(|inner| inner.len() == 1 && inner.contains_key("string_value"))
            })
    });
    match triton {
        Some(fields) => {
            let extra: Map<String, Value> = fields
                .iter()
                .map(|(key, value)| (key.clone(), value["string_value"].clone()))
                .collect();
            let mut parameters = Map::new();
            parameters.insert("extra".into(), Value::Object(extra));
            settings.insert("parameters".into(), Value::Object(parameters));
        }
        None => {
            settings.insert("parameters".into(), value.clone());
        }
    }
}

/// `base` (a model's settings) with `over` applied: its fields replace `base`'s, but
/// `parameters` and `parameters.extra` are merged entry by entry.
pub(crate) fn merge(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(under)), Value::Object(over)) if key == "parameters" => {
                for (key, value) in over {
                    match (under.get_mut(&key), value) {
                        (Some(Value::Object(under)), Value::Object(over)) if key == "extra" => {
                            under.extend(over)
                        }
                        (_, value) => {
                            under.insert(key, value);
                        }
                    }
                }
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(config: Value) -> Result<Value, String> {
        settings_override("m", &config.to_string()).map(Value::Object)
    }

    #[test]
    fn tritons_fields_map_to_model_settings() {
        let settings = apply(json!({
            "name": "m", "platform": "onnxruntime_onnx", "backend": "mlhost",
            "max_batch_size": 8,
            "dynamic_batching": {"preferred_batch_size": [], "max_queue_delay_microseconds": "2000"},
            "instance_group": [{"count": 2, "kind": "KIND_CPU"}, {"name": "b"}],
            "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [4], "optional": false}],
            "output": [{"name": "y", "data_type": "TYPE_STRING", "dims": ["1"]}],
            "parameters": {"k": {"string_value": "v"}},
            "version_policy": {}, "model_warmup": [],
        }))
        .unwrap();
        assert_eq!(
            settings,
            json!({
                "implementation": "onnx", "platform": "onnxruntime_onnx", "max_batch_size": 8,
                "max_batch_time": 0.002, "parallel_workers": 3,
                "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
                "outputs": [{"name": "y", "datatype": "BYTES", "shape": [-1, 1]}],
                "parameters": {"extra": {"k": "v"}},
            })
        );
    }

    #[test]
    fn model_settings_fields_pass_and_the_rest_is_refused_by_name() {
        let settings = apply(json!({
            "implementation": "linear", "max_batch_time": 0.5, "parameters": {"uri": "a.json"},
        }))
        .unwrap();
        assert_eq!(settings["parameters"], json!({"uri": "a.json"}));
        let error = apply(json!({
            "sequence_batching": {"max_sequence_idle_microseconds": 5},
            "dynamic_batching": {"priority_levels": 2},
            "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [1], "reshape": {"shape": [1]}}],
        }))
        .unwrap_err();
        for field in [
            "sequence_batching",
            "dynamic_batching.priority_levels",
            "input.reshape",
        ] {
            assert!(error.contains(field), "{error}");
        }
        assert!(
            apply(json!({"backend": "pytorch"}))
                .unwrap_err()
                .contains("'pytorch' has no runtime")
        );
        assert!(
            apply(json!({"name": "other"}))
                .unwrap_err()
                .contains("\"other\"")
        );
        assert!(
            apply(json!({"instance_group": [{"kind": "KIND_GPU"}]}))
                .unwrap_err()
                .contains("CPUs only")
        );
        assert!(
            settings_override("m", "notjson")
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            settings_override("m", "[1]")
                .unwrap_err()
                .contains("not a JSON object")
        );
    }

    #[test]
    fn parameters_and_extra_merge_entry_by_entry() {
        let mut base = json!({"name": "m", "max_batch_size": 4,
            "parameters": {"uri": "a", "extra": {"p": 1, "q": 2}}});
        let over = json!({"max_batch_size": 8, "parameters": {"extra": {"q": 3}}});
        merge(
            base.as_object_mut().unwrap(),
            over.as_object().unwrap().clone(),
        );
        assert_eq!(
            base,
            json!({"name": "m", "max_batch_size": 8,
                "parameters": {"uri": "a", "extra": {"p": 1, "q": 3}}})
        );
    }
}
