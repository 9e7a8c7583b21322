//! The server process: start-up, readiness, graceful shutdown.

#[cfg(unix)]
#[test]
fn sigterm_stops_the_server_cleanly() {
    use crate::support::{Server, example_models};
    let server = Server::start(&example_models());
    let status = server.terminate().expect("the server stopped within 20 s");
    assert!(status.success(), "{status:?}");
}

#[test]
fn an_unusable_port_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mlhost"))
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--http-port",
            &port,
            "--models",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

/// The port in the log line that starts with `marker` (the address ends at a space, a slash or
/// the end of the line).
fn logged_port(logs: &[String], marker: &str) -> Option<u16> {
    logs.iter().find_map(|line| {
        let rest = line.split(marker).nth(1)?;
        let end = rest.find([' ', '/', '"']).unwrap_or(rest.len());
        rest[..end]
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|address| address.port())
    })
}

#[test]
fn the_port_file_holds_the_ports_the_server_answers_on() {
    use crate::support::{Connection, Server, example_models};
    use mlhost::pb;
    // The harness asks for port 0 everywhere and learns the picked ports from the file.
    let server = Server::start(&example_models());
    let path = server.port_file();
    let ports: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let object = ports.as_object().expect("the port file is a JSON object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["grpc", "http", "metrics"], "{ports}");
    let port = |name: &str| u16::try_from(ports[name].as_u64().expect("a port")).unwrap();
    let (http, grpc, metrics) = (port("http"), port("grpc"), port("metrics"));
    assert!(http != 0 && grpc != 0 && metrics != 0, "{ports}");
    let mut temporary = path.clone().into_os_string();
    temporary.push(".tmp");
    assert!(!std::path::Path::new(&temporary).exists());

    // The same ports as the log lines people read.
    let logs = server.logs();
    assert_eq!(
        logged_port(&logs, "REST server listening on http://"),
        Some(http)
    );
    assert_eq!(logged_port(&logs, "gRPC server listening on "), Some(grpc));
    assert_eq!(
        logged_port(&logs, "metrics server listening on http://"),
        Some(metrics)
    );

    // And each answers its protocol.
    let local = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let live = Connection::open(local(http)).request("GET", "/v2/health/live", &[], b"");
    assert_eq!(live.status, 200);
    let scraped = Connection::open(local(metrics)).request("GET", "/metrics", &[], b"");
    assert_eq!(scraped.status, 200);
    assert!(
        String::from_utf8_lossy(&scraped.body).contains("# TYPE mlhost_models gauge"),
        "{scraped:?}"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let grpc_live = runtime.block_on(async {
        let mut client = pb::grpc_inference_service_client::GrpcInferenceServiceClient::connect(
            format!("http://{}", local(grpc)),
        )
        .await
        .expect("connect over gRPC");
        client.server_live(pb::ServerLiveRequest {}).await
    });
    assert!(grpc_live.expect("ServerLive").into_inner().live);
}

#[test]
fn the_port_file_has_no_metrics_port_when_the_metrics_server_is_off() {
    use crate::support::{Server, model_folder};
    let models = model_folder(&[("settings.json", r#"{"metrics_endpoint": null}"#)]);
    let server = Server::start(models.path());
    let ports: serde_json::Value =
        serde_json::from_slice(&std::fs::read(server.port_file()).unwrap()).unwrap();
    assert!(ports["metrics"].is_null(), "{ports}");
    assert_eq!(
        ports["http"].as_u64(),
        Some(u64::from(server.address.port()))
    );
    assert_eq!(server.get("/v2/health/live").status, 200);
}

#[test]
fn the_port_file_can_be_named_by_the_environment() {
    let (models, ports) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let path = ports.path().join("ports.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlhost"))
        .args(["serve", "--host", "127.0.0.1", "--http-port", "0"])
        .args(["--grpc-port", "0", "--metrics-port", "0", "--models"])
        .arg(models.path())
        .env("MLHOST_PORT_FILE", &path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let written =
        crate::support::wait_for_port_file(&path, &mut child, std::time::Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let written = written.expect("the server wrote the port file MLHOST_PORT_FILE names");
    assert!(
        written["http"].as_u64().is_some_and(|port| port != 0),
        "{written}"
    );
}

/// A log collector that goes away (stderr closed) costs the logs, not the server: it goes on
/// serving and still stops cleanly (reporting the lost lines on stderr used to panic).
#[cfg(unix)]
#[test]
fn a_closed_stderr_does_not_stop_the_server() {
    use crate::support::{Server, model_folder};
    use std::time::{Duration, Instant};
    let dir = model_folder(&[
        (
            "iris/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        (
            "iris/linear.json",
            r#"{"kind": "linear", "coefficients": [[2.0]], "intercepts": [1.0], "input_name": "x"}"#,
        ),
    ]);
    let server = Server::spawn_with_stderr_closed(dir.path(), &[], &[("RUST_LOG", "debug")]);
    let body = serde_json::json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [1]}]});
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answered = 0;
    while answered < 20 && Instant::now() < deadline {
        if server.post_json("/v2/models/iris/infer", &body).status == 200 {
            answered += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(answered, 20, "the server stopped answering");
    let status = server
        .terminate()
        .expect("SIGTERM stopped the server within 20 s");
    assert!(status.success(), "{status:?}");
}

/// The binary's allocator (mimalloc on Linux) commits its arenas lazily: the option is set before
/// Rust's start-up makes the first arena (eager commit kept ~45 MiB more resident at rest).
/// mimalloc prints its options in verbose mode, at its own start, after the binary's constructor.
#[cfg(target_os = "linux")]
#[test]
fn the_allocator_commits_its_arenas_lazily() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mlhost"))
        .arg("--version")
        .env("MIMALLOC_VERBOSE", "1")
        .env_remove("MIMALLOC_ARENA_EAGER_COMMIT")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("option 'arena_eager_commit': 0"),
        "{stderr}"
    );
}
