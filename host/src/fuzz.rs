//! Structure-aware property tests of what decodes client and operator input: the REST JSON and
//! binary decoders, the gRPC request conversion and the settings loaders. Inputs are built from
//! the protocol's shapes (tensors, datatypes, shapes, parameters, settings fields), then mutated
//! byte by byte; each decoder must answer with a value or an error, never panic. A few seconds
//! each in a debug build ([`CASES`]); `PROPTEST_CASES` runs more (scripts/fuzz-long).

use crate::codec::grpc::pb;
use crate::codec::{DataType, TensorMetadata};
use crate::config::{Settings, check_model_settings, load_settings, read_model_settings};
use crate::protocol::binary::{BodyLayout, raw_request};
use proptest::collection::{btree_map, hash_map, vec};
use proptest::prelude::*;
use serde_json::Value;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 2048;
/// The element limit the decoders run with (small: a case must not allocate much).
const MAX_ELEMENTS: u64 = 1 << 16;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Datatype names: the protocol's, and a few it does not have.
fn datatype_name() -> impl Strategy<Value = String> {
    let known: Vec<String> = DataType::ALL.iter().map(|d| d.to_string()).collect();
    prop_oneof![
        4 => proptest::sample::select(known),
        1 => prop_oneof![Just("FP8".to_string()), Just(String::new()), Just("fp32".to_string())],
        1 => ".{0,6}",
    ]
}

/// A JSON scalar.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::String),
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Tensor data: numbers in the count a shape asks for (or not), strings, or anything.
fn data() -> impl Strategy<Value = Value> {
    prop_oneof![
        vec(-4i64..300, 0..24).prop_map(Value::from),
        vec(any::<f64>(), 0..24).prop_map(Value::from),
        vec(".{0,4}", 0..8).prop_map(Value::from),
        json_value(),
    ]
}

/// Parameters, with the names the decoders look at.
fn parameters() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        Just("binary_data_size".to_string()),
        Just("content_type".to_string()),
        Just("binary_data".to_string()),
        Just("timeout".to_string()),
        "[a-z_]{1,8}",
    ];
    let value = prop_oneof![4 => scalar(), 1 => json_value()];
    btree_map(name, value, 0..3).prop_map(|map| Value::Object(map.into_iter().collect()))
}

fn tensor() -> impl Strategy<Value = Value> {
    (
        ".{0,6}",
        datatype_name(),
        vec(-3i64..9, 0..4),
        data(),
        parameters(),
    )
        .prop_map(|(name, datatype, shape, data, parameters)| {
            serde_json::json!({"name": name, "datatype": datatype, "shape": shape,
                "data": data, "parameters": parameters})
        })
}

fn request_json() -> impl Strategy<Value = Value> {
    (
        prop_oneof![4 => ".{0,6}".prop_map(Value::String), 1 => json_value()],
        vec(tensor(), 0..4),
        vec(("[a-z]{0,4}", parameters()), 0..3),
        parameters(),
    )
        .prop_map(|(id, inputs, outputs, parameters)| {
            let outputs: Vec<Value> = outputs
                .into_iter()
                .map(|(name, parameters)| serde_json::json!({"name": name, "parameters": parameters}))
                .collect();
            serde_json::json!({"id": id, "inputs": inputs, "outputs": outputs,
                "parameters": parameters})
        })
}

/// Byte mutations: (where, what) — overwrite, insert or delete a byte, or cut the rest.
fn mutations() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    vec((any::<usize>(), 0u8..8, any::<u8>()), 0..4)
}

fn mutate(mut bytes: Vec<u8>, mutations: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, kind, byte) in mutations {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let at = at % bytes.len();
        match kind {
            0..=3 => bytes[at] = byte,
            4 | 5 => bytes.insert(at, byte),
            6 => {
                bytes.remove(at);
            }
            _ => bytes.truncate(at),
        }
    }
    bytes
}

fn grpc_parameter() -> impl Strategy<Value = pb::InferParameter> {
    use pb::infer_parameter::ParameterChoice;
    prop_oneof![
        any::<bool>().prop_map(ParameterChoice::BoolParam),
        any::<i64>().prop_map(ParameterChoice::Int64Param),
        any::<u64>().prop_map(ParameterChoice::Uint64Param),
        any::<f64>().prop_map(ParameterChoice::DoubleParam),
        ".{0,6}".prop_map(ParameterChoice::StringParam),
    ]
    .prop_map(|choice| pb::InferParameter {
        parameter_choice: Some(choice),
    })
}

fn grpc_contents() -> impl Strategy<Value = Option<pb::InferTensorContents>> {
    let contents = (
        vec(any::<bool>(), 0..6),
        vec(any::<i32>(), 0..6),
        vec(any::<i64>(), 0..6),
        vec(any::<u32>(), 0..6),
        vec(any::<f32>(), 0..6),
        vec(any::<f64>(), 0..6),
        vec(vec(any::<u8>(), 0..6), 0..4),
    )
        .prop_map(|(bools, ints, int64s, uints, fp32s, fp64s, bytes)| {
            pb::InferTensorContents {
                bool_contents: bools,
                int_contents: ints,
                int64_contents: int64s,
                uint_contents: uints,
                fp32_contents: fp32s,
                fp64_contents: fp64s,
                bytes_contents: bytes,
                ..Default::default()
            }
        });
    proptest::option::of(contents)
}

