//! Inline calls: a model whose calls are short runs them on the async thread that decoded the
//! request (no hop to a worker thread and back); one that turns long there is moved off the
//! async runtime at once and goes back to its workers for good.

use crate::support::{Response, Server, hostile_component, model_folder};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Calls in a row a model must make on its workers, each short, before it runs inline
/// (host/src/workers/inline.rs).
const SHORT_STREAK: usize = 32;

/// The server under test, its short calls up to 5 ms (the tests' debug build, on a machine
/// busy with other tests, may take longer than the default 200 µs for a tiny model's call).
fn start(dir: &tempfile::TempDir) -> Server {
    Server::start_with(dir.path(), &[], &[("MLHOST_INLINE_CALL_MAX_US", "5000")])
}

/// A repository with a linear model and the hostile runtime (2 s timeout).
fn repository() -> tempfile::TempDir {
    let dir = model_folder(&[
        (
            "linear/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        (
            "linear/linear.json",
            r#"{"kind": "linear", "coefficients": [[2.0]], "intercepts": [1.0], "input_name": "x"}"#,
        ),
        (
            "hostile/model-settings.json",
            r#"{"implementation": "hostile.wasm", "timeout_seconds": 2}"#,
        ),
    ]);
    std::fs::write(dir.path().join("hostile/hostile.wasm"), hostile_component()).unwrap();
    dir
}

fn body(attack: &str) -> Value {
    json!({
        "parameters": {"attack": attack},
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 1], "data": [1.5, -2.0]}]
    })
}

fn infer(server: &Server, model: &str, attack: &str) -> Response {
    server.post_json(&format!("/v2/models/{model}/infer"), &body(attack))
}

/// How many requests of `model` went through its worker queue (the queue-length histogram's
/// count: inline calls skip the queue).
fn queued(server: &Server, model: &str) -> u64 {
    let page = String::from_utf8_lossy(&server.scrape("/metrics").body).into_owned();
    page.lines()
        .find(|line| {
            line.starts_with("mlhost_worker_queue_count{")
                && line.contains(&format!("model_name=\"{model}\""))
        })
        .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|count| count as u64)
        .unwrap_or_else(|| panic!("no mlhost_worker_queue_count of {model}:\n{page}"))
}

/// Calls `model` until its calls skip the worker queue (ten in a row), at most 600 times;
/// returns the queue's count then.
fn earn_inline(server: &Server, model: &str) -> u64 {
    let mut last = u64::MAX;
    for _ in 0..60 {
        for _ in 0..10 {
            assert_eq!(infer(server, model, "").status, 200);
        }
        let count = queued(server, model);
        if count == last {
            return count;
        }
        last = count;
    }
    panic!("{model}'s calls never ran inline: {last} of 600 went through the worker queue");
}

#[test]
fn a_short_model_runs_inline_after_its_streak() {
    let dir = repository();
    let server = start(&dir);
    let first = infer(&server, "linear", "");
    assert_eq!(first.status, 200, "{}", first.error());
    for _ in 0..SHORT_STREAK + 50 {
        let response = infer(&server, "linear", "");
        assert_eq!(response.status, 200, "{}", response.error());
        // Inline or not, the same answer.
        assert_eq!(response.json()["outputs"], first.json()["outputs"]);
    }
    let total = SHORT_STREAK as u64 + 51;
    let queued = queued(&server, "linear");
    assert!(
        queued <= SHORT_STREAK as u64 + 10,
        "{queued} of {total} requests went through the worker queue"
    );
}

#[test]
fn a_call_that_turns_long_inline_leaves_the_server_responsive_and_bars_the_model() {
    let dir = repository();
    let server = Arc::new(start(&dir));
    let before = earn_inline(&server, "hostile");
    // While the hostile model loops (inline, until its 2 s deadline), the server keeps
    // answering on every other connection.
    let done = Arc::new(AtomicBool::new(false));
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let prober = {
        let (server, done, slowest) = (server.clone(), done.clone(), slowest.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                assert_eq!(infer(&server, "linear", "").status, 200);
                let took = started.elapsed();
                let mut slowest = slowest.lock().unwrap();
                *slowest = (*slowest).max(took);
                drop(slowest);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let looped = infer(&server, "hostile", "loop");
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    prober.join().unwrap();
    assert_eq!(looped.status, 504, "{}", looped.error());
    assert!(took < Duration::from_millis(3500), "{took:?}");
    let slowest = *slowest.lock().unwrap();
    assert!(
        slowest < Duration::from_millis(500),
        "another model's request took {slowest:?} while the hostile one looped"
    );
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("run on its workers from now on")),
        "{:?}",
        server.logs()
    );
    // The model still answers, now through its workers only.
    for _ in 0..5 {
        assert_eq!(infer(&server, "hostile", "").status, 200);
    }
    assert!(queued(&server, "hostile") >= before + 5);
}

#[test]
fn inline_calls_off_keeps_every_call_on_the_workers() {
    let dir = repository();
    let server = Server::start_with(dir.path(), &[], &[("MLHOST_INLINE_CALLS", "false")]);
    let calls = SHORT_STREAK as u64 + 40;
    for _ in 0..calls {
        assert_eq!(infer(&server, "linear", "").status, 200);
    }
    assert_eq!(queued(&server, "linear"), calls);
}
