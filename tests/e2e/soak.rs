//! The soak run (ignored: `scripts/soak` runs it, for use before releases): an hour (or
//! `MLHOST_SOAK_MINUTES`) of mixed load on one server — REST and gRPC inference, streams read
//! whole and streams abandoned, reloads, hostile requests — printing, every minute, the server's
//! RSS and open files and the healthy requests' p50 and p99. It fails when a healthy request
//! fails, the server logs a panic, or the server stops answering.

use crate::support::{Server, example_models, linear_component, model_folder};
use mlhost::pb;
use serde_json::json;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The hostile runtime's attacks the run cycles through (each contained by the host).
const ATTACKS: &[&str] = &[
    "loop",
    "grow",
    "trap",
    "panic",
    "stack",
    "many-outputs",
    "chatter",
];

/// What the load records: latencies of healthy requests since the last report, failures.
#[derive(Default)]
struct Record {
    rest: Mutex<Vec<Duration>>,
    grpc: Mutex<Vec<Duration>>,
    requests: AtomicU64,
    failures: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Record {
    fn fail(&self, what: String) {
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 20 {
            failures.push(what);
        }
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

fn repository() -> tempfile::TempDir {
    let copy = |model: &str| {
        let folder = example_models().join(model);
        ["model-settings.json", "linear.json"].map(|file| {
            let text = std::fs::read_to_string(folder.join(file)).unwrap();
            (format!("{model}/{file}"), text)
        })
    };
    let [house_settings, house_linear] = copy("house-prices");
    let [iris_settings, iris_linear] = copy("iris");
    let files = [house_settings, house_linear, iris_settings, iris_linear];
    let mut files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let hostile = r#"{"implementation": "hostile.wasm", "memory_limit_mb": 64, "timeout_seconds": 2, "max_output_mb": 16}"#;
    files.push(("hostile/model-settings.json", hostile));
    let dir = model_folder(&files);
    let component = linear_component().with_file_name("mlhost_test_hostile.wasm");
    std::fs::copy(component, dir.path().join("hostile/hostile.wasm")).unwrap();
    dir
}

fn percentile(latencies: &mut [Duration], fraction: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    latencies.sort_unstable();
    let index = ((latencies.len() as f64 * fraction) as usize).min(latencies.len() - 1);
    latencies[index]
}

/// The server's resident memory in MiB and open files (Linux; zeros elsewhere).
fn usage(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count());
    (rss / 1024, fds)
}

fn rest_load(server: &Server, record: &Record) {
    let mut connection = server.connect().no_delay();
    let body = json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 3],
        "data": [1, 2, 4, 0.5, 0, -8]}]})
    .to_string();
    while record.running() {
        let started = Instant::now();
        let response = connection.post("/v2/models/house-prices/infer", body.as_bytes());
        record.rest.lock().unwrap().push(started.elapsed());
        record.requests.fetch_add(1, Ordering::Relaxed);
        if response.status != 200 {
            record.fail(format!("REST {} {:?}", response.status, response.error()));
        }
    }
}