fn grpc_request() -> impl Strategy<Value = pb::ModelInferRequest> {
    let input = (
        ".{0,6}",
        datatype_name(),
        vec(-3i64..9, 0..4),
        hash_map("[a-z_]{1,8}", grpc_parameter(), 0..2),
        grpc_contents(),
    )
        .prop_map(|(name, datatype, shape, parameters, contents)| {
            pb::model_infer_request::InferInputTensor {
                name,
                datatype,
                shape,
                parameters,
                contents,
            }
        });
    (
        vec(input, 0..4),
        vec(vec(any::<u8>(), 0..40), 0..3),
        hash_map("[a-z_]{1,8}", grpc_parameter(), 0..3),
    )
        .prop_map(
            |(inputs, raw_input_contents, parameters)| pb::ModelInferRequest {
                model_name: "m".into(),
                inputs,
                raw_input_contents,
                parameters,
                ..Default::default()
            },
        )
}

/// Values an environment variable or a settings field may hold.
fn setting_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|value| value.to_string()),
        any::<f64>().prop_map(|value| value.to_string()),
        Just("18446744073709551616".to_string()),
        Just("nan".to_string()),
        Just("1e308".to_string()),
        Just("true".to_string()),
        Just("[1, 2]".to_string()),
        ".{0,8}",
    ]
}

/// The names of the settings' fields.
fn settings_fields() -> Vec<String> {
    match serde_json::to_value(Settings::default()) {
        Ok(Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

proptest! {
    #![proptest_config(config())]

    /// REST JSON bodies, well formed or mutated: a request or an error.
    #[test]
    fn rest_json_decodes_or_fails(request in request_json(), edits in mutations()) {
        let body = mutate(serde_json::to_vec(&request).unwrap(), &edits);
        if let Err(error) = crate::codec::json::decode_request(&body, &[], MAX_ELEMENTS) {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    /// Bodies of the binary extension (JSON, then bytes at a header's offset) and raw bodies.
    #[test]
    fn rest_binary_bodies_decode_or_fail(
        request in request_json(),
        tail in vec(any::<u8>(), 0..64),
        header in prop_oneof![any::<u16>().prop_map(|n| n.to_string()), ".{0,5}"],
        datatype in proptest::sample::select(DataType::ALL.to_vec()),
        shape in vec(-2i64..5, 0..3),
    ) {
        let mut body = serde_json::to_vec(&request).unwrap();
        body.extend_from_slice(&tail);
        if let Ok(layout) = BodyLayout::from_header(Some(&header))
            && let Ok((json, binary)) = layout.split(&body)
        {
            let _ = crate::codec::json::decode_request(json, binary, MAX_ELEMENTS);
        }
        let input = TensorMetadata { name: "x".into(), datatype, shape, parameters: Vec::new() };
        let _ = raw_request(&[input], &tail, MAX_ELEMENTS);
    }

    /// gRPC requests, typed and raw contents, converted to the core's request or refused.
    #[test]
    fn grpc_requests_convert_or_fail(request in grpc_request()) {
        if let Err(error) = crate::codec::grpc::decode_request(request, MAX_ELEMENTS) {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    /// settings.json through MLHOST_* variables: loaded, or an error naming the field.
    #[test]
    fn settings_from_the_environment_load_or_fail(
        values in vec((any::<proptest::sample::Index>(), setting_text()), 0..4),
    ) {
        let fields = settings_fields();
        let env: std::collections::HashMap<String, String> = values
            .into_iter()
            .map(|(index, value)| {
                (format!("MLHOST_{}", index.get(&fields).to_uppercase()), value)
            })
            .collect();
        if let Err(error) = load_settings(None, |name| env.get(name).cloned()) {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    /// model-settings.json files, typed or not, read and range-checked.
    #[test]
    fn model_settings_files_load_or_fail(
        fields in btree_map(
            prop_oneof![
                Just("implementation".to_string()),
                Just("parallel_workers".to_string()),
                Just("max_batch_size".to_string()),
                Just("max_batch_time".to_string()),
                Just("timeout_seconds".to_string()),
                Just("inputs".to_string()),
                Just("parameters".to_string()),
                "[a-z_]{1,12}",
            ],
            json_value(),
            0..5,
        ),
        edits in mutations(),
    ) {
        let text = mutate(serde_json::to_vec(&fields).unwrap(), &edits);
        let path = std::env::temp_dir().join(format!(
            "mlhost-fuzz-{}-{:?}.json",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, &text).unwrap();
        let loaded = read_model_settings(&path)
            .and_then(|settings| check_model_settings(&settings, &path));
        let _ = std::fs::remove_file(&path);
        if let Err(error) = loaded {
            prop_assert!(!error.to_string().is_empty());
        }
    }
}

/// The generators reach past the first checks: a good share of the unmutated requests decode.
#[test]
fn generated_requests_often_decode() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut rest, mut grpc) = (0, 0);
    for _ in 0..400 {
        let request = request_json().new_tree(&mut runner).unwrap().current();
        let body = serde_json::to_vec(&request).unwrap();
        rest += usize::from(crate::codec::json::decode_request(&body, &[], MAX_ELEMENTS).is_ok());
        let message = grpc_request().new_tree(&mut runner).unwrap().current();
        grpc += usize::from(crate::codec::grpc::decode_request(message, MAX_ELEMENTS).is_ok());
    }
    eprintln!("decoded: REST {rest} / 400, gRPC {grpc} / 400");
    assert!(rest >= 20 && grpc >= 20, "REST {rest}, gRPC {grpc} of 400");
}
