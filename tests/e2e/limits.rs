//! Settings out of range, the instance pool shared by models, components named as
//! `implementation`, and error messages that quote clients: each fails one model or one request,
//! with a message that says what is wrong, never the server.

use crate::support::{Server, linear_component, model_folder};
use mlhost::pb;
use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::Channel;

fn linear() -> String {
    json!({"kind": "linear", "coefficients": [[2.0]], "intercepts": [1.0], "input_name": "x"})
        .to_string()
}

fn infer(server: &Server, model: &str) -> crate::support::Response {
    server.post_json(
        &format!("/v2/models/{model}/infer"),
        &json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [3]}]}),
    )
}

/// Every model of the repository index, by name: (state, reason).
fn index(server: &Server) -> HashMap<String, (String, String)> {
    let response = server.post_json("/v2/repository/index", &json!({}));
    assert_eq!(response.status, 200);
    let Value::Array(models) = response.json() else {
        panic!("the index is not a list");
    };
    models
        .iter()
        .map(|model| {
            let text = |field: &str| model[field].as_str().unwrap_or_default().to_string();
            (text("name"), (text("state"), text("reason")))
        })
        .collect()
}

fn unavailable_because(server: &Server, model: &str, words: &[&str]) {
    let index = index(server);
    let (state, reason) = &index[model];
    assert_eq!(state, "UNAVAILABLE", "{model}: {reason}");
    for word in words {
        assert!(reason.contains(word), "{model}: {reason:?} lacks {word:?}");
    }
}

#[test]
fn a_model_with_values_out_of_range_fails_alone_and_says_why() {
    let dir = model_folder(&[
        (
            "good/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("good/linear.json", &linear()),
        (
            "workers/model-settings.json",
            r#"{"implementation": "linear", "parallel_workers": 100000}"#,
        ),
        ("workers/linear.json", &linear()),
        (
            "timeout/model-settings.json",
            r#"{"implementation": "linear", "timeout_seconds": -1}"#,
        ),
        ("timeout/linear.json", &linear()),
        (
            "batch/model-settings.json",
            r#"{"implementation": "linear", "max_batch_size": 18446744073709551615, "max_batch_time": 1e308}"#,
        ),
        ("batch/linear.json", &linear()),
    ]);
    let server = Server::start(dir.path());
    assert_eq!(infer(&server, "good").status, 200);
    let file = "model-settings.json: field `";
    unavailable_because(&server, "workers", &[file, "parallel_workers`", "100000"]);
    unavailable_because(
        &server,
        "timeout",
        &[file, "timeout_seconds`", "must be positive"],
    );
    unavailable_because(&server, "batch", &[file, "max_batch_size`"]);

    // A load answers with the same reason, and the server keeps serving.
    let response = server
        .connect()
        .post("/v2/repository/models/workers/load", b"");
    assert_eq!(response.status, 400);
    assert!(response.error().contains("parallel_workers"));
    std::fs::write(
        dir.path().join("batch/model-settings.json"),
        r#"{"implementation": "linear", "max_batch_size": 8, "max_batch_time": 1e308}"#,
    )
    .unwrap();
    let response = server
        .connect()
        .post("/v2/repository/models/batch/load", b"");
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("`max_batch_time`"),
        "{}",
        response.error()
    );
    assert_eq!(infer(&server, "good").status, 200);
}

