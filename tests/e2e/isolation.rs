//! Hostile guests: each attack is contained, answered clearly and in time, and costs the healthy
//! model beside it nothing.

use crate::support::{Connection, LinearLoad, Response, Server, hostile_component, model_folder};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The hostile model's timeout, from its model-settings.json.
const HOSTILE_TIMEOUT: Duration = Duration::from_secs(2);
/// What an answer may take beyond its deadline.
const MARGIN: Duration = Duration::from_millis(1500);

/// A repository with a healthy linear model and the hostile runtime under tight limits.
fn repository(settings: &str) -> tempfile::TempDir {
    let dir = model_folder(&[
        ("settings.json", settings),
        (
            "healthy/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        (
            "healthy/linear.json",
            r#"{"kind": "linear", "coefficients": [[2.0]], "intercepts": [1.0], "input_name": "x"}"#,
        ),
        (
            "hostile/model-settings.json",
            r#"{"implementation": "hostile.wasm", "memory_limit_mb": 64, "timeout_seconds": 2, "max_output_mb": 4}"#,
        ),
    ]);
    std::fs::write(dir.path().join("hostile/hostile.wasm"), hostile_component()).unwrap();
    dir
}

fn attack_body(attack: &str, extra: Value) -> Value {
    let mut parameters = json!({"attack": attack});
    parameters
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    json!({
        "parameters": parameters,
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1.5, -2.0]}]
    })
}

fn attack(server: &Server, attack: &str, extra: Value) -> (Response, Duration) {
    let started = Instant::now();
    let response = server.post_json("/v2/models/hostile/infer", &attack_body(attack, extra));
    (response, started.elapsed())
}

/// The hostile model behaves again: it echoes a good request.
fn assert_recovered(server: &Server) {
    let response = server.post_json(
        "/v2/models/hostile/infer",
        &json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1.5, -2.0]}]}),
    );
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.json()["outputs"][0]["data"], json!([1.5, -2.0]));
}

#[cfg(target_os = "linux")]
fn resident_megabytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

#[test]
fn hostile_guests_are_contained_while_a_healthy_model_serves() {
    let dir = repository("{}");
    let server = Server::start(dir.path());
    let load = LinearLoad::start(&server, "healthy", 3, 2.0, 1.0);

    let cases: [(&str, Value, u16, &str); 9] = [
        ("loop", json!({}), 504, "deadline"),
        ("twin-outputs", json!({}), 500, "output 'twin' twice"),
        ("grow", json!({}), 500, "memory limit of 64 MiB"),
        ("trap", json!({}), 500, "trapped"),
        ("panic", json!({}), 500, "trapped"),
        ("stack", json!({}), 500, "trapped"),
        ("many-outputs", json!({}), 500, "more than 4096 outputs"),
        ("sleep", json!({}), 504, "deadline"),
        (
            "big-output",
            json!({"megabytes": 16}),
            500,
            "more than the 4194304 bytes of output",
        ),
    ];
    for (name, extra, status, needle) in &cases {
        let (response, elapsed) = attack(&server, name, extra.clone());
        assert_eq!(
            response.status,
            *status,
            "{name}: {:?}",
            String::from_utf8_lossy(&response.body)
        );
        let error = response.error();
        assert!(error.contains(needle), "{name}: {error}");
        // The client reads the cause; the wasm backtrace is for the log.
        assert!(!error.contains("backtrace"), "{name}: {error}");
        assert!(
            elapsed < HOSTILE_TIMEOUT + MARGIN,
            "{name} took {elapsed:?}"
        );
        assert_recovered(&server);
    }

    // All of them at once, twice over.
    let address = server.address;
    let concurrent: Vec<_> = cases
        .iter()
        .chain(cases.iter())
        .map(|(name, extra, status, _)| {
            let (body, status, name) =
                (attack_body(name, extra.clone()), *status, name.to_string());
            std::thread::spawn(move || {
                let started = Instant::now();
                let response = Connection::open(address)
                    .post("/v2/models/hostile/infer", body.to_string().as_bytes());
                // Queued behind other attacks, a request may run out of time before it starts.
                assert!(
                    response.status == status || response.status == 504,
                    "{name}: {}",
                    response.status
                );
                response.error();
                assert!(
                    started.elapsed() < HOSTILE_TIMEOUT + MARGIN,
                    "{name} took {:?}",
                    started.elapsed()
                );
            })
        })
        .collect();
    for thread in concurrent {
        thread.join().unwrap();
    }
    assert_recovered(&server);

    let (good, bad) = load.finish();
    assert_eq!(
        bad, 0,
        "the healthy model failed {bad} requests ({good} succeeded)"
    );
    assert!(good > 0);
    let logs = server.logs();
    let recreations = logs
        .iter()
        .filter(|line| line.contains("instance re-created") && line.contains("model=hostile"))
        .count();
    // loop, grow, trap, panic, stack and sleep each cost the instance its Store; outputs over
    // the limit do not.
    assert!(recreations >= 6, "{recreations} re-creations logged");
    #[cfg(target_os = "linux")]
    {
        let rss = resident_megabytes(server.pid());
        assert!(rss < 1024, "the server holds {rss} MiB after the attacks");
    }
}

#[test]
fn a_short_sleep_is_still_a_sleep() {
    let dir = repository("{}");
    let server = Server::start(dir.path());
    let (response, elapsed) = attack(&server, "nap", json!({}));
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(elapsed >= Duration::from_millis(20));
}

