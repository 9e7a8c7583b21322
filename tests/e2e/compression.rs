//! Compression both ways: gzip and deflate request bodies within the decompressed size limit,
//! answers compressed for the clients that accept it (not the small ones), on REST and gRPC.

use crate::support::{Connection, Response, Server, model_folder};
use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use mlhost::pb;
use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use tonic::codec::CompressionEncoding;

/// A repository with model `double` (`y = 2x + 1`) and `settings` as its settings.json.
fn repository(settings: &str) -> tempfile::TempDir {
    model_folder(&[
        ("settings.json", settings),
        (
            "double/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        (
            "double/linear.json",
            r#"{"kind": "linear", "coefficients": [[2.0]], "intercepts": [1.0], "input_name": "x"}"#,
        ),
    ])
}

fn compress(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let level = Compression::default();
    match encoding {
        "gzip" => {
            let mut encoder = GzEncoder::new(Vec::new(), level);
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        "deflate" => {
            let mut encoder = ZlibEncoder::new(Vec::new(), level);
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        _ => {
            let mut encoder = DeflateEncoder::new(Vec::new(), level);
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
    }
}

/// A response's body, decompressed as its `Content-Encoding` says.
fn decompressed(response: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    match response.header("content-encoding") {
        Some("gzip") => flate2::read::GzDecoder::new(&response.body[..])
            .read_to_end(&mut out)
            .unwrap(),
        Some("deflate") => flate2::read::ZlibDecoder::new(&response.body[..])
            .read_to_end(&mut out)
            .unwrap(),
        other => panic!("not compressed: {other:?}"),
    };
    out
}

/// An infer request of `rows` rows, as JSON.
fn rows(rows: usize) -> Vec<u8> {
    let data: Vec<f64> = (0..rows).map(|row| row as f64).collect();
    json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [rows, 1], "data": data}]})
        .to_string()
        .into_bytes()
}

fn infer(connection: &mut Connection, headers: &[(&str, &str)], body: &[u8]) -> Response {
    connection.request("POST", "/v2/models/double/infer", headers, body)
}

#[test]
fn rest_bodies_and_answers_are_compressed_both_ways_within_the_limits() {
    let dir = repository(r#"{"max_request_body_mb": 1}"#);
    let server = Server::start(dir.path());
    let mut connection = server.connect();

    // Request bodies: gzip, deflate (zlib's format, as HTTP means it) and raw deflate.
    for (format, header) in [("gzip", "gzip"), ("deflate", "deflate"), ("raw", "deflate")] {
        let body = compress(format, &rows(2));
        let response = infer(&mut connection, &[("Content-Encoding", header)], &body);
        assert_eq!(response.status, 200, "{format}: {:?}", response.json());
        assert_eq!(response.json()["outputs"][0]["data"], json!([1.0, 3.0]));
        // A small answer is not compressed, whatever the client accepts.
        assert_eq!(response.header("content-encoding"), None);
    }
    // A deflate bomb: 100 MiB of spaces stop at the 1 MiB limit of the decompressed body.
    let bomb = compress("deflate", &vec![b' '; 100 << 20]);
    assert!(bomb.len() < 1 << 20);
    let response = infer(&mut connection, &[("Content-Encoding", "deflate")], &bomb);
    assert_eq!(response.status, 413);
    assert!(
        response.error().contains("decompressed"),
        "{}",
        response.error()
    );
    let response = infer(
        &mut connection,
        &[("Content-Encoding", "deflate")],
        b"not deflate",
    );
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("malformed deflate"),
        "{}",
        response.error()
    );

    // Answers: compressed when accepted and at least 1 KiB, with `Vary`.
    let plain = infer(&mut connection, &[], &rows(300));
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), None);
    for encoding in ["gzip", "deflate"] {
        let response = infer(
            &mut connection,
            &[("Accept-Encoding", encoding)],
            &rows(300),
        );
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-encoding"), Some(encoding));
        assert_eq!(response.header("vary"), Some("accept-encoding"));
        assert!(response.body.len() < plain.body.len() / 2);
        let json: Value = serde_json::from_slice(&decompressed(&response)).unwrap();
        assert_eq!(json, plain.json());
    }
    let small = infer(&mut connection, &[("Accept-Encoding", "gzip")], &rows(2));
    assert_eq!(small.header("content-encoding"), None);

    // The binary extension: the header's length is the JSON's in the decompressed body.
    let request = br#"{"inputs": [{"name": "x", "datatype": "FP64", "shape": [300, 1], "parameters": {"binary_data_size": 2400}}], "parameters": {"binary_data_output": true}}"#;
    let mut body = request.to_vec();
    for row in 0..300 {
        body.extend_from_slice(&f64::from(row).to_le_bytes());
    }
    let length = request.len().to_string();
    let response = infer(
        &mut connection,
        &[
            ("Inference-Header-Content-Length", &length),
            ("Content-Encoding", "gzip"),
            ("Accept-Encoding", "gzip"),
        ],
        &compress("gzip", &body),
    );
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    let json_length: usize = response
        .header("inference-header-content-length")
        .unwrap()
        .parse()
        .unwrap();
    let body = decompressed(&response);
    let (json, data) = body.split_at(json_length);
    let json: Value = serde_json::from_slice(json).unwrap();
    assert_eq!(json["outputs"][0]["parameters"]["binary_data_size"], 2400);
    assert_eq!(data[..8], 1.0f64.to_le_bytes());
    assert_eq!(data[2392..], 599.0f64.to_le_bytes());
}

