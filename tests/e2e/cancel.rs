//! Cancellation: a client that goes away (a closed connection, a cancelled gRPC call) stops its
//! request's call, so the model's instance is free again long before the call's deadline.

use crate::support::{Server, hostile_component, model_folder};
use mlhost::pb;
use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// The model's deadline: a call nobody stops runs this long.
const TIMEOUT_SECONDS: u64 = 30;

/// The hostile runtime with one instance and a long deadline; `batching` turns adaptive
/// batching on.
fn repository(batching: bool) -> tempfile::TempDir {
    let batch = if batching {
        r#", "max_batch_size": 8, "max_batch_time": 0.005"#
    } else {
        ""
    };
    let settings = format!(
        r#"{{"implementation": "hostile.wasm", "parallel_workers": 1, "timeout_seconds": {TIMEOUT_SECONDS}{batch}}}"#
    );
    let dir = model_folder(&[("hostile/model-settings.json", &settings)]);
    std::fs::write(dir.path().join("hostile/hostile.wasm"), hostile_component()).unwrap();
    dir
}

fn body(attack: &str) -> String {
    json!({
        "parameters": {"attack": attack},
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 1], "data": [1.5, -2.0]}]
    })
    .to_string()
}

/// Sends a looping request on a connection of its own, and closes it after `after`.
fn loop_then_hang_up(server: &Server, after: Duration) {
    let mut stream = std::net::TcpStream::connect(server.address).unwrap();
    let body = body("loop");
    write!(
        stream,
        "POST /v2/models/hostile/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(after);
    drop(stream);
}

/// How long the model then takes to answer a good request (its only instance must be free).
fn next_answer_takes(server: &Server) -> Duration {
    let started = Instant::now();
    let response = server.post_json(
        "/v2/models/hostile/infer",
        &serde_json::from_str(&body("")).unwrap(),
    );
    assert_eq!(response.status, 200, "{}", response.error());
    started.elapsed()
}

/// The abandoned call is stopped (the server says so within a few seconds, far from the
/// call's deadline), and the model answers again at once.
fn assert_cancelled(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server
        .logs()
        .iter()
        .any(|line| line.contains("cancelled by its client"))
    {
        assert!(
            Instant::now() < deadline,
            "the abandoned call was not stopped: {:?}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = next_answer_takes(server);
    assert!(
        took < Duration::from_secs(5),
        "the next request waited {took:?}"
    );
}

#[test]
fn a_rest_client_that_hangs_up_stops_its_call() {
    let dir = repository(false);
    let server = Server::start(dir.path());
    loop_then_hang_up(&server, Duration::from_millis(1000));
    assert_cancelled(&server);
}

#[test]
fn a_batched_request_alone_in_its_batch_stops_when_its_client_hangs_up() {
    let dir = repository(true);
    let server = Server::start(dir.path());
    loop_then_hang_up(&server, Duration::from_millis(1000));
    assert_cancelled(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_grpc_call_stops_its_call() {
    let dir = repository(false);
    let server = Server::start(dir.path());
    let mut client = GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_address))
        .await
        .expect("connect over gRPC");
    let request = pb::ModelInferRequest {
        model_name: "hostile".into(),
        parameters: HashMap::from([(
            "attack".to_string(),
            pb::InferParameter {
                parameter_choice: Some(pb::infer_parameter::ParameterChoice::StringParam(
                    "loop".into(),
                )),
            },
        )]),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "x".into(),
            datatype: "FP64".into(),
            shape: vec![2],
            parameters: HashMap::new(),
            contents: Some(pb::InferTensorContents {
                fp64_contents: vec![1.5, -2.0],
                ..Default::default()
            }),
        }],
        ..Default::default()
    };
    let call = tokio::spawn(async move { client.model_infer(request).await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    call.abort();
    let _ = call.await;
    let server = std::sync::Arc::new(server);
    let checked = server.clone();
    tokio::task::spawn_blocking(move || assert_cancelled(&checked))
        .await
        .unwrap();
}
