//! Mutated requests against the real server: REST bodies (JSON, the binary extension) and gRPC
//! messages (protobuf bytes), each a valid request with bytes overwritten, inserted, removed or
//! cut. Every one gets an answer on its connection, none a 5xx (gRPC: INTERNAL or UNKNOWN) but
//! tonic's own "failed to decode Protobuf message"; the server logs no panic and answers
//! correctly afterwards. `MLHOST_FUZZ_COUNT` sets how many of each (scripts/fuzz-long).

use crate::support::{Server, example_models};
use mlhost::pb;
use prost::Message;
use std::time::Instant;

/// Mutated inputs of each kind by default: 20,000 in all (about 2 s in a debug build).
const REST_COUNT: usize = 12_000;
const GRPC_COUNT: usize = 8_000;
/// Connections (and threads) the inputs are spread over.
const CLIENTS: usize = 4;

/// xorshift64*: reproducible mutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// Bytes of JSON a mutation inserts: structure as well as noise.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"-1",
    b"1e309",
    b"null",
    b"true",
    b"\\u0000",
    b"\"BYTES\"",
    b"\"FP16\"",
    b"18446744073709551616",
    b"\"binary_data_size\"",
    b"0.5",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if at < bytes.len() => bytes[at] = rng.next() as u8,
            1 => bytes.insert(at.min(bytes.len()), rng.next() as u8),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            3 => bytes.truncate(at),
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = at.min(bytes.len());
                bytes.splice(at..at, token.iter().copied());
            }
            _ => {
                // A run of the seed repeated: lengths, nesting.
                let end = (at + rng.below(16)).min(bytes.len());
                let run = bytes[at.min(end)..end].to_vec();
                bytes.splice(at.min(end)..at.min(end), run);
            }
        }
    }
    bytes
}

fn rest_seeds() -> Vec<(Vec<u8>, Option<usize>)> {
    let json = |value: serde_json::Value| value.to_string().into_bytes();
    let house = json(
        serde_json::json!({"id": "f", "inputs": [{"name": "features",
        "datatype": "FP32", "shape": [2, 3], "data": [1, 2, 4, 0.5, 0, -8]}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": true}}]}),
    );
    let iris = json(
        serde_json::json!({"inputs": [{"name": "input-0", "datatype": "FP64",
        "shape": [1, 4], "data": [[5.1, 3.5, 1.4, 0.2]], "parameters": {"content_type": "np"}}],
        "parameters": {"timeout": 1000000}}),
    );
    let header = json(
        serde_json::json!({"inputs": [{"name": "features", "datatype": "FP32",
        "shape": [1, 3], "parameters": {"binary_data_size": 12}}]}),
    );
    let mut binary = header.clone();
    for value in [1.0f32, 2.0, 3.0] {
        binary.extend_from_slice(&value.to_le_bytes());
    }
    vec![(house, None), (iris, None), (binary, Some(header.len()))]
}

/// Sends `count` mutated REST bodies over one keep-alive connection; returns the 5xx answers.
fn rest_client(server: &Server, count: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    let seeds = rest_seeds();
    let mut connection = server.connect().no_delay();
    let mut failures = Vec::new();
    for _ in 0..count {
        let (body, header) = &seeds[rng.below(seeds.len())];
        let body = mutate(&mut rng, body);
        let path = if rng.below(2) == 0 {
            "/v2/models/house-prices/infer"
        } else {
            "/v2/models/iris/infer"
        };
        let length = header.map(|length| length.to_string());
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(length) = &length {
            headers.push(("Inference-Header-Content-Length", length));
        }
        // A dropped connection panics here (the response cannot be read).
        let response = connection.request("POST", path, &headers, &body);
        if response.status >= 500 {
            failures.push(format!("{} {:?}", response.status, response.body));
        }
    }
    failures
}

/// Protobuf bytes in, a decoded response out: lets the test send messages no typed client
/// would.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = pb::ModelInferResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = pb::ModelInferResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<pb::ModelInferResponse>, tonic::Status> {
        pb::ModelInferResponse::decode(src)
            .map(Some)
            .map_err(|error| tonic::Status::internal(error.to_string()))
    }
}

fn grpc_seeds() -> Vec<Vec<u8>> {
    let input = |name: &str, datatype: &str, shape: Vec<i64>, contents| {
        pb::model_infer_request::InferInputTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape,
            contents,
            ..Default::default()
        }
    };
    let typed = pb::ModelInferRequest {
        model_name: "house-prices".into(),
        id: "g".into(),
        inputs: vec![input(
            "features",
            "FP32",
            vec![2, 3],
            Some(pb::InferTensorContents {
                fp32_contents: vec![1.0, 2.0, 4.0, 0.5, 0.0, -8.0],
                ..Default::default()
            }),
        )],
        ..Default::default()
    };
    let raw = pb::ModelInferRequest {
        model_name: "iris".into(),
        inputs: vec![input("input-0", "FP64", vec![1, 4], None)],
        raw_input_contents: vec![
            [5.1f64, 3.5, 1.4, 0.2]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ],
        ..Default::default()
    };
    vec![typed.encode_to_vec(), raw.encode_to_vec()]
}