#[test]
fn too_many_workers_on_the_command_line_are_refused_with_the_range() {
    let dir = model_folder(&[
        ("m/model-settings.json", r#"{"implementation": "linear"}"#),
        ("m/linear.json", &linear()),
    ]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mlhost"))
        .args(["serve", "--parallel-workers", "100000", "--models"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--parallel-workers") && stderr.contains("0..=1024"),
        "{stderr}"
    );
}

#[test]
fn a_model_cannot_take_the_pool_slots_another_needs_to_reload() {
    let dir = model_folder(&[
        (
            "small/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("small/linear.json", &linear()),
        (
            "greedy/model-settings.json",
            r#"{"implementation": "linear", "parallel_workers": 7}"#,
        ),
        ("greedy/linear.json", &linear()),
    ]);
    // 8 slots: the small model holds 1 (and 1 for its reload); 7 more workers would leave it
    // none to reload with.
    let server = Server::start_with(dir.path(), &[], &[("MLHOST_INSTANCE_POOL_SIZE", "8")]);
    unavailable_because(
        &server,
        "greedy",
        &["instance_pool_size", "parallel_workers"],
    );
    for _ in 0..3 {
        let response = server
            .connect()
            .post("/v2/repository/models/small/load", b"");
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        assert_eq!(infer(&server, "small").status, 200);
    }
    // Three workers fit beside it, reloads included.
    std::fs::write(
        dir.path().join("greedy/model-settings.json"),
        r#"{"implementation": "linear", "parallel_workers": 3}"#,
    )
    .unwrap();
    for model in ["greedy", "small", "greedy", "small"] {
        // A swapped-out version's slots are free once its workers have stopped.
        std::thread::sleep(Duration::from_millis(100));
        let path = format!("/v2/repository/models/{model}/load");
        let response = server.connect().post(&path, b"");
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
    }
}

#[test]
fn components_are_confined_and_their_size_checked_before_they_are_read() {
    let dir = model_folder(&[
        (
            "own/model-settings.json",
            r#"{"implementation": "linear.wasm"}"#,
        ),
        ("own/linear.json", &linear()),
        (
            "escape/model-settings.json",
            r#"{"implementation": "../outside/linear.wasm"}"#,
        ),
        ("escape/linear.json", &linear()),
        (
            "shared/model-settings.json",
            r#"{"implementation": "linear.wasm"}"#,
        ),
        ("shared/linear.json", &linear()),
        (
            "huge/model-settings.json",
            r#"{"implementation": "huge.wasm"}"#,
        ),
        ("huge/linear.json", &linear()),
        (
            "builtin/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("builtin/linear.json", &linear()),
    ]);
    let root = dir.path();
    std::fs::create_dir_all(root.join("outside")).unwrap();
    std::fs::copy(linear_component(), root.join("own/linear.wasm")).unwrap();
    std::fs::copy(linear_component(), root.join("outside/linear.wasm")).unwrap();
    let absolute = root.join("outside/linear.wasm");
    let settings = json!({"implementation": absolute.to_str().unwrap()}).to_string();
    std::fs::create_dir_all(root.join("absolute")).unwrap();
    std::fs::write(root.join("absolute/model-settings.json"), settings).unwrap();
    std::fs::write(root.join("absolute/linear.json"), linear()).unwrap();
    // 2 GiB, sparse: reading it would take 2 GiB of memory and seconds.
    let huge = std::fs::File::create(root.join("huge/huge.wasm")).unwrap();
    huge.set_len(2 << 30).unwrap();

    let runtimes = tempfile::tempdir().unwrap();
    std::fs::copy(linear_component(), runtimes.path().join("linear.wasm")).unwrap();
    let started = Instant::now();
    let server = Server::start_with(
        root,
        &[],
        &[("MLHOST_RUNTIMES_DIR", runtimes.path().to_str().unwrap())],
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    for model in ["own", "shared", "builtin"] {
        assert_eq!(infer(&server, model).status, 200, "{model}");
    }
    for model in ["escape", "absolute"] {
        unavailable_because(&server, model, &["outside the model's folder"]);
    }
    unavailable_because(
        &server,
        "huge",
        &["2147483648 bytes", "max_component_size_mb"],
    );
}

async fn grpc(server: &Server) -> GrpcInferenceServiceClient<Channel> {
    GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_address))
        .await
        .expect("connect over gRPC")
}

/// A request of one FP32 row for house-prices (which takes 3 features), with `raw` as its data.
fn house_prices(name: &str, input: &str, raw: Vec<u8>) -> pb::ModelInferRequest {
    let columns = (raw.len() / 4).max(1) as i64;
    pb::ModelInferRequest {
        model_name: name.into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: input.into(),
            datatype: "FP32".into(),
            shape: vec![1, columns],
            ..Default::default()
        }],
        raw_input_contents: vec![raw],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_errors_cap_client_text_and_say_what_is_true() {
    let server = Server::start(&crate::support::example_models());
    let mut client = grpc(&server).await;

    let long_name = "m".repeat(10_000);
    let status = client
        .model_infer(house_prices(&long_name, "features", vec![0; 12]))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::NotFound,
        "{}",
        &status.message()[..100]
    );
    assert!(
        status.message().len() < 400,
        "{} bytes",
        status.message().len()
    );
    assert!(
        status.message().contains("cut: 10000 bytes"),
        "{}",
        status.message()
    );

    let long_input = "i".repeat(100_000);
    let status = client
        .model_infer(house_prices("house-prices", &long_input, vec![0; 12]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().len() <= 2100,
        "{} bytes",
        status.message().len()
    );

    let status = client
        .model_infer(house_prices("house-prices", "features", vec![0; 17]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("17 bytes of FP32 data is not a whole number of elements"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zero_deadline_is_deadline_exceeded_and_unary_calls_carry_one_message() {
    let server = Server::start(&crate::support::example_models());
    let mut client = grpc(&server).await;
    let request = || house_prices("house-prices", "features", vec![0; 12]);
    // tonic's client also times the call out itself (CANCELLED, with a transport error as the
    // source) when its timer fires before the server's answer arrives: only the server's answers
    // count, and most calls get one.
    let mut answered = 0;
    for _ in 0..200 {
        let mut call = tonic::Request::new(request());
        call.metadata_mut()
            .insert("grpc-timeout", "0n".parse().unwrap());
        let status = client.model_infer(call).await.unwrap_err();
        if std::error::Error::source(&status).is_none() {
            assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
            answered += 1;
        }
    }
    assert!(answered > 0, "the server answered none of 200 calls");

    // Two messages to the unary ModelInfer: sent as a client stream on its path.
    let channel = Channel::from_shared(format!("http://{}", server.grpc_address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw = tonic::client::Grpc::new(channel);
    raw.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/inference.GRPCInferenceService/ModelInfer");
    let messages = tokio_stream::iter([request(), request()]);
    let answer: Result<tonic::Response<pb::ModelInferResponse>, _> = raw
        .client_streaming(
            tonic::Request::new(messages),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await;
    let status = answer.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("one message"), "{status:?}");

    // One message still works on the same channel.
    let mut client = grpc(&server).await;
    let reply = client.model_infer(request()).await.unwrap().into_inner();
    assert_eq!(reply.model_name, "house-prices");
}

#[test]
fn rest_errors_cap_client_text() {
    let server = Server::start(&crate::support::example_models());
    let long_name = "m".repeat(10_000);
    let response = server
        .connect()
        .post(&format!("/v2/models/{long_name}/infer"), b"{}");
    assert_eq!(response.status, 404);
    let error = response.error();
    assert!(
        error.len() < 400 && error.contains("cut: 10000 bytes"),
        "{error}"
    );

    let long_input = "i".repeat(100_000);
    let body = json!({"inputs": [{"name": long_input, "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]});
    let response = server.post_json("/v2/models/house-prices/infer", &body);
    assert_eq!(response.status, 400);
    let error = response.error();
    assert!(
        error.len() <= 2100 && error.contains("…[cut: "),
        "{} bytes",
        error.len()
    );
}
