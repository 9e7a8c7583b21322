//! Protocol extensions over raw HTTP: binary tensor data, statistics, model configuration,
//! server-sent event streaming, content types and custom headers.

use crate::support::{
    Connection, Response, Server, example_models, model_folder, probe_repository,
};
use serde_json::{Value, json};

const BINARY_HEADER: &str = "Inference-Header-Content-Length";

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

fn f64_values(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|chunk| f64::from_le_bytes(chunk.try_into().unwrap()))
        .collect()
}

/// Posts a JSON header followed by binary data, announcing the header's length.
fn post_binary(server: &Server, path: &str, header: &Value, binary: &[u8]) -> Response {
    let json = serde_json::to_vec(header).unwrap();
    let length = json.len().to_string();
    let body = [json, binary.to_vec()].concat();
    server.connect().request(
        "POST",
        path,
        &[
            ("Content-Type", "application/octet-stream"),
            (BINARY_HEADER, &length),
        ],
        &body,
    )
}

/// Splits a binary response into its JSON header and its binary data.
fn split_binary(response: &Response) -> (Value, &[u8]) {
    let length: usize = response
        .header(BINARY_HEADER)
        .unwrap_or_else(|| panic!("no {BINARY_HEADER}: {response:?}"))
        .parse()
        .unwrap();
    let json = serde_json::from_slice(&response.body[..length]).unwrap();
    (json, &response.body[length..])
}

/// house-prices: predict = 150·a + 12.5·b − 0.75·c + 20.
fn house_price(row: [f32; 3]) -> f64 {
    150.0 * f64::from(row[0]) + 12.5 * f64::from(row[1]) - 0.75 * f64::from(row[2]) + 20.0
}

const ROWS: [[f32; 3]; 2] = [[1.5, 3.0, 10.0], [2.0, 4.0, 0.5]];

#[test]
fn binary_inputs_and_outputs_round_trip() {
    let server = Server::start(&example_models());
    let binary = f32_bytes(&ROWS.concat());
    let header = json!({
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 3],
                    "parameters": {"binary_data_size": binary.len()}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": true}}],
    });
    let response = post_binary(&server, "/v2/models/house-prices/infer", &header, &binary);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    let (json, data) = split_binary(&response);
    let output = &json["outputs"][0];
    assert_eq!(output["shape"], json!([2, 1]));
    assert!(
        output.get("data").is_none(),
        "binary outputs carry no data: {json}"
    );
    assert_eq!(output["parameters"]["binary_data_size"], json!(16));
    assert_eq!(f64_values(data), ROWS.map(house_price).to_vec());

    // binary_data_output asks for every output in binary; JSON inputs mix with it.
    let response = server.post_json(
        "/v2/models/house-prices/infer",
        &json!({
            "parameters": {"binary_data_output": true},
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3], "data": ROWS[0]}],
        }),
    );
    let (_, data) = split_binary(&response);
    assert_eq!(f64_values(data), vec![house_price(ROWS[0])]);

    // Binary inputs with a JSON answer (binary_data false, and nothing asked).
    let header = json!({
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 3],
                    "parameters": {"binary_data_size": binary.len()}}],
    });
    let response = post_binary(&server, "/v2/models/house-prices/infer", &header, &binary);
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.header(BINARY_HEADER).is_none());
    assert_eq!(
        response.json()["outputs"][0]["data"],
        json!(ROWS.map(house_price))
    );
}

#[test]
fn a_raw_body_is_the_only_input() {
    let server = Server::start(&example_models());
    let response = server.connect().request(
        "POST",
        "/v2/models/house-prices/infer",
        &[(BINARY_HEADER, "0")],
        &f32_bytes(&ROWS.concat()),
    );
    assert_eq!(response.status, 200, "{response:?}");
    let (json, data) = split_binary(&response);
    assert_eq!(json["outputs"][0]["shape"], json!([2, 1]));
    assert_eq!(f64_values(data), ROWS.map(house_price).to_vec());

    // Seven floats are not rows of three.
    let response = server.connect().request(
        "POST",
        "/v2/models/house-prices/infer",
        &[(BINARY_HEADER, "0")],
        &f32_bytes(&[1.0; 7]),
    );
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("do not fit"),
        "{}",
        response.error()
    );
}

