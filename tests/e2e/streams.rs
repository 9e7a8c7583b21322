//! Streams whose client does not read: what the server holds for them stays bounded (16 MiB of
//! responses per stream, whatever the runtime sends), the runtime waits until the call's
//! deadline, and the stream then ends with an error that says the client did not read.

use crate::support::{Server, probe_repository};
use mlhost::pb;
use pb::infer_parameter::ParameterChoice;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

/// The probe model's timeout: how long a runtime waits for a client that does not read.
const TIMEOUT_SECONDS: u64 = 4;
/// Responses of the runtime's stream, each carrying a blob of [`MEGABYTES`] MiB (under gRPC's
/// 4 MiB message): 240 MiB of
/// data (about 480 MiB as JSON), that a client that does not read must not make the server hold.
const RESPONSES: i64 = 80;
const MEGABYTES: i64 = 3;
/// What the server may grow by while a stream is stalled: its 16 MiB of responses, what they
/// become on the way out (JSON events; protobuf messages, tonic's and HTTP/2's buffers), the
/// runtime's own memory and the allocator's slack. Measured (debug build): SSE 18 to 27 MiB with
/// the bound, 111 MiB without; gRPC 76 to 82 MiB with it, 319 MiB without.
const SSE_GROWTH_LIMIT_KIB: u64 = 64 * 1024;
const GRPC_GROWTH_LIMIT_KIB: u64 = 160 * 1024;

fn models() -> tempfile::TempDir {
    probe_repository(&format!(
        r#"{{"implementation": "hostile.wasm", "timeout_seconds": {TIMEOUT_SECONDS}}}"#
    ))
}

/// Checks the server's growth since `before` while the stream stalls (Linux only).
fn assert_bounded(server: &Server, before: u64, limit_kib: u64) {
    #[cfg(target_os = "linux")]
    {
        let grown = crate::support::rss_kib(server.pid()).saturating_sub(before);
        eprintln!("stalled stream: the server grew by {} MiB", grown / 1024);
        assert!(
            grown < limit_kib,
            "a stalled stream grew the server by {} MiB",
            grown / 1024
        );
    }
    let _ = (server, before, limit_kib);
}

fn baseline(server: &Server) -> u64 {
    // One small stream first: the model's instance is warm, its memory counted.
    let small = serde_json::json!({"parameters": {"responses": 2},
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]});
    assert_eq!(
        server
            .post_json("/v2/models/probe/infer_stream", &small)
            .status,
        200
    );
    #[cfg(target_os = "linux")]
    return crate::support::rss_kib(server.pid());
    #[cfg(not(target_os = "linux"))]
    0
}

#[test]
fn an_sse_client_that_does_not_read_holds_the_server_to_its_bound_and_gets_the_error() {
    let models = models();
    let server = Server::start(models.path());
    let before = baseline(&server);
    let body = serde_json::json!({"parameters": {"responses": RESPONSES, "megabytes": MEGABYTES},
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]})
    .to_string();
    let mut client = std::net::TcpStream::connect(server.address).unwrap();
    let head = format!(
        "POST /v2/models/probe/infer_stream HTTP/1.1\r\nHost: test\r\nContent-Type: \
         application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes()).unwrap();
    client.write_all(body.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(TIMEOUT_SECONDS - 1));
    assert_bounded(&server, before, SSE_GROWTH_LIMIT_KIB);
    std::thread::sleep(Duration::from_secs(2));
    assert_bounded(&server, before, SSE_GROWTH_LIMIT_KIB);

    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut received = Vec::new();
    client.read_to_end(&mut received).unwrap();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{}", &text[..200]);
    let events = text.matches("data: {").count();
    assert!(
        events > 1 && events < RESPONSES as usize,
        "{events} events before the end"
    );
    let tail = &text[text.len().saturating_sub(400)..];
    assert!(
        tail.contains(r#"data: {"error":"the client did not read the stream's responses"#),
        "{tail}"
    );
    // The server serves on.
    let small = serde_json::json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1],
        "data": [1.5]}]});
    let response = server.post_json("/v2/models/probe/infer", &small);
    assert_eq!(response.status, 200, "{response:?}");
}

fn request(parameters: &[(&str, ParameterChoice)]) -> pb::ModelInferRequest {
    pb::ModelInferRequest {
        model_name: "probe".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "x".into(),
            datatype: "FP64".into(),
            shape: vec![1],
            parameters: HashMap::new(),
            contents: Some(pb::InferTensorContents {
                fp64_contents: vec![1.0],
                ..Default::default()
            }),
        }],
        parameters: parameters
            .iter()
            .map(|(name, choice)| {
                let parameter = pb::InferParameter {
                    parameter_choice: Some(choice.clone()),
                };
                (name.to_string(), parameter)
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grpc_stream_that_is_not_read_holds_the_server_to_its_bound_and_gets_the_error() {
    use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
    let models = models();
    let server = Server::start(models.path());
    let before = tokio::task::block_in_place(|| baseline(&server));
    let mut client = GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_address))
        .await
        .unwrap()
        .max_decoding_message_size(64 << 20);
    let stalled = request(&[
        ("responses", ParameterChoice::Int64Param(RESPONSES)),
        ("megabytes", ParameterChoice::Int64Param(MEGABYTES)),
    ]);
    let mut answers = client
        .model_stream_infer(tokio_stream::iter(vec![stalled, request(&[])]))
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_secs(TIMEOUT_SECONDS - 1)).await;
    assert_bounded(&server, before, GRPC_GROWTH_LIMIT_KIB);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_bounded(&server, before, GRPC_GROWTH_LIMIT_KIB);

    let mut blobs = 0;
    let mut errors = Vec::new();
    let mut last = None;
    while let Some(answer) = answers.message().await.unwrap() {
        match answer.infer_response {
            Some(response) if response.outputs.len() == 2 => blobs += 1,
            Some(response) => last = Some(response),
            None => errors.push(answer.error_message),
        }
    }
    assert!(blobs > 1 && blobs < RESPONSES, "{blobs} responses");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("the client did not read the stream's responses"),
        "{errors:?}"
    );
    // The stream's next request is answered.
    let last = last.expect("the next request's answer");
    assert_eq!(last.outputs[0].name, "echo");
}
