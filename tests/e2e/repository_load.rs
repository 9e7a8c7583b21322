//! Repository loads with Triton's `config` and `file:<path>` parameters, on REST and gRPC: the
//! config overrides the model's settings, files form a fresh folder the model loads from, and
//! what cannot be applied is refused with 400 / INVALID_ARGUMENT saying why.

use crate::support::{Server, model_folder};
use base64::Engine;
use mlhost::pb;
use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use pb::model_repository_parameter::ParameterChoice;
use serde_json::{Value, json};
use std::collections::HashMap;

const DOUBLE: &str =
    r#"{"kind": "linear", "coefficients": [[2.0]], "intercepts": [1.0], "input_name": "x"}"#;
const TRIPLE: &str =
    r#"{"kind": "linear", "coefficients": [[3.0]], "intercepts": [0.0], "input_name": "x"}"#;

/// Model `m`: `y = 2x + 1` from linear.json; triple.json beside it is `y = 3x`.
fn repository() -> tempfile::TempDir {
    model_folder(&[
        ("m/model-settings.json", r#"{"implementation": "linear"}"#),
        ("m/linear.json", DOUBLE),
        ("m/triple.json", TRIPLE),
    ])
}

/// `model`'s answer for x = 2 (`m`: 5 from linear.json, 6 from triple.json).
fn answer(server: &Server, model: &str) -> Value {
    let request =
        json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [2.0]}]});
    let response = server.post_json(&format!("/v2/models/{model}/infer"), &request);
    assert_eq!(response.status, 200, "{:?}", response.json());
    response.json()["outputs"][0]["data"][0].clone()
}

fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn rest_loads_apply_the_config_and_the_files_or_say_why_not() {
    let dir = repository();
    let server = Server::start(dir.path());
    let load = |model: &str, parameters: Value| {
        server.post_json(
            &format!("/v2/repository/models/{model}/load"),
            &json!({ "parameters": parameters }),
        )
    };
    assert_eq!(answer(&server, "m"), json!(5.0));

    // The config overrides the settings (MLServer's fields and Triton's), until a plain load.
    let config = json!({"parameters": {"uri": "triple.json"}, "max_batch_size": 4,
        "dynamic_batching": {"max_queue_delay_microseconds": 1000}});
    let response = load("m", json!({"config": config.to_string()}));
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(answer(&server, "m"), json!(6.0));
    let response = server.post_json("/v2/repository/models/m/load", &json!({}));
    assert_eq!(response.status, 200);
    assert_eq!(answer(&server, "m"), json!(5.0));

    // What cannot be applied is a 400 saying why; the model serves on.
    for (config, expected) in [
        (json!("notjson"), "not JSON"),
        (
            json!(json!({"sequence_batching": {"max_sequence_idle_microseconds": 5}}).to_string()),
            "sequence_batching",
        ),
        (
            json!(json!({"backend": "pytorch"}).to_string()),
            "'pytorch' has no runtime",
        ),
        (
            json!(json!({"max_batch_size": "lots"}).to_string()),
            "max_batch_size",
        ),
    ] {
        let response = load("m", json!({ "config": config }));
        assert_eq!(response.status, 400, "{config}");
        assert!(response.error().contains(expected), "{}", response.error());
    }
    let response = load("m", json!({"colour": "blue"}));
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("'colour'"),
        "{}",
        response.error()
    );
    let response = server.post_json("/v2/repository/models/m/load", &json!("notjson"));
    assert_eq!(response.status, 400);
    assert_eq!(answer(&server, "m"), json!(5.0));

    // Files form a fresh folder: a model not on disk, in Triton's layout (a version folder).
    let config = json!({"name": "sent", "backend": "linear"}).to_string();
    let response = load(
        "sent",
        json!({"config": config, "file:1/linear.json": base64(TRIPLE)}),
    );
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(answer(&server, "sent"), json!(6.0));
    let index = server.post_json("/v2/repository/index", &json!({}));
    assert!(
        index
            .json()
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["name"] == "sent" && entry["version"] == "1"),
        "{:?}",
        index.json()
    );
    for (parameters, expected) in [
        (
            json!({"config": config, "file:../linear.json": base64(DOUBLE)}),
            "inside the model's folder",
        ),
        (
            json!({"config": config, "file:/tmp/linear.json": base64(DOUBLE)}),
            "inside the model's folder",
        ),
        (
            json!({"file:linear.json": base64(DOUBLE)}),
            "needs its config",
        ),
        (
            json!({"config": config, "file:linear.json": "not base64!"}),
            "not base64",
        ),
    ] {
        let response = load("sent", parameters);
        assert_eq!(response.status, 400);
        assert!(response.error().contains(expected), "{}", response.error());
    }
    // A failed load leaves the model serving as it was.
    let response = load(
        "sent",
        json!({"config": config, "file:1/linear.json": base64("{}")}),
    );
    assert_eq!(response.status, 400);
    assert_eq!(answer(&server, "sent"), json!(6.0));
}

#[tokio::test]
async fn grpc_loads_take_the_same_parameters() {
    let dir = repository();
    let server = Server::start(dir.path());
    let mut client = GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_address))
        .await
        .unwrap();
    let parameter = |choice| pb::ModelRepositoryParameter {
        parameter_choice: Some(choice),
    };
    let load =
        |model: &str, parameters: Vec<(&str, ParameterChoice)>| pb::RepositoryModelLoadRequest {
            repository_name: String::new(),
            model_name: model.into(),
            parameters: parameters
                .into_iter()
                .map(|(key, choice)| (key.to_string(), parameter(choice)))
                .collect::<HashMap<_, _>>(),
        };
    let config = json!({"parameters": {"uri": "triple.json"}}).to_string();
    client
        .repository_model_load(load(
            "m",
            vec![("config", ParameterChoice::StringParam(config))],
        ))
        .await
        .unwrap();
    assert_eq!(answer(&server, "m"), json!(6.0));
    let config = json!({"instance_group": [{"kind": "KIND_GPU"}]}).to_string();
    let status = client
        .repository_model_load(load(
            "m",
            vec![("config", ParameterChoice::StringParam(config))],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("CPUs only"), "{status:?}");

    let config = json!({"implementation": "linear"}).to_string();
    client
        .repository_model_load(load(
            "sent",
            vec![
                ("config", ParameterChoice::StringParam(config)),
                (
                    "file:linear.json",
                    ParameterChoice::BytesParam(DOUBLE.into()),
                ),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(answer(&server, "sent"), json!(5.0));
    let status = client
        .repository_model_load(load(
            "sent",
            vec![("file:a/../../b", ParameterChoice::BytesParam(DOUBLE.into()))],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
}