async fn grpc_load(server: &Server, record: &Record) {
    let address = format!("http://{}", server.grpc_address);
    let mut client =
        pb::grpc_inference_service_client::GrpcInferenceServiceClient::connect(address)
            .await
            .unwrap();
    let request = pb::ModelInferRequest {
        model_name: "iris".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "input-0".into(),
            datatype: "FP64".into(),
            shape: vec![1, 4],
            contents: Some(pb::InferTensorContents {
                fp64_contents: vec![5.1, 3.5, 1.4, 0.2],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    while record.running() {
        let started = Instant::now();
        let answer = client.model_infer(request.clone()).await;
        record.grpc.lock().unwrap().push(started.elapsed());
        record.requests.fetch_add(1, Ordering::Relaxed);
        if let Err(status) = answer {
            record.fail(format!("gRPC {status:?}"));
        }
    }
}

/// Streams read whole, streams abandoned after the head, hostile attacks and reloads of iris,
/// one after another.
fn mixed_load(server: &Server, record: &Record) {
    let stream = json!({"parameters": {"responses": 20},
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]});
    let mut round = 0usize;
    while record.running() {
        round += 1;
        let response = server.post_json("/v2/models/hostile/infer_stream", &stream);
        let events = String::from_utf8_lossy(&response.body)
            .matches("data: {")
            .count();
        if response.status != 200 || events != 20 {
            record.fail(format!("stream {} with {events} events", response.status));
        }
        // A client that leaves a large stream after its head.
        let mut abandoned = std::net::TcpStream::connect(server.address).unwrap();
        let body = json!({"parameters": {"responses": 50, "megabytes": 1},
            "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]})
        .to_string();
        let head = format!(
            "POST /v2/models/hostile/infer_stream HTTP/1.1\r\nHost: soak\r\nContent-Type: \
             application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        abandoned.write_all(head.as_bytes()).unwrap();
        let mut some = [0u8; 4096];
        let _ = abandoned.read(&mut some);
        drop(abandoned);
        let attack = ATTACKS[round % ATTACKS.len()];
        let request = json!({"parameters": {"attack": attack},
            "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]});
        let response = server.post_json("/v2/models/hostile/infer", &request);
        // `chatter` floods the log and then answers; the others fail, contained.
        if (response.status == 200) != (attack == "chatter") {
            record.fail(format!("attack {attack} answered {}", response.status));
        }
        if round.is_multiple_of(5) {
            let response = server.post_json("/v2/repository/models/iris/load", &json!({}));
            if response.status != 200 {
                record.fail(format!("reload {} {:?}", response.status, response.error()));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn report(server: &Server, record: &Record, minute: u64, started: Instant) {
    let mut rest = std::mem::take(&mut *record.rest.lock().unwrap());
    let mut grpc = std::mem::take(&mut *record.grpc.lock().unwrap());
    let (rss, fds) = usage(server.pid());
    eprintln!(
        "minute {minute:>3} ({:>5.0} s): {:>8} requests | RSS {rss:>5} MiB | fds {fds:>4} | \
         REST p50 {:>7.2?} p99 {:>7.2?} | gRPC p50 {:>7.2?} p99 {:>7.2?}",
        started.elapsed().as_secs_f64(),
        record.requests.load(Ordering::Relaxed),
        percentile(&mut rest, 0.5),
        percentile(&mut rest, 0.99),
        percentile(&mut grpc, 0.5),
        percentile(&mut grpc, 0.99),
    );
}

#[test]
#[ignore = "an hour of load: scripts/soak"]
fn soak() {
    let minutes: u64 = std::env::var("MLHOST_SOAK_MINUTES")
        .ok()
        .and_then(|minutes| minutes.parse().ok())
        .unwrap_or(60);
    let models = repository();
    let server = Server::start(models.path());
    let record = Arc::new(Record::default());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| rest_load(&server, &record));
        }
        scope.spawn(|| {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(grpc_load(&server, &record));
        });
        scope.spawn(|| mixed_load(&server, &record));
        for minute in 1..=minutes {
            let until = started + Duration::from_secs(60 * minute);
            while Instant::now() < until && record.failures.lock().unwrap().is_empty() {
                std::thread::sleep(Duration::from_millis(250));
            }
            report(&server, &record, minute, started);
            if !record.failures.lock().unwrap().is_empty() {
                break;
            }
        }
        record.stop.store(true, Ordering::Relaxed);
    });
    let failures = record.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{:?}",
        &failures[..failures.len().min(3)]
    );
    let panics: Vec<String> = server
        .logs()
        .into_iter()
        // The host's panics (the guest's own, which the `panic` attack makes, are its output).
        .filter(|line| line.contains("panicked") && !line.contains("mlhost::guest"))
        .collect();
    assert!(panics.is_empty(), "{:?}", &panics[..panics.len().min(3)]);
    assert_eq!(server.get("/v2/health/ready").status, 200);
}
