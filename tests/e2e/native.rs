//! The native ONNX backend (ONNX Runtime in the host) end to end: every scikit-learn model of
//! `runtimes/onnx/fixtures/sklearn` (exported with skl2onnx, scikit-learn's own answers recorded)
//! served over REST and gRPC on the native backend, and on the sandboxed one wherever tract can
//! load it; a deadline stopping a long native run; native backends forbidden by the server; a
//! missing library falling back to the sandboxed backend; the library opened only once a model
//! needs it.
//!
//! ONNX Runtime's library must be where mlhost finds it: `scripts/setup` installs it.

use crate::support::{Server, workspace};
use mlhost::pb;
use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A fixture: its name, folder and `expected.json`.
struct Fixture {
    name: String,
    folder: PathBuf,
    expected: Value,
}

fn fixtures() -> Vec<Fixture> {
    let root = workspace().join("runtimes/onnx/fixtures/sklearn");
    let mut fixtures: Vec<Fixture> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("model.onnx").is_file())
        .map(|folder| Fixture {
            name: folder.file_name().unwrap().to_str().unwrap().to_string(),
            expected: serde_json::from_slice(&std::fs::read(folder.join("expected.json")).unwrap())
                .unwrap(),
            folder,
        })
        .collect();
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(fixtures.len() >= 13, "fixtures in {}", root.display());
    fixtures
}

/// A model folder per fixture, with `backend` as given.
fn repository(fixtures: &[Fixture], backend: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for fixture in fixtures {
        let model = dir.path().join(&fixture.name);
        std::fs::create_dir_all(&model).unwrap();
        std::fs::copy(fixture.folder.join("model.onnx"), model.join("model.onnx")).unwrap();
        let settings = json!({"implementation": "onnx", "backend": backend,
                              "parameters": {"uri": "./model.onnx"}});
        std::fs::write(model.join("model-settings.json"), settings.to_string()).unwrap();
    }
    dir
}

/// The fixture named `name`.
fn fixture(name: &str) -> Fixture {
    fixtures()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

/// The fixture's batch as V2 JSON inputs.
fn json_inputs(expected: &Value) -> Vec<Value> {
    let batch = &expected["batch"];
    expected["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|input| {
            let name = input["name"].as_str().unwrap();
            let rows = batch[name].as_array().unwrap();
            let width = rows[0].as_array().map_or(1, Vec::len);
            let data: Vec<Value> = rows
                .iter()
                .flat_map(|row| row.as_array().cloned().unwrap_or_else(|| vec![row.clone()]))
                .collect();
            json!({"name": name, "datatype": input["datatype"], "shape": [rows.len(), width],
                   "data": data})
        })
        .collect()
}

/// Checks one output (name, datatype, shape, flat values) against the fixture: labels exactly,
/// numbers within the fixture's tolerance.
fn check_output(fixture: &Fixture, name: &str, datatype: &str, shape: &[i64], data: &[Value]) {
    let described = fixture.expected["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|output| output["name"] == name)
        .unwrap_or_else(|| panic!("{}: unexpected output {name}", fixture.name));
    assert_eq!(
        described["datatype"],
        json!(datatype),
        "{}: {name}",
        fixture.name
    );
    let wanted = &fixture.expected["expected"][name];
    let flat: Vec<Value> = wanted
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().cloned().unwrap_or_else(|| vec![row.clone()]))
        .collect();
    assert_eq!(
        shape[0] as usize,
        wanted.as_array().unwrap().len(),
        "{}: {name} rows",
        fixture.name
    );
    assert_eq!(data.len(), flat.len(), "{}: {name} elements", fixture.name);
    let tolerance = fixture.expected["tolerance"][name].as_f64().unwrap_or(0.0);
    for (index, (got, want)) in data.iter().zip(&flat).enumerate() {
        match (got.as_f64(), want.as_f64()) {
            (Some(got), Some(want)) if tolerance > 0.0 => assert!(
                (got - want).abs() <= tolerance,
                "{}: {name}[{index}] = {got}, scikit-learn says {want}",
                fixture.name
            ),
            _ => assert_eq!(got, want, "{}: {name}[{index}]", fixture.name),
        }
    }
}