#[test]
fn malformed_binary_bodies_are_refused() {
    let server = Server::start(&example_models());
    let input = |parameters: Value| {
        json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3],
                            "parameters": parameters}]})
    };
    let twelve = f32_bytes(&[1.0, 2.0, 3.0]);
    let cases: Vec<(Value, Vec<u8>, &str)> = vec![
        (
            input(json!({"binary_data_size": 24})),
            twelve.clone(),
            "past the end",
        ),
        (
            input(json!({"binary_data_size": -4})),
            twelve.clone(),
            "non-negative",
        ),
        (
            input(json!({"binary_data_size": 8})),
            twelve[..8].to_vec(),
            "elements",
        ),
        (
            input(json!({"binary_data_size": 12})),
            [twelve.clone(), vec![0; 4]].concat(),
            "past the last",
        ),
        (
            input(json!({"binary_data_size": "12"})),
            twelve.clone(),
            "non-negative",
        ),
    ];
    for (header, binary, expected) in cases {
        let response = post_binary(&server, "/v2/models/house-prices/infer", &header, &binary);
        assert_eq!(response.status, 400, "{header}: {response:?}");
        assert!(
            response.error().contains(expected),
            "{header}: {}",
            response.error()
        );
    }

    // Data given both ways, and the JSON length past the end of the body.
    let both = json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3],
        "data": [1, 2, 3], "parameters": {"binary_data_size": 12}}]});
    let response = post_binary(&server, "/v2/models/house-prices/infer", &both, &twelve);
    assert_eq!(response.status, 400);
    assert!(response.error().contains("both"));
    for length in ["100000", "-1", "ten"] {
        let response = server.connect().request(
            "POST",
            "/v2/models/house-prices/infer",
            &[(BINARY_HEADER, length)],
            b"{\"inputs\": []}",
        );
        assert_eq!(response.status, 400, "{length}: {response:?}");
        assert!(response.error().contains("Inference-Header-Content-Length"));
    }
    // The server is fine afterwards.
    let response = post_binary(
        &server,
        "/v2/models/house-prices/infer",
        &input(json!({"binary_data_size": 12})),
        &twelve,
    );
    assert_eq!(response.status, 200);
}

#[test]
fn the_server_lists_its_extensions() {
    let server = Server::start(&example_models());
    let extensions = server.get("/v2").json()["extensions"].clone();
    for extension in [
        "binary_tensor_data",
        "statistics",
        "model_configuration",
        "model_repository",
        "schedule_policy",
        "parameters",
        "trace",
        "logging",
    ] {
        assert!(
            extensions.as_array().unwrap().contains(&json!(extension)),
            "{extension} missing from {extensions}"
        );
    }
}

fn stats_of(server: &Server, path: &str) -> Value {
    let response = server.get(path);
    assert_eq!(response.status, 200, "{response:?}");
    let stats = response.json()["model_stats"].clone();
    assert!(stats.is_array(), "{stats}");
    stats
}

fn count(stats: &Value, field: &str) -> u64 {
    stats["inference_stats"][field]["count"].as_u64().unwrap()
}

fn nanos(stats: &Value, field: &str) -> u64 {
    stats["inference_stats"][field]["ns"].as_u64().unwrap()
}

/// A batching linear model in two versions: `y = 2x` (version 1) and `y = 3x` (version 2).
fn versioned_batching_models() -> tempfile::TempDir {
    let settings = |version: &str| {
        format!(
            r#"{{"name": "scaled", "implementation": "linear", "max_batch_size": 8, "max_batch_time": 0.001,
                "parameters": {{"version": "{version}"}}}}"#
        )
    };
    let linear = |slope: f64| {
        format!(
            r#"{{"kind": "linear", "coefficients": [[{slope}]], "intercepts": [0.0], "input_name": "x"}}"#
        )
    };
    model_folder(&[
        ("scaled/1/model-settings.json", &settings("1")),
        ("scaled/1/linear.json", &linear(2.0)),
        ("scaled/2/model-settings.json", &settings("2")),
        ("scaled/2/linear.json", &linear(3.0)),
    ])
}

fn scaled_request(rows: usize) -> Value {
    json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [rows, 1], "data": vec![1.0; rows]}]})
}

