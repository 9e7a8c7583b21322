//! Connections of slow, greedy and hostile clients on both ports: the header, body, keep-alive,
//! handshake and idle timeouts; HTTP/2's stream limit; the file descriptor limit; a shutdown
//! that ends whatever clients do.

mod clients;
mod h2;

use crate::support::{Server, model_folder};
use clients::{ask_until_refused, closed_within, drip, keep_asking};
use h2::{REFUSED_STREAM, RawH2};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A server with no models and the connection settings `env`.
fn server_with(env: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let models = model_folder(&[]);
    (Server::start_with(models.path(), &[], env), models)
}

#[test]
fn slow_headers_slow_bodies_and_idle_connections_are_closed_while_others_are_served() {
    let (server, _models) = server_with(&[
        ("MLHOST_HEADER_READ_TIMEOUT_SECONDS", "1"),
        ("MLHOST_BODY_READ_TIMEOUT_SECONDS", "1"),
        ("MLHOST_MIN_BODY_RATE_BYTES_PER_SECOND", "100"),
        ("MLHOST_KEEP_ALIVE_TIMEOUT_SECONDS", "2"),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let others = keep_asking(server.address, stop.clone());

    // Slowloris: a header line every 300 ms, never the end of the headers.
    let mut slowloris = TcpStream::connect(server.address).unwrap();
    let mut head = b"POST /v2/models/m/infer HTTP/1.1\r\nHost: mlhost\r\n".to_vec();
    for i in 0..100 {
        head.extend_from_slice(format!("x-slow-{i}: 1\r\n").as_bytes());
    }
    let dripping = drip(
        slowloris.try_clone().unwrap(),
        head,
        Duration::from_millis(30),
    );
    let (closed, _) = closed_within(&mut slowloris, Duration::from_secs(6));
    let closed = closed.expect("the slowloris connection is still open after 6 s");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    dripping.join().unwrap();

    // A body at 5 bytes/s: each byte within the read timeout, but far below the rate.
    let mut slow_body = TcpStream::connect(server.address).unwrap();
    slow_body
        .write_all(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: mlhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    let dripping = drip(
        slow_body.try_clone().unwrap(),
        vec![b' '; 1000],
        Duration::from_millis(200),
    );
    let (closed, answer) = closed_within(&mut slow_body, Duration::from_secs(8));
    let answer = String::from_utf8_lossy(&answer).to_string();
    let closed =
        closed.unwrap_or_else(|| panic!("the slow body is still open after 8 s: {answer:?}"));
    assert!(closed < Duration::from_secs(4), "closed after {closed:?}");
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("too slowly"),
        "{answer:?}"
    );
    dripping.join().unwrap();

    // A keep-alive connection left idle after a request, and one that never sends anything.
    let mut idle = crate::support::Connection::open(server.address);
    assert_eq!(idle.request("GET", "/v2/health/live", &[], b"").status, 200);
    let mut silent = TcpStream::connect(server.address).unwrap();
    let (closed, _) = closed_within(&mut silent, Duration::from_secs(8));
    let closed = closed.expect("a silent connection is still open after 8 s");
    assert!(closed < Duration::from_secs(4), "closed after {closed:?}");

    stop.store(true, Ordering::Relaxed);
    let (good, bad) = others.join().unwrap();
    assert!(good > 20 && bad == 0, "others: {good} answered, {bad} not");
}

#[test]
fn a_client_that_takes_no_data_is_closed_after_the_send_timeout() {
    let (server, _models) = server_with(&[
        ("MLHOST_SEND_TIMEOUT_SECONDS", "1"),
        ("MLHOST_KEEP_ALIVE_TIMEOUT_SECONDS", "600"),
    ]);
    // 1000 pipelined requests for a 26 KB document, and no reading: the server's writes wait.
    let mut stream = TcpStream::connect(server.address).unwrap();
    let request = b"GET /v2/docs/dataplane.json HTTP/1.1\r\nHost: mlhost\r\n\r\n";
    stream.write_all(&request.repeat(1000)).unwrap();
    // Time to fill the socket buffers (about 10 MB of answers; slow on a loaded machine), and
    // then for the stalled write to time out: reading earlier would let the writes go on.
    std::thread::sleep(Duration::from_secs(8));
    let (closed, received) = closed_within(&mut stream, Duration::from_secs(10));
    let answered = received
        .windows(12)
        .filter(|w| w == b"HTTP/1.1 200")
        .count();
    assert!(
        closed.is_some(),
        "still open after taking {answered} answers"
    );
    assert!(answered < 1000, "{answered} answers");
    assert_eq!(server.get("/v2/health/live").status, 200);
}

#[test]
fn grpc_connections_without_handshake_or_calls_are_closed() {
    let (server, _models) = server_with(&[
        ("MLHOST_GRPC_HANDSHAKE_TIMEOUT_SECONDS", "1"),
        ("MLHOST_GRPC_IDLE_TIMEOUT_SECONDS", "2"),
    ]);
    // Nothing at all, then the preface without SETTINGS.
    let mut silent = TcpStream::connect(server.grpc_address).unwrap();
    let mut preface_only = TcpStream::connect(server.grpc_address).unwrap();
    preface_only.write_all(h2::PREFACE).unwrap();
    for (name, stream) in [("silent", &mut silent), ("preface only", &mut preface_only)] {
        let (closed, _) = closed_within(stream, Duration::from_secs(6));
        let closed = closed.unwrap_or_else(|| panic!("{name}: still open after 6 s"));
        assert!(
            closed < Duration::from_secs(3),
            "{name}: closed after {closed:?}"
        );
    }

    // A finished handshake, then no call.
    let mut idle = RawH2::connect(server.grpc_address);
    let started = Instant::now();
    idle.server_settings();
    let closed = idle
        .closed_within(Duration::from_secs(8))
        .expect("an idle gRPC connection is still open after 8 s");
    assert!(
        started.elapsed() >= Duration::from_millis(1500) && closed < Duration::from_secs(5),
        "closed after {closed:?}"
    );
}

#[test]
fn grpc_pings_close_connections_that_do_not_answer_them() {
    let (server, _models) = server_with(&[
        ("MLHOST_GRPC_KEEPALIVE_INTERVAL_SECONDS", "0.5"),
        ("MLHOST_GRPC_KEEPALIVE_TIMEOUT_SECONDS", "0.5"),
        ("MLHOST_GRPC_IDLE_TIMEOUT_SECONDS", "600"),
    ]);
    let mut answering = RawH2::connect(server.grpc_address);
    answering.server_settings();
    let mut deaf = RawH2::connect(server.grpc_address);
    deaf.server_settings();
    // `next` answers the pings; the connection lives on, pinged all along.
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_secs(3) {
        if let Some(frame) = answering.next(Duration::from_millis(100))
            && frame.kind == 6
        {
            pings += 1;
        }
    }
    assert!(pings >= 4, "{pings} pings in 3 s");
    let closed = deaf.closed_within(Duration::from_secs(5));
    assert!(
        closed.is_some(),
        "a client that never answers is still connected"
    );
}

#[test]
fn a_unary_grpc_request_arriving_too_slowly_is_deadline_exceeded() {
    let (server, _models) = server_with(&[
        ("MLHOST_BODY_READ_TIMEOUT_SECONDS", "1"),
        ("MLHOST_MIN_BODY_RATE_BYTES_PER_SECOND", "100"),
    ]);
    let mut call = RawH2::connect(server.grpc_address);
    call.server_settings();
    call.open_call(1, "/inference.GRPCInferenceService/ModelInfer");
    // A 1000-byte message, announced, then 5 bytes a second.
    assert!(call.send_within_window(&[1], &[0, 0, 0, 3, 232]));
    let started = Instant::now();
    let ended = loop {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "no answer in 8 s"
        );
        assert!(call.send_within_window(&[1], b" "));
        if let Some(frame) = call.next(Duration::from_millis(200))
            && frame.stream == 1
            && (frame.kind == 3 || (frame.kind == 1 && frame.flags & 1 == 1))
        {
            break started.elapsed();
        }
    };
    assert!(ended < Duration::from_secs(4), "answered after {ended:?}");
    let metrics = String::from_utf8(server.scrape("/metrics").body).unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("grpc_server_handled_total{")
                && line.contains("ModelInfer")
                && line.contains(r#"grpc_code="DEADLINE_EXCEEDED""#)
                && line.ends_with(" 1")),
        "{metrics}"
    );
}