/// Asks for the fixture's batch over REST and checks every output.
fn check_rest(server: &Server, fixture: &Fixture) {
    let body = json!({"inputs": json_inputs(&fixture.expected)});
    let response = server.post_json(&format!("/v2/models/{}/infer", fixture.name), &body);
    assert_eq!(
        response.status,
        200,
        "{}: {}",
        fixture.name,
        String::from_utf8_lossy(&response.body)
    );
    let answer = response.json();
    let outputs = answer["outputs"].as_array().unwrap();
    assert_eq!(
        outputs.len(),
        fixture.expected["outputs"].as_array().unwrap().len()
    );
    for output in outputs {
        let shape: Vec<i64> = serde_json::from_value(output["shape"].clone()).unwrap();
        check_output(
            fixture,
            output["name"].as_str().unwrap(),
            output["datatype"].as_str().unwrap(),
            &shape,
            output["data"].as_array().unwrap(),
        );
    }
}

/// The fixture's batch as a binary gRPC request (raw contents).
fn grpc_request(fixture: &Fixture) -> pb::ModelInferRequest {
    let mut request = pb::ModelInferRequest {
        model_name: fixture.name.clone(),
        ..Default::default()
    };
    for input in json_inputs(&fixture.expected) {
        let data = input["data"].as_array().unwrap();
        let raw: Vec<u8> = match input["datatype"].as_str().unwrap() {
            "FP32" => data
                .iter()
                .flat_map(|v| (v.as_f64().unwrap() as f32).to_le_bytes())
                .collect(),
            "BYTES" => data
                .iter()
                .flat_map(|v| {
                    let text = v.as_str().unwrap().as_bytes();
                    let mut element = (text.len() as u32).to_le_bytes().to_vec();
                    element.extend_from_slice(text);
                    element
                })
                .collect(),
            other => panic!("no fixture input is {other}"),
        };
        request
            .inputs
            .push(pb::model_infer_request::InferInputTensor {
                name: input["name"].as_str().unwrap().into(),
                datatype: input["datatype"].as_str().unwrap().into(),
                shape: serde_json::from_value(input["shape"].clone()).unwrap(),
                ..Default::default()
            });
        request.raw_input_contents.push(raw);
    }
    request
}

/// An output's raw little-endian contents as JSON values.
fn decode_raw(datatype: &str, raw: &[u8]) -> Vec<Value> {
    match datatype {
        "FP32" => raw
            .chunks_exact(4)
            .map(|c| json!(f32::from_le_bytes(c.try_into().unwrap()) as f64))
            .collect(),
        "INT64" => raw
            .chunks_exact(8)
            .map(|c| json!(i64::from_le_bytes(c.try_into().unwrap())))
            .collect(),
        "BYTES" => {
            let mut values = Vec::new();
            let mut rest = raw;
            while let Some((length, tail)) = rest.split_first_chunk::<4>() {
                let (text, tail) = tail.split_at(u32::from_le_bytes(*length) as usize);
                values.push(json!(std::str::from_utf8(text).unwrap()));
                rest = tail;
            }
            values
        }
        other => panic!("no fixture output is {other}"),
    }
}

/// Asks for the fixture's batch over gRPC and checks every output.
async fn check_grpc(
    client: &mut GrpcInferenceServiceClient<tonic::transport::Channel>,
    fixture: &Fixture,
) {
    let response = client
        .model_infer(grpc_request(fixture))
        .await
        .unwrap_or_else(|status| panic!("{}: {status}", fixture.name))
        .into_inner();
    assert_eq!(response.outputs.len(), response.raw_output_contents.len());
    for (output, raw) in response.outputs.iter().zip(&response.raw_output_contents) {
        check_output(
            fixture,
            &output.name,
            &output.datatype,
            &output.shape,
            &decode_raw(&output.datatype, raw),
        );
    }
}

async fn grpc_client(server: &Server) -> GrpcInferenceServiceClient<tonic::transport::Channel> {
    GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_address))
        .await
        .expect("connect over gRPC")
}