#[test]
fn statistics_follow_successes_and_failures_per_version() {
    let models = versioned_batching_models();
    let server = Server::start(models.path());
    let all = stats_of(&server, "/v2/models/stats");
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    for stats in all.as_array().unwrap() {
        assert_eq!(stats["inference_count"], json!(0));
        assert_eq!(stats["last_inference"], json!(0));
    }

    for _ in 0..3 {
        let response = server.post_json("/v2/models/scaled/versions/1/infer", &scaled_request(2));
        assert_eq!(response.status, 200, "{response:?}");
    }
    let response = server.post_json("/v2/models/scaled/versions/2/infer", &scaled_request(4));
    assert_eq!(
        response.json()["outputs"][0]["data"],
        json!([3.0, 3.0, 3.0, 3.0])
    );
    // A request the runtime refuses (two columns for a one-feature model) fails.
    let bad =
        json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]});
    assert_eq!(
        server
            .post_json("/v2/models/scaled/versions/1/infer", &bad)
            .status,
        400
    );

    let one = &stats_of(&server, "/v2/models/scaled/versions/1/stats")[0];
    assert_eq!(one["name"], json!("scaled"));
    assert_eq!(one["version"], json!("1"));
    assert_eq!(count(one, "success"), 3);
    assert_eq!(count(one, "fail"), 1);
    assert_eq!(
        one["inference_count"],
        json!(6),
        "rows of a batching model: {one}"
    );
    assert!(one["last_inference"].as_u64().unwrap() > 1_600_000_000_000);
    for field in ["queue", "compute_input", "compute_infer", "compute_output"] {
        assert_eq!(count(one, field), 3, "{field}: {one}");
    }
    assert!(nanos(one, "success") >= nanos(one, "compute_infer"));
    let executions = one["execution_count"].as_u64().unwrap();
    let batches = one["batch_stats"].as_array().unwrap();
    let batch_runs: u64 = batches
        .iter()
        .map(|batch| batch["compute_infer"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(batch_runs, executions, "{one}");
    let rows: u64 = batches
        .iter()
        .map(|batch| {
            batch["batch_size"].as_u64().unwrap()
                * batch["compute_infer"]["count"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(rows, 6, "every row ran once: {one}");

    let two = &stats_of(&server, "/v2/models/scaled/versions/2/stats")[0];
    assert_eq!(count(two, "success"), 1);
    assert_eq!(count(two, "fail"), 0);
    assert_eq!(two["inference_count"], json!(4));
    assert_eq!(
        stats_of(&server, "/v2/models/scaled/stats")
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let missing = server.get("/v2/models/nothing/stats");
    assert_eq!(missing.status, 404);
    assert!(missing.error().contains("nothing"));
    assert_eq!(server.get("/v2/models/scaled/versions/9/stats").status, 404);
}

#[test]
fn model_configuration_in_triton_s_shape() {
    let server = Server::start(&example_models());
    let config = server.get("/v2/models/house-prices/config").json();
    assert_eq!(
        config,
        json!({
            "name": "house-prices",
            "platform": "linear",
            "backend": "mlhost",
            "max_batch_size": 0,
            "input": [{"name": "features", "data_type": "TYPE_FP32", "dims": [-1, 3]}],
            "output": [{"name": "predict", "data_type": "TYPE_FP64", "dims": [-1, 1]}],
        })
    );
    assert_eq!(server.get("/v2/models/nothing/config").status, 404);

    // A batching model leaves the batch dimension out of its dims.
    let models = model_folder(&[
        (
            "batched/model-settings.json",
            r#"{"implementation": "linear", "max_batch_size": 16, "max_batch_time": 0.002,
                "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 1]}],
                "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1, 1]}]}"#,
        ),
        (
            "batched/linear.json",
            r#"{"kind": "linear", "coefficients": [[1.0]], "intercepts": [0.0], "input_name": "x"}"#,
        ),
    ]);
    let server = Server::start(models.path());
    let config = server.get("/v2/models/batched/config").json();
    assert_eq!(config["max_batch_size"], json!(16));
    assert_eq!(config["input"][0]["dims"], json!([1]));
    assert_eq!(
        config["dynamic_batching"],
        json!({"preferred_batch_size": [], "max_queue_delay_microseconds": 2000})
    );
}

/// The hostile runtime (a test guest) next to nothing else, with input content types declared.
fn probe_models() -> tempfile::TempDir {
    probe_repository(
        r#"{"implementation": "hostile.wasm",
            "parameters": {"content_type": "np"},
            "inputs": [{"name": "blob", "datatype": "BYTES", "shape": [-1],
                        "parameters": {"content_type": "base64"}},
                       {"name": "x", "datatype": "FP64", "shape": [-1]}]}"#,
    )
}

/// Reads server-sent events: the JSON of each `data:` line.
fn sse_events(response: &Response) -> Vec<Value> {
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    String::from_utf8(response.body.clone())
        .unwrap()
        .split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let data = event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("{event:?}"));
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

#[test]
fn streaming_endpoints_send_each_response_as_an_event() {
    let models = probe_models();
    let server = Server::start(models.path());
    let request = |responses: i64| {
        json!({"id": "s1", "parameters": {"responses": responses},
               "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]})
    };
    for path in [
        "/v2/models/probe/infer_stream",
        "/v2/models/probe/generate_stream",
    ] {
        let response = server.post_json(path, &request(3));
        assert_eq!(response.status, 200, "{response:?}");
        let events = sse_events(&response);
        assert_eq!(events.len(), 3, "{events:?}");
        for (index, event) in events.iter().enumerate() {
            assert_eq!(event["id"], json!("s1"));
            assert_eq!(event["model_name"], json!("probe"));
            assert_eq!(event["outputs"][0]["name"], json!("index"));
            assert_eq!(event["outputs"][0]["data"], json!([index]));
        }
    }
    // Without `responses` the runtime answers once, as `infer` would.
    let single =
        json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1.5, 2.5]}]});
    let events = sse_events(&server.post_json("/v2/models/probe/infer_stream", &single));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["outputs"][0]["data"], json!([1.5, 2.5]));
    // generate is infer.
    let response = server.post_json("/v2/models/probe/generate", &single);
    assert_eq!(response.json()["outputs"][0]["data"], json!([1.5, 2.5]));

    // A request that fails its checks fails before the stream; one that fails in the runtime
    // ends the stream with an error event.
    let unknown = server.post_json("/v2/models/nothing/infer_stream", &single);
    assert_eq!(unknown.status, 404);
    let no_inputs = server.post_json("/v2/models/probe/infer_stream", &json!({"inputs": []}));
    assert_eq!(no_inputs.status, 400);
    let failing = json!({"parameters": {"attack": "nope"},
                         "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}]});
    let events = sse_events(&server.post_json("/v2/models/probe/infer_stream", &failing));
    assert_eq!(events.len(), 1);
    assert!(
        events[0]["error"]
            .as_str()
            .unwrap()
            .contains("unknown attack"),
        "{events:?}"
    );
}

#[test]
fn content_types_and_headers_reach_the_runtime_and_come_back() {
    let models = probe_models();
    let server = Server::start(models.path());
    let request = json!({
        "parameters": {"attack": "inspect"},
        "inputs": [
            // Declared base64 in model-settings.json: decoded before the runtime sees it.
            {"name": "blob", "datatype": "BYTES", "shape": [2], "data": ["aGk=", "AP8="]},
            {"name": "x", "datatype": "FP64", "shape": [1], "data": [1],
             "parameters": {"content_type": "np"}},
        ],
    });
    let response = server.connect().request(
        "POST",
        "/v2/models/probe/infer",
        &[("Content-Type", "application/json"), ("X-Tenant", "acme")],
        &serde_json::to_vec(&request).unwrap(),
    );
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("x-runtime"), Some("hostile"));
    let json = response.json();
    assert!(
        json.get("parameters")
            .is_none_or(|p| p.get("headers").is_none()),
        "{json}"
    );
    let report: Vec<&str> = json["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    assert_eq!(
        report[0], "content_type=Some(\"np\")",
        "model default: {report:?}"
    );
    assert_eq!(
        report[1],
        "input blob content_type=Some(\"base64\") elements=[[104, 105], [0, 255]]"
    );
    assert!(
        report[2].starts_with("input x content_type=Some(\"np\")"),
        "{report:?}"
    );
    assert!(report.contains(&"header x-tenant=acme"), "{report:?}");
    assert_eq!(
        json["outputs"][0]["parameters"]["content_type"],
        json!("str")
    );
    // A base64 output is encoded by the host.
    assert_eq!(json["outputs"][1]["name"], json!("blob"));
    assert_eq!(json["outputs"][1]["data"], json!(["AP8K"]));
    assert_eq!(
        json["outputs"][1]["parameters"]["content_type"],
        json!("base64")
    );

    // The request's own content type wins over the model's; bad base64 is the client's fault.
    let mut own = request.clone();
    own["parameters"]["content_type"] = json!("pd");
    let report =
        server.post_json("/v2/models/probe/infer", &own).json()["outputs"][0]["data"][0].clone();
    assert_eq!(report, json!("content_type=Some(\"pd\")"));
    let mut bad = request.clone();
    bad["inputs"][0]["data"] = json!(["not base64!", "AP8="]);
    let response = server.post_json("/v2/models/probe/infer", &bad);
    assert_eq!(response.status, 400);
    assert!(response.error().contains("base64"), "{}", response.error());

    // Numeric outputs are labelled np.
    let echo = json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [2]}]});
    let json = server.post_json("/v2/models/probe/infer", &echo).json();
    assert_eq!(
        json["outputs"][0]["parameters"]["content_type"],
        json!("np")
    );
}

