//! `mlhost infer` against the example models: one request from the command line, a JSON file or
//! a `.npy` file, over REST and gRPC; and batch mode with its ordered, MLServer-shaped output.

use crate::support::{Server, example_models, model_folder};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `mlhost infer ARGS`.
pub fn infer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlhost"))
        .arg("infer")
        .args(args)
        .output()
        .expect("run mlhost infer")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "mlhost infer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// house-prices: predict = 150·a + 12.5·b − 0.75·c + 20.
const HOUSES: &str = "features:FP32:2x3=1,2,4,2,0,0";
const HOUSES_PRINTED: &str = "predict FP64 [2, 1] = [[192.0],[320.0]]";

#[test]
fn command_line_values_over_rest_and_grpc_print_the_predictions() {
    let server = Server::start(&example_models());
    let rest = stdout(&infer(&[
        "house-prices",
        "-u",
        &server.address.to_string(),
        "--tensor",
        HOUSES,
    ]));
    assert!(rest.starts_with("model: house-prices"), "{rest}");
    assert!(rest.contains(HOUSES_PRINTED), "{rest}");
    let grpc = stdout(&infer(&[
        "house-prices",
        "-t",
        "grpc",
        "-u",
        &server.grpc_address.to_string(),
        "--tensor",
        HOUSES,
    ]));
    assert!(grpc.contains(HOUSES_PRINTED), "{grpc}");
}

#[test]
fn a_request_file_and_npy_files_sent_as_json_or_binary_give_the_models_numbers() {
    let server = Server::start(&example_models());
    let files = model_folder(&[(
        "request.json",
        r#"{"id": "req-1", "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [1, 4],
            "data": [5.1, 3.5, 1.4, 0.2]}], "outputs": [{"name": "predict_proba"}]}"#,
    )]);
    let request = files.path().join("request.json");
    let output = stdout(&infer(&[
        "iris",
        "-u",
        &server.address.to_string(),
        "-i",
        request.to_str().unwrap(),
        "--json",
    ]));
    let response: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(response["id"], "req-1");
    assert_eq!(response["outputs"][0]["name"], "predict_proba");
    let probabilities: Vec<f64> =
        serde_json::from_value(response["outputs"][0]["data"].clone()).unwrap();
    assert_eq!(probabilities.len(), 3);
    assert!(probabilities[0] > 0.9, "setosa: {probabilities:?}");

    // The same features as a float32 .npy file, sent as binary tensor data.
    let npy = files.path().join("houses.npy");
    write_npy_f32(&npy, &[2, 3], &[1.0, 2.0, 4.0, 2.0, 0.0, 0.0]);
    let spec = format!("features={}", npy.display());
    for binary in [false, true] {
        let mut args = vec!["house-prices", "-u"];
        let address = server.address.to_string();
        args.push(&address);
        args.extend(["--npy", &spec]);
        if binary {
            args.push("--binary-data");
        }
        let printed = stdout(&infer(&args));
        assert!(
            printed.contains(HOUSES_PRINTED),
            "binary {binary}: {printed}"
        );
    }
}

#[test]
fn failures_say_why_and_exit_non_zero() {
    let server = Server::start(&example_models());
    let address = server.address.to_string();
    let unknown = infer(&["no-such-model", "-u", &address, "--tensor", "x=1"]);
    assert!(!unknown.status.success());
    let message = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        message.contains("404") && message.contains("no-such-model"),
        "{message}"
    );

    let bad_shape = infer(&[
        "house-prices",
        "-u",
        &address,
        "--tensor",
        "features:FP32:1x2=1,2",
    ]);
    assert!(!bad_shape.status.success());
    assert!(String::from_utf8_lossy(&bad_shape.stderr).contains("400"));

    // Nothing listens there: the connection error is retried, then reported.
    let nowhere = infer(&["iris", "-u", "127.0.0.1:9", "-r", "1", "--tensor", "x=1"]);
    assert!(!nowhere.status.success());
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("cannot reach"));
}

#[test]
fn batch_mode_answers_every_line_in_order_with_its_batch_index() {
    let server = Server::start(&example_models());
    let files = model_folder(&[]);
    let mut lines = Vec::new();
    for row in 0..20 {
        lines.push(format!(
            r#"{{"id": "r{row}", "inputs": [{{"name": "features", "datatype": "FP32", "shape": [1, 3], "data": [{row}, 0, 0]}}]}}"#
        ));
    }
    lines[7] = "{not json".to_string();
    lines[11] = r#"{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]}"#.to_string();
    let input = files.path().join("requests.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let results = files.path().join("results.jsonl");
    for transport in ["rest", "grpc"] {
        let address = match transport {
            "rest" => server.address.to_string(),
            _ => server.grpc_address.to_string(),
        };
        let output = infer(&[
            "house-prices",
            "-u",
            &address,
            "-t",
            transport,
            "--batch",
            input.to_str().unwrap(),
            "-o",
            results.to_str().unwrap(),
            "--workers",
            "4",
        ]);
        // Two lines failed: the exit code says so, the summary counts them.
        assert!(!output.status.success(), "{transport}");
        let summary = String::from_utf8_lossy(&output.stderr);
        assert!(
            summary.contains("20 requests, 18 succeeded, 2 failed"),
            "{summary}"
        );
        let written = std::fs::read_to_string(&results).unwrap();
        let answers: Vec<serde_json::Value> = written
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(answers.len(), 20, "{transport}");
        for (row, answer) in answers.iter().enumerate() {
            assert_eq!(answer["parameters"]["batch_index"], row, "{answer}");
            match row {
                7 => assert_eq!(answer["error"]["status"], "preprocessing error", "{answer}"),
                11 => {
                    assert_eq!(answer["error"]["status"], "inference error", "{answer}");
                    assert!(
                        answer["error"]["msg"]
                            .as_str()
                            .unwrap()
                            .contains("features")
                    );
                }
                _ => {
                    assert_eq!(answer["id"], format!("r{row}"), "{answer}");
                    assert_eq!(answer["parameters"]["inference_id"], format!("r{row}"));
                    let predicted = answer["outputs"][0]["data"][0].as_f64().unwrap();
                    assert_eq!(
                        predicted,
                        150.0 * row as f64 + 20.0,
                        "{transport} row {row}"
                    );
                }
            }
        }
    }
}

/// Writes a version 1.0 .npy file of little-endian float32 values.
fn write_npy_f32(path: &Path, shape: &[usize], values: &[f32]) {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut file = b"\x93NUMPY\x01\x00".to_vec();
    file.extend_from_slice(&(header.len() as u16).to_le_bytes());
    file.extend_from_slice(header.as_bytes());
    for value in values {
        file.extend_from_slice(&value.to_le_bytes());
    }
    std::fs::write(path, file).unwrap();
}
