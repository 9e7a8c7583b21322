//! Adaptive batching and backpressure, end to end.

use crate::support::{Connection, Server, model_folder};
use serde_json::json;
use std::time::{Duration, Instant};

const LINEAR: &str = r#"{"kind": "linear", "coefficients": [[2.0, -1.0], [0.5, 3.0]], "intercepts": [1.0, -2.0], "input_name": "x"}"#;

#[test]
fn batched_answers_equal_the_answers_to_the_same_requests_alone() {
    let dir = model_folder(&[
        (
            "batched/model-settings.json",
            r#"{"implementation": "linear", "max_batch_size": 16, "max_batch_time": 0.05}"#,
        ),
        ("batched/linear.json", LINEAR),
        (
            "alone/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        ("alone/linear.json", LINEAR),
    ]);
    let server = Server::start_with(
        dir.path(),
        &[],
        &[("RUST_LOG", "info,mlhost::batching=debug")],
    );
    let address = server.address;
    let threads: Vec<_> = (0..24)
        .map(|thread| {
            std::thread::spawn(move || {
                let mut connection = Connection::open(address);
                for i in 0..8u64 {
                    let rows = 1 + (thread + i) % 3;
                    let data: Vec<f64> = (0..rows * 2).map(|k| (thread * 100 + i * 10 + k) as f64 * 0.25).collect();
                    let body = json!({
                        "id": format!("{thread}-{i}"),
                        "inputs": [{"name": "x", "datatype": "FP64", "shape": [rows, 2], "data": data}]
                    });
                    let batched = connection.post("/v2/models/batched/infer", body.to_string().as_bytes());
                    let alone = connection.post("/v2/models/alone/infer", body.to_string().as_bytes());
                    assert_eq!(batched.status, 200, "{:?}", String::from_utf8_lossy(&batched.body));
                    let (batched, alone) = (batched.json(), alone.json());
                    assert_eq!(batched["id"], format!("{thread}-{i}"));
                    assert_eq!(batched["outputs"], alone["outputs"]);
                    assert_eq!(batched["outputs"][0]["shape"], json!([rows, 2]));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let batches = logged_batches(&server);
    assert!(
        batches.iter().any(|&requests| requests > 1),
        "no request shared a batch: {batches:?}"
    );
}

#[test]
fn a_full_queue_refuses_at_once_and_the_model_recovers() {
    let hostile = crate::support::linear_component().with_file_name("mlhost_test_hostile.wasm");
    let dir = model_folder(&[(
        "slow/model-settings.json",
        r#"{"implementation": "hostile.wasm", "max_queue_size": 2}"#,
    )]);
    std::fs::copy(hostile, dir.path().join("slow/hostile.wasm")).unwrap();
    let server = Server::start(dir.path());
    let address = server.address;
    let body = json!({"parameters": {"attack": "nap"}, "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}]});
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let body = body.to_string();
            std::thread::spawn(move || {
                let started = Instant::now();
                let response =
                    Connection::open(address).post("/v2/models/slow/infer", body.as_bytes());
                (response.status, response.body, started.elapsed())
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();
    let refused: Vec<_> = results
        .iter()
        .filter(|(status, _, _)| *status == 503)
        .collect();
    assert!(
        !refused.is_empty(),
        "nothing was refused: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    for (_, body, elapsed) in &refused {
        assert!(String::from_utf8_lossy(body).contains("overloaded"));
        assert!(
            *elapsed < Duration::from_millis(500),
            "a refusal took {elapsed:?}"
        );
    }
    assert!(
        results
            .iter()
            .all(|(status, _, _)| *status == 200 || *status == 503)
    );
    let response = server.post_json("/v2/models/slow/infer", &body);
    assert_eq!(response.status, 200);
}

#[test]
fn a_short_deadline_closes_the_batch_early_and_does_not_cut_the_others() {
    let dir = model_folder(&[
        (
            "batched/model-settings.json",
            r#"{"implementation": "linear", "max_batch_size": 64, "max_batch_time": 5}"#,
        ),
        ("batched/linear.json", LINEAR),
    ]);
    let server = Server::start(dir.path());
    let body = |timeout: Option<u64>| {
        let mut body =
            json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]});
        if let Some(timeout) = timeout {
            body["parameters"] = json!({"timeout": timeout});
        }
        body
    };
    // Alone with a 400 ms budget, a request does not wait out the 5 s batch window.
    let started = Instant::now();
    let response = server.post_json("/v2/models/batched/infer", &body(Some(400_000)));
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(response.json()["outputs"][0]["data"], json!([1.0, 4.5]));

    // Beside a patient request, the urgent one closes the batch; both are answered.
    let address = server.address;
    let patient = std::thread::spawn(move || {
        Connection::open(address).post(
            "/v2/models/batched/infer",
            body(None).to_string().as_bytes(),
        )
    });
    std::thread::sleep(Duration::from_millis(50));
    let urgent = server.post_json("/v2/models/batched/infer", &body(Some(600_000)));
    assert_eq!(urgent.status, 200);
    let patient = patient.join().unwrap();
    assert_eq!(patient.status, 200);
    assert_eq!(patient.json()["outputs"], urgent.json()["outputs"]);
}

/// A batching model on the hostile test runtime: `loop` holds its one worker until the request's
/// deadline, other requests echo their input.
fn hostile_batching_model() -> tempfile::TempDir {
    let hostile = crate::support::linear_component().with_file_name("mlhost_test_hostile.wasm");
    let dir = model_folder(&[(
        "batched/model-settings.json",
        r#"{"implementation": "hostile.wasm", "max_batch_size": 16, "max_batch_time": 5}"#,
    )]);
    std::fs::copy(hostile, dir.path().join("batched/hostile.wasm")).unwrap();
    dir
}

/// The request counts of the batches the server logged (`running a batch requests=N`).
fn logged_batches(server: &Server) -> Vec<u64> {
    server
        .logs()
        .iter()
        .filter(|line| line.contains("running a batch"))
        .filter_map(|line| {
            line.split("requests=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn a_lone_request_runs_at_once_and_requests_merge_while_the_worker_is_busy() {
    let dir = hostile_batching_model();
    let server = Server::start_with(
        dir.path(),
        &[],
        &[("RUST_LOG", "info,mlhost::batching=debug")],
    );
    let echo = |value: f64| json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [value]}]});

    // The worker is idle: a lone request does not wait out the 5 s batch window.
    let started = Instant::now();
    let response = server.post_json("/v2/models/batched/infer", &echo(1.0));
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // The worker is busy for 800 ms: four requests arriving meanwhile share one batch.
    let address = server.address;
    let busy = std::thread::spawn(move || {
        let body = json!({"parameters": {"attack": "loop", "timeout": 800_000},
            "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [0]}]});
        Connection::open(address).post("/v2/models/batched/infer", body.to_string().as_bytes())
    });
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let waiting: Vec<_> = (0..4)
        .map(|index| {
            let body = echo(10.0 + index as f64).to_string();
            std::thread::spawn(move || {
                Connection::open(address).post("/v2/models/batched/infer", body.as_bytes())
            })
        })
        .collect();
    for (index, thread) in waiting.into_iter().enumerate() {
        let response = thread.join().unwrap();
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        assert_eq!(
            response.json()["outputs"][0]["data"],
            json!([10.0 + index as f64])
        );
    }
    // They ran when the worker freed up, not at the end of the batch window.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(busy.join().unwrap().status, 504);
    let batches = logged_batches(&server);
    assert!(
        batches.contains(&4),
        "the four did not share a batch: {batches:?}"
    );
}