/// Sends `count` mutated gRPC messages on one channel; returns the unexpected failures.
async fn grpc_client(server: &Server, count: usize, seed: u64) -> Vec<String> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.grpc_address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    let path = http::uri::PathAndQuery::from_static("/inference.GRPCInferenceService/ModelInfer");
    let mut rng = Rng(seed);
    let seeds = grpc_seeds();
    let mut failures = Vec::new();
    for _ in 0..count {
        let seed = &seeds[rng.below(seeds.len())];
        let message = mutate(&mut rng, seed);
        grpc.ready().await.unwrap();
        let answer = grpc
            .unary(tonic::Request::new(message), path.clone(), RawCodec)
            .await;
        if let Err(status) = answer {
            let tonic_decode = status
                .message()
                .contains("failed to decode Protobuf message");
            let server_side = matches!(
                status.code(),
                tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::Unavailable
            );
            if server_side && !tonic_decode {
                failures.push(format!("{status:?}"));
            }
        }
    }
    failures
}

/// How many inputs of each kind: `MLHOST_FUZZ_COUNT` (REST and gRPC each), else the defaults.
fn counts() -> (usize, usize) {
    match std::env::var("MLHOST_FUZZ_COUNT")
        .ok()
        .and_then(|count| count.parse().ok())
    {
        Some(count) => (count, count),
        None => (REST_COUNT, GRPC_COUNT),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mutated_rest_bodies_and_grpc_messages_get_answers_and_no_5xx() {
    let server = Server::start(&example_models());
    let (rest_count, grpc_count) = counts();
    let started = Instant::now();
    let rest_failures: Vec<String> = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let clients: Vec<_> = (0..CLIENTS)
                .map(|index| {
                    let server = &server;
                    scope.spawn(move || rest_client(server, rest_count / CLIENTS, 7 + index as u64))
                })
                .collect();
            clients
                .into_iter()
                .flat_map(|client| client.join().unwrap())
                .collect()
        })
    });
    let rest_time = started.elapsed();
    let started = Instant::now();
    let mut grpc_failures = Vec::new();
    let clients =
        (0..CLIENTS).map(|index| grpc_client(&server, grpc_count / CLIENTS, 99 + index as u64));
    for failures in futures_util::future::join_all(clients).await {
        grpc_failures.extend(failures);
    }
    eprintln!(
        "{rest_count} REST bodies in {rest_time:?}, {grpc_count} gRPC messages in {:?}",
        started.elapsed()
    );
    assert!(
        rest_failures.is_empty(),
        "{} 5xx: {:?}",
        rest_failures.len(),
        &rest_failures[..rest_failures.len().min(5)]
    );
    assert!(
        grpc_failures.is_empty(),
        "{} failures: {:?}",
        grpc_failures.len(),
        &grpc_failures[..grpc_failures.len().min(5)]
    );
    let panics: Vec<String> = server
        .logs()
        .into_iter()
        .filter(|line| line.contains("panicked"))
        .collect();
    assert!(panics.is_empty(), "{panics:?}");

    // The server still answers, and correctly.
    let request = serde_json::json!({"inputs": [{"name": "features", "datatype": "FP32",
        "shape": [1, 3], "data": [1, 2, 4]}]});
    let response =
        tokio::task::block_in_place(|| server.post_json("/v2/models/house-prices/infer", &request));
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.json()["outputs"][0]["name"], "predict");
}