#[test]
fn the_binary_extension_and_a_connection_survive_each_other() {
    // Binary requests on a keep-alive connection, interleaved with JSON ones.
    let server = Server::start(&example_models());
    let mut connection: Connection = server.connect();
    let binary = f32_bytes(&ROWS[1]);
    let header = serde_json::to_vec(&json!({
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3],
                    "parameters": {"binary_data_size": 12}}],
        "parameters": {"binary_data_output": true},
    }))
    .unwrap();
    let length = header.len().to_string();
    for _ in 0..3 {
        let response = connection.request(
            "POST",
            "/v2/models/house-prices/infer",
            &[(BINARY_HEADER, &length)],
            &[header.clone(), binary.clone()].concat(),
        );
        let (_, data) = split_binary(&response);
        assert_eq!(f64_values(data), vec![house_price(ROWS[1])]);
        let response = connection.post(
            "/v2/models/house-prices/infer",
            br#"{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3], "data": [2, 4, 0.5]}]}"#,
        );
        assert_eq!(
            response.json()["outputs"][0]["data"],
            json!([house_price(ROWS[1])])
        );
    }
}

#[test]
fn runtimes_built_against_wit_0_1_0_still_serve() {
    let dir = model_folder(&[(
        "old/model-settings.json",
        r#"{"implementation": "old.wasm"}"#,
    )]);
    let component = crate::support::linear_component().with_file_name("mlhost_test_wit_0_1_0.wasm");
    std::fs::copy(component, dir.path().join("old/old.wasm")).unwrap();
    let server = Server::start(dir.path());
    assert_eq!(
        server.get("/v2/models/old").json()["platform"],
        json!("echo-0.1.0")
    );
    let request =
        json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1.5, -2]}]});
    let response = server.post_json("/v2/models/old/infer", &request);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.json()["outputs"][0]["data"], json!([1.5, -2.0]));
    // On a streaming endpoint it answers once: it knows nothing of streams.
    let events = sse_events(&server.post_json("/v2/models/old/infer_stream", &request));
    assert_eq!(events.len(), 1);
}