#[tokio::test(flavor = "multi_thread")]
async fn scikit_learn_models_answer_as_scikit_learn_on_the_native_backend() {
    let fixtures = fixtures();
    let models = repository(&fixtures, "native");
    let server = Server::start(models.path());
    let mut client = grpc_client(&server).await;
    for fixture in &fixtures {
        let metadata = server.get(&format!("/v2/models/{}", fixture.name)).json();
        assert_eq!(
            metadata["parameters"]["backend"],
            json!("native"),
            "{}: {metadata}",
            fixture.name
        );
        assert_eq!(
            metadata["inputs"].as_array().unwrap().len(),
            fixture.expected["inputs"].as_array().unwrap().len()
        );
        check_rest(&server, fixture);
        check_grpc(&mut client, fixture).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandboxed_backend_serves_what_tract_can_and_names_what_it_cannot() {
    let fixtures = fixtures();
    let models = repository(&fixtures, "sandboxed");
    let server = Server::start(models.path());
    let mut client = grpc_client(&server).await;
    let mut served = 0;
    for fixture in &fixtures {
        let ready = server.get(&format!("/v2/models/{}/ready", fixture.name));
        if ready.status != 200 {
            // tract lacks an operator of the graph (a tree ensemble regressor, an SVM, ...) or
            // a form of one: the reason says what and how to serve the model.
            let reason = ready.error();
            assert!(
                reason.contains("tract") && reason.contains("native"),
                "{}: {reason}",
                fixture.name
            );
            continue;
        }
        let metadata = server.get(&format!("/v2/models/{}", fixture.name)).json();
        assert_eq!(
            metadata["parameters"]["backend"],
            json!("sandboxed"),
            "{}",
            fixture.name
        );
        check_rest(&server, fixture);
        check_grpc(&mut client, fixture).await;
        served += 1;
    }
    assert!(
        served >= 4,
        "tract serves the linear, tree classifier and MLP fixtures ({served})"
    );
}

/// A folder with the slow graph of tests/e2e/models, its timeout `timeout_seconds`.
fn slow_model(settings: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("slow");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::copy(
        workspace().join("tests/e2e/models/slow_chain.onnx"),
        model.join("model.onnx"),
    )
    .unwrap();
    std::fs::write(model.join("model-settings.json"), settings.to_string()).unwrap();
    dir
}

fn slow_request(rows: i64) -> Value {
    json!({"inputs": [
        {"name": "x", "datatype": "FP32", "shape": [1, 256], "data": vec![0.5; 256]},
        {"name": "repeats", "datatype": "INT64", "shape": [2], "data": [rows, 1]}
    ]})
}

#[test]
fn a_deadline_stops_a_long_native_run_and_the_model_serves_on() {
    let models =
        slow_model(json!({"implementation": "onnx", "backend": "native", "timeout_seconds": 1}));
    let server = Server::start(models.path());
    // 16384 rows through 300 matrix products: tens of seconds, unless stopped.
    let started = Instant::now();
    let slow = server.post_json("/v2/models/slow/infer", &slow_request(16384));
    let took = started.elapsed();
    assert_eq!(slow.status, 504, "{}", String::from_utf8_lossy(&slow.body));
    assert!(slow.error().contains("deadline"), "{}", slow.error());
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    assert_eq!(server.get("/v2/models/slow/ready").status, 200);
    let quick = server.post_json("/v2/models/slow/infer", &slow_request(1));
    assert_eq!(
        quick.status,
        200,
        "{}",
        String::from_utf8_lossy(&quick.body)
    );
    assert_eq!(quick.json()["outputs"][0]["shape"], json!([1, 256]));
}

#[test]
fn a_server_that_forbids_native_backends_serves_onnx_sandboxed() {
    let fixtures: Vec<Fixture> = fixtures()
        .into_iter()
        .filter(|f| f.name == "logistic_regression" || f.name == "random_forest_regressor")
        .collect();
    let models = repository(&fixtures, "auto");
    let native_only = models.path().join("native_only");
    std::fs::create_dir_all(&native_only).unwrap();
    std::fs::copy(
        fixtures[0].folder.join("model.onnx"),
        native_only.join("model.onnx"),
    )
    .unwrap();
    std::fs::write(
        native_only.join("model-settings.json"),
        r#"{"implementation": "onnx", "backend": "native"}"#,
    )
    .unwrap();
    let server = Server::start_with(models.path(), &[], &[("MLHOST_NATIVE_BACKENDS", "false")]);
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("native backends are off")),
        "{:?}",
        server.logs()
    );
    let metadata = server.get("/v2/models/logistic_regression").json();
    assert_eq!(metadata["parameters"]["backend"], json!("sandboxed"));
    check_rest(&server, &fixtures[0]);
    // The regressor's tree ensemble needs ONNX Runtime: not served, with the reason.
    let regressor = server.get("/v2/models/random_forest_regressor/ready");
    assert_eq!(
        regressor.status,
        400,
        "{}",
        String::from_utf8_lossy(&regressor.body)
    );
    let refused = server.get("/v2/models/native_only/ready");
    assert_eq!(refused.status, 400);
    assert!(
        refused.error().contains("native_backends"),
        "{}",
        refused.error()
    );
}

