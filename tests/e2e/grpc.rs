//! The gRPC front end, through a tonic client generated from the same protocol definition.

use crate::support::{Server, example_models, model_folder};
use mlhost::pb;
use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use std::collections::HashMap;
use tonic::Code;
use tonic::transport::Channel;

async fn client(server: &Server) -> GrpcInferenceServiceClient<Channel> {
    GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_address))
        .await
        .expect("connect over gRPC")
}

fn input(
    name: &str,
    datatype: &str,
    shape: Vec<i64>,
    contents: Option<pb::InferTensorContents>,
) -> pb::model_infer_request::InferInputTensor {
    pb::model_infer_request::InferInputTensor {
        name: name.into(),
        datatype: datatype.into(),
        shape,
        parameters: HashMap::new(),
        contents,
    }
}

fn fp32(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

fn house_prices_request(raw: bool) -> pb::ModelInferRequest {
    let values = [1.0f32, 2.0, 4.0, 0.5, 0.0, -8.0];
    let (contents, raw_input_contents) = if raw {
        (None, vec![fp32(&values)])
    } else {
        (
            Some(pb::InferTensorContents {
                fp32_contents: values.to_vec(),
                ..Default::default()
            }),
            vec![],
        )
    };
    pb::ModelInferRequest {
        model_name: "house-prices".into(),
        id: "g1".into(),
        inputs: vec![input("features", "FP32", vec![2, 3], contents)],
        raw_input_contents,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_metadata_rpcs() {
    let server = Server::start(&example_models());
    let mut client = client(&server).await;
    assert!(
        client
            .server_live(pb::ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    assert!(
        client
            .server_ready(pb::ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let ready = client
        .model_ready(pb::ModelReadyRequest {
            name: "iris".into(),
            version: "1".into(),
        })
        .await
        .unwrap();
    assert!(ready.into_inner().ready);
    // As Triton: an unknown model is not ready (no NOT_FOUND).
    let missing = client
        .model_ready(pb::ModelReadyRequest {
            name: "nope".into(),
            version: String::new(),
        })
        .await
        .unwrap();
    assert!(!missing.into_inner().ready);

    let metadata = client
        .server_metadata(pb::ServerMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.name, "mlhost");
    assert_eq!(
        metadata.extensions,
        [
            "model_repository",
            "binary_tensor_data",
            "statistics",
            "model_configuration",
            "schedule_policy",
            "parameters",
            "trace",
            "logging"
        ]
    );

    let model = client
        .model_metadata(pb::ModelMetadataRequest {
            name: "iris".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(model.versions, vec!["1".to_string()]);
    assert_eq!(model.platform, "linear");
    assert_eq!(model.inputs[0].name, "input-0");
    assert_eq!(model.inputs[0].shape, vec![-1, 4]);
    assert_eq!(model.outputs.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn infer_with_raw_and_typed_contents() {
    let server = Server::start(&example_models());
    let mut client = client(&server).await;

    // Raw in, raw out (tritonclient's way).
    let response = client
        .model_infer(house_prices_request(true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.model_name, "house-prices");
    assert_eq!(response.id, "g1");
    assert_eq!(response.outputs[0].name, "predict");
    assert_eq!(response.outputs[0].datatype, "FP64");
    assert_eq!(response.outputs[0].shape, vec![2, 1]);
    assert!(response.outputs[0].contents.is_none());
    let expected: Vec<u8> = [192.0f64, 101.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(response.raw_output_contents, vec![expected]);

    // Typed in, typed out.
    let response = client
        .model_infer(house_prices_request(false))
        .await
        .unwrap()
        .into_inner();
    assert!(response.raw_output_contents.is_empty());
    assert_eq!(
        response.outputs[0].contents.as_ref().unwrap().fp64_contents,
        vec![192.0, 101.0]
    );

    // Requested outputs and a version.
    let request = pb::ModelInferRequest {
        model_name: "iris".into(),
        model_version: "1".into(),
        inputs: vec![input("input-0", "FP32", vec![1, 4], None)],
        outputs: vec![pb::model_infer_request::InferRequestedOutputTensor {
            name: "predict".into(),
            parameters: HashMap::new(),
        }],
        raw_input_contents: vec![fp32(&[5.1, 3.5, 1.4, 0.2])],
        ..Default::default()
    };
    let response = client.model_infer(request).await.unwrap().into_inner();
    assert_eq!(response.model_version, "1");
    assert_eq!(response.outputs.len(), 1);
    assert_eq!(
        response.raw_output_contents,
        vec![0i64.to_le_bytes().to_vec()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_grpc_statuses_and_the_channel_keeps_serving() {
    let server = Server::start(&example_models());
    let mut client = client(&server).await;
    let mut unknown_model = house_prices_request(true);
    unknown_model.model_name = "nope".into();
    let mut unknown_version = house_prices_request(true);
    unknown_version.model_version = "7".into();
    let mut bad_datatype = house_prices_request(true);
    bad_datatype.inputs[0].datatype = "FLOAT".into();
    let mut short = house_prices_request(true);
    short.raw_input_contents[0].truncate(8);
    let mut wrong_name = house_prices_request(true);
    wrong_name.inputs[0].name = "x".into();
    let mut fp16_typed = house_prices_request(false);
    fp16_typed.inputs[0].datatype = "FP16".into();
    let mut tiny_timeout = house_prices_request(true);
    tiny_timeout.parameters.insert(
        "timeout".into(),
        pb::InferParameter {
            parameter_choice: Some(pb::infer_parameter::ParameterChoice::StringParam(
                "soon".into(),
            )),
        },
    );

    for (request, code, needle) in [
        (unknown_model, Code::NotFound, "not found"),
        (unknown_version, Code::NotFound, "no version '7'"),
        (bad_datatype, Code::InvalidArgument, "unknown datatype"),
        (short, Code::InvalidArgument, "holds 6 elements but 2"),
        (wrong_name, Code::InvalidArgument, "unknown input 'x'"),
        (fp16_typed, Code::InvalidArgument, "raw_input_contents"),
        (tiny_timeout, Code::InvalidArgument, "timeout"),
    ] {
        let status = client.model_infer(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(needle), "{status:?}");
        let good = client
            .model_infer(house_prices_request(true))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(good.outputs[0].shape, vec![2, 1]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_infer_answers_each_request_in_order() {
    let server = Server::start(&example_models());
    let mut client = client(&server).await;
    let mut bad = house_prices_request(true);
    bad.model_name = "nope".into();
    let mut second = house_prices_request(false);
    second.id = "g2".into();
    let requests = tokio_stream::iter(vec![house_prices_request(true), bad, second]);
    let mut responses = client
        .model_stream_infer(requests)
        .await
        .unwrap()
        .into_inner();
    let first = responses.message().await.unwrap().unwrap();
    assert_eq!(first.error_message, "");
    assert_eq!(first.infer_response.unwrap().id, "g1");
    let failed = responses.message().await.unwrap().unwrap();
    assert!(failed.error_message.contains("not found"), "{failed:?}");
    let third = responses.message().await.unwrap().unwrap();
    assert_eq!(third.infer_response.unwrap().id, "g2");
    assert!(responses.message().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn repository_rpcs() {
    let dir = model_folder(&[
        ("settings.json", r#"{"load_models_at_startup": false}"#),
        ("a/model-settings.json", r#"{"implementation": "linear"}"#),
        (
            "a/linear.json",
            r#"{"kind": "linear", "coefficients": [[2.0]], "intercepts": [0.0], "input_name": "x"}"#,
        ),
    ]);
    let server = Server::start(dir.path());
    let mut client = client(&server).await;
    let index = client
        .repository_index(pb::RepositoryIndexRequest {
            repository_name: String::new(),
            ready: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(index.models.len(), 1);
    assert_eq!(index.models[0].state, "UNAVAILABLE");

    client
        .repository_model_load(pb::RepositoryModelLoadRequest {
            model_name: "a".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ready = client
        .repository_index(pb::RepositoryIndexRequest {
            repository_name: String::new(),
            ready: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ready.models[0].name, "a");
    assert_eq!(ready.models[0].state, "READY");

    let missing = client
        .repository_model_load(pb::RepositoryModelLoadRequest {
            model_name: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    client
        .repository_model_unload(pb::RepositoryModelUnloadRequest {
            model_name: "a".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let gone = client
        .model_ready(pb::ModelReadyRequest {
            name: "a".into(),
            version: String::new(),
        })
        .await
        .unwrap();
    assert!(!gone.into_inner().ready);
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_over_the_limit_are_refused() {
    let dir = model_folder(&[
        ("settings.json", r#"{"grpc_max_message_length": 1000}"#),
        ("a/model-settings.json", r#"{"implementation": "linear"}"#),
        (
            "a/linear.json",
            r#"{"kind": "linear", "coefficients": [[2.0]], "intercepts": [0.0], "input_name": "x"}"#,
        ),
    ]);
    let server = Server::start(dir.path());
    let mut client = client(&server).await;
    let request = pb::ModelInferRequest {
        model_name: "a".into(),
        inputs: vec![input("x", "FP32", vec![500, 1], None)],
        raw_input_contents: vec![fp32(&[1.0; 500])],
        ..Default::default()
    };
    let status = client.model_infer(request).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        client
            .server_live(pb::ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deadlines_unavailable_models_and_gzip() {
    let hostile = crate::support::linear_component().with_file_name("mlhost_test_hostile.wasm");
    let dir = model_folder(&[
        (
            "slow/model-settings.json",
            r#"{"implementation": "hostile.wasm", "timeout_seconds": 5}"#,
        ),
        (
            "broken/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("broken/linear.json", "{"),
    ]);
    std::fs::copy(hostile, dir.path().join("slow/hostile.wasm")).unwrap();
    let server = Server::start(dir.path());
    let mut client = client(&server).await;

    let request =
        |model: &str, parameters: HashMap<String, pb::InferParameter>| pb::ModelInferRequest {
            model_name: model.into(),
            parameters,
            inputs: vec![input("x", "FP32", vec![1], None)],
            raw_input_contents: vec![fp32(&[1.0])],
            ..Default::default()
        };
    let string = |value: &str| pb::InferParameter {
        parameter_choice: Some(pb::infer_parameter::ParameterChoice::StringParam(
            value.into(),
        )),
    };
    let int = |value: i64| pb::InferParameter {
        parameter_choice: Some(pb::infer_parameter::ParameterChoice::Int64Param(value)),
    };

    // The server stops the call at the request's deadline (the `timeout` parameter).
    let looping = HashMap::from([
        ("attack".to_string(), string("loop")),
        ("timeout".to_string(), int(300_000)),
    ]);
    let started = std::time::Instant::now();
    let status = client
        .model_infer(request("slow", looping))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));

    // ... and at the gRPC deadline of the call.
    let looping = HashMap::from([("attack".to_string(), string("loop"))]);
    let mut timed = tonic::Request::new(request("slow", looping));
    timed
        .metadata_mut()
        .insert("grpc-timeout", "400m".parse().unwrap());
    let status = client.model_infer(timed).await.unwrap_err();
    // The client gives up at the same moment (CANCELLED) or gets the server's answer; either way
    // the server itself must have stopped the call at 400 ms, not at the model's 5 s.
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    let stopped = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        server
            .logs()
            .iter()
            .any(|line| line.contains("deadline of 400ms"))
    });
    assert!(
        stopped,
        "the server did not stop the call at the gRPC deadline"
    );

    // A runtime failure is INTERNAL, and the model answers its next request.
    let trapping = HashMap::from([("attack".to_string(), string("trap"))]);
    let status = client
        .model_infer(request("slow", trapping))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(status.message().contains("trapped"), "{status:?}");

    let status = client
        .model_infer(request("broken", HashMap::new()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let ready = client
        .model_ready(pb::ModelReadyRequest {
            name: "broken".into(),
            version: String::new(),
        })
        .await
        .unwrap();
    assert!(!ready.into_inner().ready);

    // Compressed both ways.
    let mut gzip = client
        .clone()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    let echo = gzip
        .model_infer(request("slow", HashMap::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        echo.raw_output_contents,
        vec![1.0f64.to_le_bytes().to_vec()]
    );
}

/// The hostile test runtime as model `probe`.
fn probe_models() -> tempfile::TempDir {
    crate::support::probe_repository(r#"{"implementation": "hostile.wasm"}"#)
}

fn probe_request(
    parameters: &[(&str, pb::infer_parameter::ParameterChoice)],
) -> pb::ModelInferRequest {
    pb::ModelInferRequest {
        model_name: "probe".into(),
        inputs: vec![input(
            "x",
            "FP64",
            vec![1],
            Some(pb::InferTensorContents {
                fp64_contents: vec![1.0],
                ..Default::default()
            }),
        )],
        parameters: parameters
            .iter()
            .map(|(name, choice)| {
                (
                    name.to_string(),
                    pb::InferParameter {
                        parameter_choice: Some(choice.clone()),
                    },
                )
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_infer_carries_every_response_of_a_streaming_runtime() {
    use pb::infer_parameter::ParameterChoice;
    let models = probe_models();
    let server = Server::start(models.path());
    let mut client = client(&server).await;
    let requests = tokio_stream::iter(vec![
        probe_request(&[("responses", ParameterChoice::Int64Param(3))]),
        probe_request(&[("attack", ParameterChoice::StringParam("nope".into()))]),
        probe_request(&[]),
    ]);
    let mut answers = client
        .model_stream_infer(requests)
        .await
        .unwrap()
        .into_inner();
    let mut received = Vec::new();
    while let Some(answer) = answers.message().await.unwrap() {
        received.push(answer);
    }
    assert_eq!(received.len(), 5, "3 + 1 error + 1: {received:?}");
    for (index, answer) in received[..3].iter().enumerate() {
        let response = answer.infer_response.as_ref().unwrap();
        assert_eq!(response.outputs[0].name, "index");
        assert_eq!(
            response.outputs[0]
                .contents
                .as_ref()
                .unwrap()
                .int64_contents,
            vec![index as i64]
        );
    }
    assert!(received[3].error_message.contains("unknown attack"));
    let echo = received[4].infer_response.as_ref().unwrap();
    assert_eq!(
        echo.outputs[0].contents.as_ref().unwrap().fp64_contents,
        vec![1.0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_reaches_the_runtime_and_its_headers_come_back() {
    use pb::infer_parameter::ParameterChoice;
    let models = probe_models();
    let server = Server::start(models.path());
    let mut client = client(&server).await;
    let mut request = tonic::Request::new(probe_request(&[(
        "attack",
        ParameterChoice::StringParam("inspect".into()),
    )]));
    request
        .metadata_mut()
        .insert("x-tenant", "acme".parse().unwrap());
    let response = client.model_infer(request).await.unwrap();
    assert_eq!(response.metadata().get("x-runtime").unwrap(), "hostile");
    let response = response.into_inner();
    assert!(!response.parameters.contains_key("headers"));
    let report = &response.outputs[0]
        .contents
        .as_ref()
        .unwrap()
        .bytes_contents;
    assert!(
        report.iter().any(|line| line == b"header x-tenant=acme"),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn model_config_and_statistics_rpcs() {
    let server = Server::start(&example_models());
    let mut client = client(&server).await;
    let config = client
        .model_config(pb::ModelConfigRequest {
            name: "house-prices".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    assert_eq!(config.name, "house-prices");
    assert_eq!(config.backend, "mlhost");
    assert_eq!(config.input[0].data_type, pb::DataType::TypeFp32 as i32);
    assert_eq!(config.input[0].dims, vec![-1, 3]);
    assert_eq!(config.output[0].data_type, pb::DataType::TypeFp64 as i32);
    let missing = client
        .model_config(pb::ModelConfigRequest {
            name: "nothing".into(),
            version: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    client
        .model_infer(house_prices_request(true))
        .await
        .unwrap();
    client
        .model_infer(house_prices_request(false))
        .await
        .unwrap();
    let mut bad = house_prices_request(false);
    bad.inputs[0].shape = vec![3, 2];
    client.model_infer(bad).await.unwrap_err();
    let stats = client
        .model_statistics(pb::ModelStatisticsRequest {
            name: "house-prices".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .model_stats;
    assert_eq!(stats.len(), 1);
    let inference = stats[0].inference_stats.as_ref().unwrap();
    assert_eq!(inference.success.as_ref().unwrap().count, 2);
    assert_eq!(inference.fail.as_ref().unwrap().count, 1);
    assert_eq!(stats[0].execution_count, 2);
    let all = client
        .model_statistics(pb::ModelStatisticsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .model_stats;
    let mut names: Vec<&str> = all.iter().map(|stats| stats.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "house-prices",
            "iris",
            "lightgbm-classifier",
            "onnx-iris",
            "xgboost-classifier"
        ]
    );
}

/// Requests and answers of tens of KB on one connection (more than a TCP segment, so the server
/// writes more than once): with Nagle's algorithm on the accepted socket, each waited for the
/// client's delayed ACK, about 40 ms; with TCP_NODELAY a round trip takes a few milliseconds.
#[tokio::test(flavor = "multi_thread")]
async fn large_messages_do_not_wait_for_delayed_acks() {
    let server = Server::start(&example_models());
    let mut client = client(&server).await;
    let rows = 4096;
    let request = pb::ModelInferRequest {
        model_name: "iris".into(),
        inputs: vec![input("input-0", "FP32", vec![rows, 4], None)],
        raw_input_contents: vec![fp32(&vec![1.0; rows as usize * 4])],
        ..Default::default()
    };
    let mut took = Vec::new();
    for _ in 0..15 {
        let started = std::time::Instant::now();
        client.model_infer(request.clone()).await.unwrap();
        took.push(started.elapsed());
    }
    took.sort();
    let median = took[took.len() / 2];
    assert!(
        median < std::time::Duration::from_millis(30),
        "median round trip {median:?}: {took:?}"
    );
}