#[test]
fn each_content_type_round_trips_through_the_sdk() {
    let dir = probe_repository(r#"{"implementation": "hostile.wasm"}"#);
    let server = Server::start(dir.path());
    let input = |name: &str, datatype: &str, data: Value, content_type: &str| {
        let count = data.as_array().unwrap().len();
        json!({"name": name, "datatype": datatype, "shape": [count], "data": data,
               "parameters": {"content_type": content_type}})
    };
    let request = json!({
        "parameters": {"attack": "round-trip", "content_type": "pd"},
        "inputs": [
            input("n", "INT32", json!([3, -4]), "np"),
            input("s", "BYTES", json!(["héllo", "wörld"]), "str"),
            input("b", "BYTES", json!(["AP8K", "aGk="]), "base64"),
            input("t", "BYTES", json!(["2024-02-29T12:30:15Z", "1970-01-02"]), "datetime"),
        ],
    });
    let response = server.post_json("/v2/models/probe/infer", &request);
    assert_eq!(response.status, 200, "{response:?}");
    let json = response.json();
    let output = |name: &str| {
        json["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|output| output["name"] == json!(name))
            .unwrap_or_else(|| panic!("no output {name}: {json}"))
            .clone()
    };
    let content_type = |name: &str| output(name)["parameters"]["content_type"].clone();
    assert_eq!(output("n")["data"], json!([3.0, -4.0]));
    assert_eq!(content_type("n"), json!("np"));
    assert_eq!(output("s")["data"], json!(["héllo", "wörld"]));
    assert_eq!(content_type("s"), json!("str"));
    assert_eq!(
        output("b")["data"],
        json!(["AP8K", "aGk="]),
        "decoded, then encoded again"
    );
    assert_eq!(content_type("b"), json!("base64"));
    assert_eq!(
        output("t")["data"],
        json!(["2024-02-29T12:30:15Z", "1970-01-02"])
    );
    assert_eq!(content_type("t"), json!("datetime"));
    assert_eq!(output("t_unix")["data"], json!([1_709_209_815, 86_400]));
    assert_eq!(output("table_rows")["data"], json!([2]));
    assert_eq!(output("table_columns")["data"], json!(["n", "s", "b", "t"]));

    // Each decoder refuses what is not its kind.
    for (bad, expected) in [
        (input("t", "BYTES", json!(["noon"]), "datetime"), "ISO 8601"),
        (input("b", "BYTES", json!(["%%%"]), "base64"), "base64"),
        (input("b", "FP32", json!([1.0]), "base64"), "BYTES"),
    ] {
        let request = json!({"parameters": {"attack": "round-trip"}, "inputs": [bad]});
        let response = server.post_json("/v2/models/probe/infer", &request);
        assert_eq!(response.status, 400, "{response:?}");
        assert!(response.error().contains(expected), "{}", response.error());
    }
}

#[test]
fn bool_and_bytes_tensors_in_binary() {
    let dir = probe_repository(r#"{"implementation": "hostile.wasm"}"#);
    let server = Server::start(dir.path());

    // BOOL: one byte per element.
    let header = json!({
        "inputs": [{"name": "flags", "datatype": "BOOL", "shape": [3],
                    "parameters": {"binary_data_size": 3}}],
        "parameters": {"binary_data_output": true},
    });
    let response = post_binary(&server, "/v2/models/probe/infer", &header, &[1, 0, 1]);
    assert_eq!(response.status, 200, "{response:?}");
    let (_, data) = split_binary(&response);
    assert_eq!(f64_values(data), vec![1.0, 0.0, 1.0]);

    // BYTES: each element behind its 4-byte little-endian length, in and out.
    let elements: Vec<u8> = [
        &3u32.to_le_bytes()[..],
        b"abc",
        &1u32.to_le_bytes(),
        b"\xff",
    ]
    .concat();
    let header = json!({
        "parameters": {"attack": "round-trip"},
        "inputs": [{"name": "b", "datatype": "BYTES", "shape": [2],
                    "parameters": {"binary_data_size": elements.len(), "content_type": "base64"}}],
        "outputs": [{"name": "b", "parameters": {"binary_data": true}}],
    });
    let base64_elements: Vec<u8> = [&4u32.to_le_bytes()[..], b"YWJj"].concat();
    // The input is base64 text ("YWJj" = "abc"), decoded by the host, echoed, encoded again.
    let header_b64 = {
        let mut header = header.clone();
        header["inputs"][0]["shape"] = json!([1]);
        header["inputs"][0]["parameters"]["binary_data_size"] = json!(base64_elements.len());
        header
    };
    let response = post_binary(
        &server,
        "/v2/models/probe/infer",
        &header_b64,
        &base64_elements,
    );
    assert_eq!(response.status, 200, "{response:?}");
    let (json, data) = split_binary(&response);
    assert_eq!(
        json["outputs"][0]["parameters"]["binary_data_size"],
        json!(8)
    );
    assert_eq!(data, &base64_elements[..]);
    // Raw bytes that are not base64 are refused; a truncated length prefix too.
    let response = post_binary(&server, "/v2/models/probe/infer", &header, &elements);
    assert_eq!(response.status, 400);
    let mut truncated = header.clone();
    truncated["inputs"][0]["parameters"]["binary_data_size"] = json!(6);
    let response = post_binary(
        &server,
        "/v2/models/probe/infer",
        &truncated,
        &elements[..6],
    );
    assert_eq!(response.status, 400);
    assert!(response.error().contains("BYTES"), "{}", response.error());
}