#[test]
fn one_connection_cannot_open_more_grpc_streams_than_the_limit() {
    let (server, _models) = server_with(&[("MLHOST_GRPC_MAX_CONCURRENT_STREAMS", "8")]);
    #[cfg(target_os = "linux")]
    let rss_before = crate::support::rss_kib(server.pid());

    let mut flood = RawH2::connect(server.grpc_address);
    assert_eq!(flood.server_settings(), Some(8));
    let path = "/inference.GRPCInferenceService/ModelInfer";
    let streams: Vec<u32> = (0..300).map(|i| 2 * i + 1).collect();
    for &id in &streams {
        flood.open_call(id, path);
    }
    let (refused, goaway) = flood.resets(REFUSED_STREAM, Duration::from_secs(1));
    assert!(!goaway);
    assert_eq!(
        refused,
        streams[8..],
        "the streams past the limit are refused"
    );

    // Each call it took announces a 4 MiB message and sends its first 256 KiB, which the server
    // holds until the rest comes: 8 × 256 KiB here, where 300 streams would hold 75 MiB.
    let mut start = vec![0u8];
    start.extend_from_slice(&(4u32 << 20).to_be_bytes());
    start.resize(256 * 1024, 7);
    assert!(flood.send_within_window(&streams[..8], &start));
    std::thread::sleep(Duration::from_millis(500));

    // The REST port speaks HTTP/1.1 only: no SETTINGS for HTTP/2's preface.
    let mut rest = TcpStream::connect(server.address).unwrap();
    rest.write_all(h2::PREFACE).unwrap();
    rest.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    let (closed, answer) = closed_within(&mut rest, Duration::from_secs(5));
    assert!(
        closed.is_some() && (answer.is_empty() || answer.starts_with(b"HTTP/1.1 ")),
        "{answer:?}"
    );

    // The server still answers, and holds at most the streams it took.
    assert_eq!(server.get("/v2/health/live").status, 200);
    #[cfg(target_os = "linux")]
    {
        let grown = crate::support::rss_kib(server.pid()).saturating_sub(rss_before);
        assert!(grown < 32 * 1024, "RSS grew by {grown} KiB");
    }
}