#[test]
fn a_request_timeout_shortens_the_deadline() {
    let dir = repository("{}");
    let server = Server::start(dir.path());
    let (response, elapsed) = attack(&server, "loop", json!({"timeout": 300_000}));
    assert_eq!(response.status, 504);
    assert!(
        response.error().contains("deadline of 300ms"),
        "{}",
        response.error()
    );
    assert!(elapsed < Duration::from_millis(300) + MARGIN, "{elapsed:?}");
    // A longer request timeout is capped by the model's.
    let (response, elapsed) = attack(&server, "loop", json!({"timeout": 60_000_000}));
    assert_eq!(response.status, 504);
    assert!(elapsed < HOSTILE_TIMEOUT + MARGIN, "{elapsed:?}");
    let (response, _) = attack(&server, "loop", json!({"timeout": -5}));
    assert_eq!(response.status, 400);
    assert_recovered(&server);
}

fn report(response: &Response) -> Vec<String> {
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    let json = response.json();
    json["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn guests_cannot_reach_host_files_environment_or_network() {
    let dir = repository("{}");
    let server = Server::start_with(dir.path(), &[], &[("MLHOST_SECRET", "hunter2")]);

    let lines = report(&attack(&server, "files", json!({})).0);
    assert!(
        lines[0].starts_with("ok read own /model/model-settings.json"),
        "{lines:?}"
    );
    for line in &lines[1..] {
        assert!(line.starts_with("denied"), "a guest got through: {line}");
    }
    assert!(!dir.path().join("hostile/planted").exists());
    assert!(dir.path().join("hostile/model-settings.json").exists());

    let lines = report(&attack(&server, "env", json!({})).0);
    assert!(
        lines.iter().all(|line| line.starts_with("denied")),
        "{lines:?}"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let lines = report(&attack(&server, "socket", json!({"port": port})).0);
    assert!(
        lines.iter().all(|line| line.starts_with("denied")),
        "{lines:?}"
    );
    assert!(lines.len() >= 2, "{lines:?}");
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the guest connected"
    );
}

#[test]
fn guest_output_goes_to_the_log_tagged_and_bounded() {
    let dir = repository(r#"{"guest_log_limit_kb": 16}"#);
    let server = Server::start(dir.path());
    let (response, _) = attack(&server, "chatter", json!({}));
    assert_eq!(response.status, 200);
    // The log thread may lag the response a little.
    std::thread::sleep(Duration::from_millis(200));
    let logs = server.logs();
    let guest_lines: Vec<&String> = logs
        .iter()
        .filter(|line| line.contains("mlhost::guest"))
        .collect();
    assert!(
        guest_lines.iter().any(|line| line.contains("model=hostile")
            && line.contains("stream=\"stdout\"")
            && line.contains("stdout line 0")),
        "{guest_lines:?}"
    );
    assert!(
        guest_lines
            .iter()
            .any(|line| line.contains("stderr line 0"))
    );
    assert!(guest_lines.iter().any(|line| line.contains("dropped")));
    // 16 KiB per stream per call holds 16 lines of ~1 KiB each, not the 2000 written.
    let printed = guest_lines
        .iter()
        .filter(|line| line.contains(" line "))
        .count();
    assert!(printed <= 2 * 17, "{printed} guest lines logged");
}

#[test]
fn request_size_limits_hold_on_plain_and_gzip_bodies() {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    let dir = repository(r#"{"max_request_body_mb": 1, "max_tensor_elements": 1000}"#);
    let server = Server::start(dir.path());
    let gzip = |bytes: &[u8]| {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let mut connection = server.connect();
    let gzip_post = |connection: &mut Connection, body: &[u8]| {
        connection.request(
            "POST",
            "/v2/models/healthy/infer",
            &[("Content-Encoding", "gzip")],
            body,
        )
    };

    let good = json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [3]}]});
    let response = gzip_post(&mut connection, &gzip(good.to_string().as_bytes()));
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["outputs"][0]["data"], json!([7.0]));

    // 100 MiB of spaces gzip to about 100 KiB: decompression stops at the 1 MiB limit.
    let bomb = gzip(&vec![b' '; 100 << 20]);
    assert!(bomb.len() < 1 << 20);
    let response = gzip_post(&mut connection, &bomb);
    assert_eq!(response.status, 413);
    assert!(
        response.error().contains("decompressed"),
        "{}",
        response.error()
    );

    let response = gzip_post(&mut connection, b"not gzip at all");
    assert_eq!(response.status, 400);
    assert!(response.error().contains("malformed gzip"));

    let response = connection.request(
        "POST",
        "/v2/models/healthy/infer",
        &[("Content-Encoding", "br")],
        b"{}",
    );
    assert_eq!(response.status, 400);
    assert!(response.error().contains("unsupported Content-Encoding"));

    let too_many = json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1001, 1], "data": vec![1.0; 1001]}]});
    let response = connection.post("/v2/models/healthy/infer", too_many.to_string().as_bytes());
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("more than the 1000 elements"),
        "{}",
        response.error()
    );

    let head = format!(
        "POST /v2/models/healthy/infer HTTP/1.1\r\nHost: mlhost\r\nContent-Length: {}\r\n\r\n",
        (1 << 20) + 1
    );
    let response = connection.raw(head.as_bytes());
    assert_eq!(response.status, 413);
}

#[test]
fn model_limits_cannot_exceed_the_servers() {
    let dir = repository(r#"{"memory_limit_mb": 32}"#);
    let server = Server::start(dir.path());
    let ready = server.get("/v2/models/hostile/ready");
    assert_eq!(ready.status, 400);
    assert!(
        ready
            .error()
            .contains("`memory_limit_mb`: 64 is over the server's limit of 32"),
        "{}",
        ready.error()
    );
    assert_eq!(server.get("/v2/models/healthy/ready").status, 200);
}
