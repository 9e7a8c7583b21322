//! What Triton's clients expect beyond the protocol's core: ModelReady answering `false` for
//! unknown models, the empty final response of streams, gRPC's message limit matching the REST
//! body limit, and a clear "not supported" for shared memory on both protocols.

use crate::support::{Server, model_folder};
use mlhost::pb;
use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use pb::infer_parameter::ParameterChoice;
use serde_json::json;
use std::collections::HashMap;
use tonic::Code;
use tonic::transport::Channel;

const SHARED_MEMORY: &str = "shared memory is not supported by mlhost";

/// A repository with model `a` (y = 2x) and `settings` as its settings.json.
fn repository(settings: &str) -> tempfile::TempDir {
    model_folder(&[
        ("settings.json", settings),
        ("a/model-settings.json", r#"{"implementation": "linear"}"#),
        (
            "a/linear.json",
            r#"{"kind": "linear", "coefficients": [[2.0]], "intercepts": [0.0], "input_name": "x"}"#,
        ),
    ])
}

async fn client(server: &Server) -> GrpcInferenceServiceClient<Channel> {
    GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_address))
        .await
        .expect("connect over gRPC")
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
}

fn bool_parameter(value: bool) -> pb::InferParameter {
    pb::InferParameter {
        parameter_choice: Some(ParameterChoice::BoolParam(value)),
    }
}