/// The server's CPU time so far, in clock ticks (Linux: utime + stime of /proc/<pid>/stat).
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command's closing parenthesis: state is the 3rd field of the line,
    // utime and stime the 14th and 15th.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn at_the_file_descriptor_limit_the_server_waits_and_recovers() {
    let (server, _models) = server_with(&[
        ("MLHOST_GRPC_HANDSHAKE_TIMEOUT_SECONDS", "60"),
        ("MLHOST_HEADER_READ_TIMEOUT_SECONDS", "60"),
        ("MLHOST_KEEP_ALIVE_TIMEOUT_SECONDS", "60"),
    ]);
    let pid = server.pid();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = (open + 16).to_string();
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success());

    // More connections than descriptors left, on both ports: the rest wait in the backlog.
    let mut held: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(server.grpc_address).unwrap())
        .collect();
    held.push(TcpStream::connect(server.address).unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(3));
    let spent = cpu_ticks(pid) - before;
    // 300 ticks would be a full core; a few are the server's own timers.
    assert!(spent < 30, "{spent} ticks of CPU in 3 s at the fd limit");
    let logs = server.logs();
    let reports = logs
        .iter()
        .filter(|line| line.contains("cannot accept connections"))
        .count();
    assert!((1..=4).contains(&reports), "{reports} reports: {logs:?}");

    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = TcpStream::connect(server.address)
            .ok()
            .and_then(|mut stream| {
                stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
                stream
                    .write_all(b"GET /v2/health/live HTTP/1.1\r\nHost: mlhost\r\n\r\n")
                    .ok()?;
                let mut status = [0u8; 12];
                stream.read_exact(&mut status).ok()?;
                Some(status)
            });
        if answer.is_some_and(|status| status.ends_with(b"200")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no answer 10 s after the connections closed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut grpc = RawH2::connect(server.grpc_address);
    grpc.server_settings();
}

