//! Test support: start the real `mlhost` binary and talk raw HTTP/1.1 to it.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The workspace's root folder.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The example models shipped with the repository.
pub fn example_models() -> PathBuf {
    workspace().join("examples/models")
}

/// The linear runtime as a standalone component file (built by the host's build script).
pub fn linear_component() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_mlhost"));
    let target = binary.parent().unwrap().parent().unwrap();
    let path = target.join("mlhost-guests/wasm32-wasip2/guest/mlhost_runtime_linear.wasm");
    assert!(path.is_file(), "no component at {}", path.display());
    path
}

/// The hostile test runtime's component (tests/guests/hostile), built beside the built-in ones.
pub fn hostile_component() -> Vec<u8> {
    let path = linear_component().with_file_name("mlhost_test_hostile.wasm");
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A running `mlhost serve`, killed on drop.
pub struct Server {
    child: Child,
    pub address: SocketAddr,
    pub grpc_address: SocketAddr,
    metrics_address: Option<SocketAddr>,
    logs: Arc<Mutex<Vec<String>>>,
    /// Holds the port file (`--port-file`) the server wrote its bound ports to.
    port_dir: tempfile::TempDir,
}

/// The compilation cache the test servers share, with the Python tests (tests/python/mlhost_server.py).
fn shared_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mlhost-compiled")
}

/// How long a test server may take to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// The port file's name in the server's own temporary folder.
const PORT_FILE: &str = "ports.json";

impl Server {
    /// Starts `mlhost serve --models DIR` on a free port and waits until it is ready.
    pub fn start(models: &Path) -> Server {
        Server::start_with(models, &[], &[])
    }

    /// Starts the server with extra arguments and environment variables.
    pub fn start_with(models: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let server = Server::spawn(models, args, env);
        server.wait_ready();
        server
    }

    /// Starts the server without waiting for it to be ready: only until its ports are bound,
    /// which it reports in its port file.
    pub fn spawn(models: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn_logging(models, args, env, true)
    }

    /// Starts the server as [`Server::spawn`] does, with its stderr closed from the start (every
    /// log line it writes fails): as a server whose log collector has gone.
    pub fn spawn_with_stderr_closed(models: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn_logging(models, args, env, false)
    }

    fn spawn_logging(
        models: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        read_logs: bool,
    ) -> Server {
        let port_dir = tempfile::tempdir().unwrap();
        let port_file = port_dir.path().join(PORT_FILE);
        let mut command = Command::new(env!("CARGO_BIN_EXE_mlhost"));
        command
            .arg("serve")
            .arg("--models")
            .arg(models)
            .args([
                "--host",
                "127.0.0.1",
                "--http-port",
                "0",
                "--grpc-port",
                "0",
                "--metrics-port",
                "0",
            ])
            .arg("--port-file")
            .arg(&port_file)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // One compilation cache for every server of the test run (entries are keyed by the
        // component's hash and written atomically), so that each runtime — the ONNX one takes
        // a while — compiles once; a test that needs its own gives MLHOST_COMPILATION_CACHE_DIR.
        command.env("MLHOST_COMPILATION_CACHE_DIR", shared_cache_dir());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start mlhost");
        let stderr = child.stderr.take().unwrap();
        let (logs, reader) = if read_logs {
            let (logs, reader) = collect_logs(stderr);
            (logs, Some(reader))
        } else {
            (Arc::default(), None)
        };
        let Some(ports) = wait_for_port_file(&port_file, &mut child, Duration::from_secs(30))
        else {
            let _ = child.kill();
            let _ = child.wait();
            // The process is gone: its stderr ends, and the reader with it.
            if let Some(reader) = reader {
                let _ = reader.join();
            }
            panic!("mlhost did not start: {:?}", logs.lock().unwrap());
        };
        let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let port = |name: &str| {
            ports[name]
                .as_u64()
                .and_then(|port| u16::try_from(port).ok())
        };
        let (Some(http), Some(grpc)) = (port("http"), port("grpc")) else {
            panic!("a port file without the http and grpc ports: {ports}");
        };
        Server {
            child,
            address: at(http),
            grpc_address: at(grpc),
            metrics_address: port("metrics").map(at),
            logs,
            port_dir,
        }
    }

    /// The port file the server wrote (`--port-file`).
    pub fn port_file(&self) -> PathBuf {
        self.port_dir.path().join(PORT_FILE)
    }

    /// Where the metrics server listens (it is bound before the server is ready).
    pub fn metrics_address(&self) -> SocketAddr {
        self.metrics_address
            .unwrap_or_else(|| panic!("no metrics server: {:?}", self.logs()))
    }

    /// Scrapes the metrics endpoint at `path`.
    pub fn scrape(&self, path: &str) -> Response {
        Connection::open(self.metrics_address()).request("GET", path, &[], b"")
    }

    /// Polls `/v2/health/ready` until it answers 200, for as long as a first start compiling
    /// every example may take on a loaded machine (about 35 s alone on 2 quiet cores in the
    /// test build; the servers sharing the cache wait for that one compilation).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if self.get("/v2/health/ready").status == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("mlhost did not become ready: {:?}", self.logs());
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server has logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// A new keep-alive connection to the server.
    pub fn connect(&self) -> Connection {
        Connection::open(self.address)
    }

    /// `GET path` on a new connection.
    pub fn get(&self, path: &str) -> Response {
        self.connect().request("GET", path, &[], b"")
    }

