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