#[test]
fn connections_past_the_limit_are_refused_clearly() {
    let (server, _models) = server_with(&[("MLHOST_MAX_CONNECTIONS", "2")]);
    // The readiness checks' connections close first.
    std::thread::sleep(Duration::from_millis(300));
    let _held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(server.address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut refused = TcpStream::connect(server.address).unwrap();
    let (closed, answer) = closed_within(&mut refused, Duration::from_secs(5));
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(closed.is_some(), "{answer:?}");
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("max_connections"),
        "{answer:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server
        .logs()
        .iter()
        .any(|line| line.contains("refused a connection"))
    {
        assert!(Instant::now() < deadline, "{:?}", server.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn grpc_connections_past_the_limit_get_goaway_with_the_reason() {
    let (server, _models) = server_with(&[("MLHOST_MAX_CONNECTIONS", "2")]);
    let _held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(server.grpc_address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut refused = TcpStream::connect(server.grpc_address).unwrap();
    let (closed, answer) = closed_within(&mut refused, Duration::from_secs(5));
    assert!(closed.is_some(), "{answer:?}");
    // SETTINGS first (type 4 at byte 3), then GOAWAY (type 7) with the reason.
    assert_eq!(
        (answer.get(3), answer.get(12)),
        (Some(&4), Some(&7)),
        "{answer:?}"
    );
    let reason = String::from_utf8_lossy(&answer[26..]);
    assert!(reason.contains("max_connections"), "{reason}");
}

#[cfg(unix)]
#[test]
fn sigterm_ends_within_the_grace_period_whatever_clients_do() {
    let (server, _models) = server_with(&[
        ("MLHOST_SHUTDOWN_GRACE_PERIOD_SECONDS", "2"),
        ("MLHOST_HEADER_READ_TIMEOUT_SECONDS", "600"),
        ("MLHOST_BODY_READ_TIMEOUT_SECONDS", "600"),
        ("MLHOST_GRPC_HANDSHAKE_TIMEOUT_SECONDS", "600"),
    ]);
    // Half a request head; a whole head with a tenth of its body; a silent gRPC connection.
    let mut partial_head = TcpStream::connect(server.address).unwrap();
    partial_head
        .write_all(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: ml")
        .unwrap();
    let mut partial_body = TcpStream::connect(server.address).unwrap();
    partial_body
        .write_all(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: mlhost\r\nContent-Length: 100\r\n\r\n{\"inputs\"")
        .unwrap();
    let _silent = TcpStream::connect(server.grpc_address).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    let status = server
        .terminate()
        .expect("the server did not stop within 20 s of SIGTERM");
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(8), "stopped after {took:?}");
}

#[cfg(unix)]
#[test]
fn sigterm_under_load_answers_every_request_sent_on_an_open_connection() {
    let (server, _models) = server_with(&[("MLHOST_SHUTDOWN_GRACE_PERIOD_SECONDS", "5")]);
    let address = server.address;
    let clients: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || ask_until_refused(address)))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let status = server.terminate().expect("stopped within 20 s");
    assert!(status.success(), "{status:?}");
    let (mut answered, mut cut) = (0, 0);
    for client in clients {
        let (client_answered, client_cut) = client.join().unwrap();
        answered += client_answered;
        cut += client_cut;
    }
    assert!(answered > 100 && cut == 0, "{answered} answered, {cut} cut");
}