#[test]
fn without_the_library_auto_models_fall_back_with_one_log_line() {
    let fixtures = vec![fixture("logistic_regression")];
    let models = repository(&fixtures, "auto");
    let missing = tempfile::tempdir().unwrap();
    let library = missing.path().join("libonnxruntime.so");
    let server = Server::start_with(
        models.path(),
        &[],
        &[("MLHOST_ONNXRUNTIME_LIBRARY", library.to_str().unwrap())],
    );
    let lines: Vec<String> = server
        .logs()
        .into_iter()
        .filter(|line| line.contains("native ONNX backend unavailable"))
        .collect();
    assert_eq!(lines.len(), 1, "{:?}", server.logs());
    assert!(lines[0].contains(library.to_str().unwrap()), "{}", lines[0]);
    let metadata = server.get("/v2/models/logistic_regression").json();
    assert_eq!(metadata["parameters"]["backend"], json!("sandboxed"));
    check_rest(&server, &fixtures[0]);
}

#[test]
fn a_custom_runtime_runs_its_own_processing_around_a_native_graph() {
    // tests/guests/onnx-custom: FP64 in, converted to the graph's FP32; labels out as names.
    let fixture = fixture("logistic_regression");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("custom");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::copy(fixture.folder.join("model.onnx"), model.join("model.onnx")).unwrap();
    let component =
        crate::support::linear_component().with_file_name("mlhost_test_onnx_custom.wasm");
    std::fs::copy(component, model.join("runtime.wasm")).unwrap();
    let names = ["setosa", "versicolor", "virginica"];
    let settings = json!({"implementation": "./runtime.wasm",
                          "parameters": {"extra": {"classes": names}}});
    std::fs::write(model.join("model-settings.json"), settings.to_string()).unwrap();
    let server = Server::start(dir.path());

    let mut input = json_inputs(&fixture.expected).remove(0);
    input["datatype"] = json!("FP64");
    let response = server.post_json("/v2/models/custom/infer", &json!({"inputs": [input]}));
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let answer = response.json();
    let labels = fixture.expected["expected"]["label"].as_array().unwrap();
    let classes: Vec<Value> = labels
        .iter()
        .map(|label| json!(names[label.as_u64().unwrap() as usize]))
        .collect();
    assert_eq!(answer["outputs"][0]["name"], json!("class"));
    assert_eq!(answer["outputs"][0]["data"], json!(classes));
    let shape: Vec<i64> = serde_json::from_value(answer["outputs"][1]["shape"].clone()).unwrap();
    check_output(
        &fixture,
        "probabilities",
        "FP32",
        &shape,
        answer["outputs"][1]["data"].as_array().unwrap(),
    );
    // Forbidden native backends: the runtime says why it cannot load.
    drop(server);
    let forbidden = Server::start_with(dir.path(), &[], &[("MLHOST_NATIVE_BACKENDS", "false")]);
    let ready = forbidden.get("/v2/models/custom/ready");
    assert_eq!(ready.status, 400);
    assert!(
        ready.error().contains("native_backends"),
        "{}",
        ready.error()
    );
}

#[test]
fn the_library_is_opened_when_a_model_first_needs_it() {
    let fixtures = vec![fixture("logistic_regression")];
    let staged = repository(&fixtures, "native");
    let models = tempfile::tempdir().unwrap();
    let server = Server::start(models.path());
    // Linux: whether the process maps the library (elsewhere, the log line alone is checked).
    let mapped = || {
        std::fs::read_to_string(format!("/proc/{}/maps", server.pid()))
            .map(|maps| maps.contains("onnxruntime"))
            .ok()
    };
    assert_ne!(
        mapped(),
        Some(true),
        "opened at start without an ONNX model"
    );
    let opened = |server: &Server| {
        let logs = server.logs();
        logs.iter()
            .filter(|line| line.contains("native ONNX backend: ONNX Runtime"))
            .count()
    };
    assert_eq!(opened(&server), 0, "{:?}", server.logs());

    std::fs::rename(
        staged.path().join("logistic_regression"),
        models.path().join("logistic_regression"),
    )
    .unwrap();
    let loaded = server.post_json("/v2/repository/models/logistic_regression/load", &json!({}));
    assert_eq!(
        loaded.status,
        200,
        "{}",
        String::from_utf8_lossy(&loaded.body)
    );
    check_rest(&server, &fixtures[0]);
    assert_ne!(
        mapped(),
        Some(false),
        "not opened for the model that needs it"
    );
    assert_eq!(opened(&server), 1, "{:?}", server.logs());
}