/// A request to `a` with `rows` rows of x (FP32, raw contents).
fn request(id: &str, rows: usize) -> pb::ModelInferRequest {
    pb::ModelInferRequest {
        model_name: "a".into(),
        id: id.into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "x".into(),
            datatype: "FP32".into(),
            shape: vec![rows as i64, 1],
            ..Default::default()
        }],
        raw_input_contents: vec![1.5f32.to_le_bytes().repeat(rows)],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn model_ready_is_false_for_unknown_and_unloaded_models() {
    let dir = repository("{}");
    let server = Server::start(dir.path());
    let mut client = client(&server).await;
    let ready = |name: &str, version: &str| pb::ModelReadyRequest {
        name: name.into(),
        version: version.into(),
    };
    let mut is_ready = async |name: &str, version: &str| {
        let answer = client.model_ready(ready(name, version)).await;
        answer.expect("an answer, not an error").into_inner().ready
    };
    assert!(is_ready("a", "").await);
    assert!(!is_ready("nope", "").await);
    assert!(!is_ready("a", "7").await);
    let mut client = self::client(&server).await;
    client
        .repository_model_unload(pb::RepositoryModelUnloadRequest {
            model_name: "a".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let answer = client.model_ready(ready("a", "")).await.unwrap();
    assert!(!answer.into_inner().ready);
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_end_with_an_empty_final_response_when_asked() {
    let dir = repository("{}");
    let server = Server::start(dir.path());
    let mut client = client(&server).await;
    let mut asked = request("s1", 2);
    asked.parameters.insert(
        "triton_enable_empty_final_response".into(),
        bool_parameter(true),
    );
    let requests = tokio_stream::iter([asked, request("s2", 1)]);
    let mut answers = client
        .model_stream_infer(requests)
        .await
        .unwrap()
        .into_inner();
    let mut next = async || {
        let answer = answers.message().await.unwrap().expect("one more answer");
        assert_eq!(answer.error_message, "");
        answer.infer_response.unwrap()
    };
    let flag = |response: &pb::ModelInferResponse| {
        response
            .parameters
            .get("triton_final_response")
            .map(|parameter| parameter.parameter_choice.clone())
    };
    let response = next().await;
    assert_eq!((response.id.as_str(), response.outputs.len()), ("s1", 1));
    assert_eq!(
        flag(&response),
        Some(Some(ParameterChoice::BoolParam(false)))
    );
    let last = next().await;
    assert_eq!((last.id.as_str(), last.model_name.as_str()), ("s1", "a"));
    assert!(last.outputs.is_empty() && last.raw_output_contents.is_empty());
    assert_eq!(flag(&last), Some(Some(ParameterChoice::BoolParam(true))));
    // A request that does not ask gets its responses alone, unmarked.
    let plain = next().await;
    assert_eq!(plain.id, "s2");
    assert_eq!(flag(&plain), None);
    assert!(answers.message().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_message_limit_follows_the_rest_body_limit() {
    // 5 MiB: over gRPC's usual 4 MiB, under the REST body limit's default of 64 MiB.
    let rows = 5 * 1024 * 1024 / 4;
    let dir = repository("{}");
    let server = Server::start(dir.path());
    let answer = client(&server)
        .await
        .model_infer(request("big", rows))
        .await;
    let response = answer
        .expect("a 5 MiB message within the default limit")
        .into_inner();
    assert_eq!(response.outputs[0].shape, vec![rows as i64, 1]);

    // max_request_body_mb: 1 makes 1 MiB the gRPC limit too.
    let dir = repository(r#"{"max_request_body_mb": 1}"#);
    let server = Server::start(dir.path());
    let mut client = client(&server).await;
    let status = client.model_infer(request("big", rows)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let small = client.model_infer(request("small", 1000)).await;
    assert!(small.is_ok(), "{small:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_memory_is_refused_with_a_clear_message() {
    let dir = repository("{}");
    let server = Server::start(dir.path());

    // REST: every shared-memory endpoint of Triton's, 400 with the message.
    let region = "/region/r0";
    for kind in ["systemsharedmemory", "cudasharedmemory"] {
        for path in ["/status".to_string(), format!("{region}/status")] {
            let response = server.get(&format!("/v2/{kind}{path}"));
            assert_eq!(response.status, 400, "{kind}{path}");
            assert!(
                response.error().contains(SHARED_MEMORY),
                "{}",
                response.error()
            );
        }
        for path in [
            format!("{region}/register"),
            format!("{region}/unregister"),
            "/unregister".to_string(),
        ] {
            let body = json!({"key": "/shm", "offset": 0, "byte_size": 64});
            let response = server.post_json(&format!("/v2/{kind}{path}"), &body);
            assert_eq!(response.status, 400, "{kind}{path}");
            assert!(
                response.error().contains(SHARED_MEMORY),
                "{}",
                response.error()
            );
        }
    }
    // An input or output naming a region (as tritonclient's set_shared_memory sends it).
    let shared = json!({"shared_memory_region": "r0", "shared_memory_byte_size": 8});
    let bodies = [
        json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 1], "parameters": shared}]}),
        json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1]}],
               "outputs": [{"name": "y", "parameters": shared}]}),
    ];
    for body in bodies {
        let response = server.post_json("/v2/models/a/infer", &body);
        assert_eq!(response.status, 400, "{body}");
        assert!(
            response.error().contains(SHARED_MEMORY),
            "{}",
            response.error()
        );
    }

    // gRPC: the shared-memory RPCs are UNIMPLEMENTED with the message.
    let mut client = client(&server).await;
    let statuses = [
        client
            .system_shared_memory_status(pb::SystemSharedMemoryStatusRequest::default())
            .await
            .unwrap_err(),
        client
            .system_shared_memory_register(pb::SystemSharedMemoryRegisterRequest::default())
            .await
            .unwrap_err(),
        client
            .cuda_shared_memory_unregister(pb::CudaSharedMemoryUnregisterRequest::default())
            .await
            .unwrap_err(),
    ];
    for status in statuses {
        assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
        assert!(status.message().contains(SHARED_MEMORY), "{status:?}");
    }
    // ...and a tensor naming a region is INVALID_ARGUMENT with it.
    let mut input = request("shm", 2);
    input.raw_input_contents.clear();
    input.inputs[0].parameters = HashMap::from([(
        "shared_memory_region".to_string(),
        pb::InferParameter {
            parameter_choice: Some(ParameterChoice::StringParam("r0".into())),
        },
    )]);
    let status = client.model_infer(input).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("input 'x'"), "{status:?}");
    assert!(status.message().contains(SHARED_MEMORY), "{status:?}");
}