    /// `POST path` with a JSON body on a new connection.
    pub fn post_json(&self, path: &str, body: &Value) -> Response {
        self.connect().post(path, body.to_string().as_bytes())
    }

    /// Asks the server to stop (SIGTERM) and returns whether it exited cleanly in time.
    #[cfg(unix)]
    pub fn terminate(mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects the server's log lines (stderr) in the background, until the stream ends.
fn collect_logs(stderr: ChildStderr) -> (Arc<Mutex<Vec<String>>>, JoinHandle<()>) {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let collected = logs.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            collected.lock().unwrap().push(line);
        }
    });
    (logs, reader)
}

/// Polls for the port file until `timeout`: its JSON once written (atomically, so whole), or
/// `None` when the server exited or the time ran out first.
pub fn wait_for_port_file(path: &Path, child: &mut Child, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(bytes) = std::fs::read(path) {
            return Some(serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                panic!(
                    "the port file is not JSON ({error}): {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            }));
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `error` message of an error body, checking the body is exactly `{"error": "..."}`.
    pub fn error(&self) -> String {
        let json = self.json();
        let object = json.as_object().expect("error body is an object");
        assert_eq!(object.len(), 1, "error body has only `error`: {json}");
        object["error"]
            .as_str()
            .expect("error is a string")
            .to_string()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// One HTTP/1.1 keep-alive connection, written and read by hand as curl would.
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(address: SocketAddr) -> Connection {
        let stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Connection {
            reader: BufReader::new(stream),
        }
    }

    /// The connection with TCP_NODELAY: a request's head and body, written apart, leave at once
    /// (without it each request waits for the server's delayed ACK, ~40 ms on Linux).
    pub fn no_delay(self) -> Connection {
        self.reader.get_ref().set_nodelay(true).unwrap();
        self
    }

    pub fn post(&mut self, path: &str, body: &[u8]) -> Response {
        self.request("POST", path, &[("Content-Type", "application/json")], body)
    }

    /// Sends one request and reads its response; the connection stays open for the next.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: mlhost\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream
            .write_all(head.as_bytes())
            .expect("write request head");
        stream.write_all(body).expect("write request body");
        self.read_response()
    }

    /// Writes raw bytes (a hand-made request) and reads one response.
    pub fn raw(&mut self, bytes: &[u8]) -> Response {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("write request");
        self.read_response()
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        let read = self
            .reader
            .read_line(&mut line)
            .expect("read response line");
        assert!(read > 0, "the server closed the connection");
        line.trim_end_matches(['\r', '\n']).to_string()
    }

    fn read_response(&mut self) -> Response {
        let status_line = self.read_line();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.read_line();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header line");
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let find = |name: &str| {
            headers
                .iter()
                .find(|(key, _): &&(String, String)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        let body = if let Some(length) = find("content-length") {
            let mut body = vec![0; length.parse().unwrap()];
            self.reader.read_exact(&mut body).expect("read body");
            body
        } else if find("transfer-encoding").is_some_and(|value| value.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let size = usize::from_str_radix(&self.read_line(), 16).expect("chunk size");
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).expect("read chunk");
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
            body
        } else {
            Vec::new()
        };
        Response {
            status,
            headers,
            body,
        }
    }
}

/// A repository with one model, `probe`, served by the hostile test runtime (which also probes
/// streaming, content types and headers), with `settings` as its model-settings.json.
pub fn probe_repository(settings: &str) -> tempfile::TempDir {
    let dir = model_folder(&[("probe/model-settings.json", settings)]);
    let component = linear_component().with_file_name("mlhost_test_hostile.wasm");
    std::fs::copy(component, dir.path().join("probe/hostile.wasm")).unwrap();
    dir
}

/// Writes `files` (relative path → contents) under a new temporary folder.
pub fn model_folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

/// Requests to a one-feature linear model (input `x`, `y = slope·x + intercept`) from several
/// threads until stopped; counts right answers and anything else.
pub struct LinearLoad {
    stop: Arc<AtomicBool>,
    good: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl LinearLoad {
    pub fn start(
        server: &Server,
        model: &str,
        threads: usize,
        slope: f64,
        intercept: f64,
    ) -> LinearLoad {
        let (stop, good, bad) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let path = format!("/v2/models/{model}/infer");
        let threads = (0..threads)
            .map(|thread| {
                let (stop, good, bad, address, path) =
                    (stop.clone(), good.clone(), bad.clone(), server.address, path.clone());
                std::thread::spawn(move || {
                    let mut connection = Connection::open(address);
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let x = (thread as u64 * 1_000_000 + i) as f64;
                        let body = serde_json::json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [x]}]});
                        let response = connection.post(&path, body.to_string().as_bytes());
                        let expected = serde_json::json!([slope * x + intercept]);
                        if response.status == 200 && response.json()["outputs"][0]["data"] == expected {
                            good.fetch_add(1, Ordering::Relaxed);
                        } else {
                            eprintln!("bad answer: {} {:?}", response.status, String::from_utf8_lossy(&response.body));
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        LinearLoad {
            stop,
            good,
            bad,
            threads,
        }
    }

    /// Stops the load; returns (right answers, anything else).
    pub fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
        (
            self.good.load(Ordering::Relaxed),
            self.bad.load(Ordering::Relaxed),
        )
    }
}

/// The server's resident memory, in KiB (Linux).
#[cfg(target_os = "linux")]
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