#[test]
fn compression_off_refuses_compressed_bodies_and_sends_none() {
    let dir = repository(r#"{"gzip_enabled": false}"#);
    let server = Server::start(dir.path());
    let mut connection = server.connect();
    let body = compress("deflate", &rows(2));
    let response = infer(&mut connection, &[("Content-Encoding", "deflate")], &body);
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("gzip_enabled: false"),
        "{}",
        response.error()
    );
    let response = infer(&mut connection, &[("Accept-Encoding", "gzip")], &rows(300));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-encoding"), None);
}

fn grpc_request(rows: usize) -> pb::ModelInferRequest {
    let data: Vec<u8> = (0..rows)
        .flat_map(|row| (row as f64).to_le_bytes())
        .collect();
    pb::ModelInferRequest {
        model_name: "double".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "x".into(),
            datatype: "FP64".into(),
            shape: vec![rows as i64, 1],
            parameters: HashMap::new(),
            contents: None,
        }],
        raw_input_contents: vec![data],
        ..Default::default()
    }
}

#[tokio::test]
async fn grpc_takes_and_sends_gzip_and_deflate_within_the_limit() {
    let dir = repository(r#"{"grpc_max_message_length": 1048576}"#);
    let server = Server::start(dir.path());
    let client = GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_address))
        .await
        .unwrap();
    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Deflate] {
        let mut compressed = client
            .clone()
            .send_compressed(encoding)
            .accept_compressed(encoding);
        let name = format!("{encoding:?}").to_lowercase();
        // A large answer comes compressed, a small one not.
        let large = compressed.model_infer(grpc_request(300)).await.unwrap();
        assert_eq!(
            large
                .metadata()
                .get("grpc-encoding")
                .map(|value| value.to_str().unwrap()),
            Some(name.as_str())
        );
        let output = &large.get_ref().raw_output_contents[0];
        assert_eq!(output[2392..], 599.0f64.to_le_bytes());
        let small = compressed.model_infer(grpc_request(2)).await.unwrap();
        assert_eq!(
            small.get_ref().raw_output_contents[0][8..],
            3.0f64.to_le_bytes()
        );
        // The message's compressed flag: set on the large answer only.
        let address = server.grpc_address.to_string();
        assert_eq!(compressed_flag(&address, grpc_request(300), &name).await, 1);
        assert_eq!(compressed_flag(&address, grpc_request(2), &name).await, 0);

        // A bomb: 8 MiB of zeros, a few KiB compressed, over the 1 MiB message limit.
        let mut bomb = grpc_request(1);
        bomb.raw_input_contents = vec![vec![0; 8 << 20]];
        let status = compressed.model_infer(bomb).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    }
    // A client that accepts nothing gets nothing compressed.
    let plain = client.clone().model_infer(grpc_request(300)).await.unwrap();
    assert_eq!(plain.metadata().get("grpc-encoding"), None);
}

/// The compressed flag of the answer to `request` (ModelInfer), sent by hand as one gRPC frame
/// with `grpc-accept-encoding: encoding`.
async fn compressed_flag(address: &str, request: pb::ModelInferRequest, encoding: &str) -> u8 {
    use http_body_util::BodyExt;
    let message = prost::Message::encode_to_vec(&request);
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{address}/inference.GRPCInferenceService/ModelInfer"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-accept-encoding", encoding)
        .body(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from(frame),
        )))
        .unwrap();
    let response = tower::ServiceExt::oneshot(channel, request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    body[0]
}
