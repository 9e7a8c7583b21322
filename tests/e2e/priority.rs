//! Priorities, as Triton's: a model's `priority_levels`, a request's `priority` parameter; a
//! free worker takes the highest level first, and each level's queue is bounded on its own.

use crate::support::{Response, Server, hostile_component, model_folder};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The hostile runtime on one worker, with two priority levels (the default the lowest).
fn repository(extra: &str) -> tempfile::TempDir {
    let settings = format!(
        r#"{{"implementation": "hostile.wasm", "parallel_workers": 1, "priority_levels": 2{extra}}}"#
    );
    let dir = model_folder(&[("hostile/model-settings.json", &settings)]);
    std::fs::write(dir.path().join("hostile/hostile.wasm"), hostile_component()).unwrap();
    dir
}

fn body(attack: &str, parameters: Value) -> Value {
    let mut all = json!({"attack": attack});
    all.as_object_mut()
        .unwrap()
        .extend(parameters.as_object().cloned().unwrap_or_default());
    json!({
        "parameters": all,
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1.5, -2.0]}]
    })
}

fn infer(server: &Server, attack: &str, parameters: Value) -> Response {
    server.post_json("/v2/models/hostile/infer", &body(attack, parameters))
}

/// Keeps the only worker busy for `micros` (a loop stopped at that deadline) on a thread.
fn occupy(server: &Arc<Server>, micros: u64) -> std::thread::JoinHandle<Response> {
    let server = server.clone();
    let handle = std::thread::spawn(move || infer(&server, "loop", json!({"timeout": micros})));
    std::thread::sleep(Duration::from_millis(200));
    handle
}

#[test]
fn the_highest_priority_runs_first_and_levels_are_checked() {
    let dir = repository("");
    let server = Arc::new(Server::start(dir.path()));
    let busy = occupy(&server, 1_500_000);
    // Queued behind the busy worker: three of the default (lowest) level, then one of level 1.
    let finished = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for (name, priority) in [("low-a", 0), ("low-b", 2), ("low-c", 0), ("high", 1)] {
        let (server, finished) = (server.clone(), finished.clone());
        clients.push(std::thread::spawn(move || {
            let response = infer(&server, "nap", json!({"priority": priority}));
            assert_eq!(response.status, 200, "{name}: {}", response.error());
            finished.lock().unwrap().push(name);
        }));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(busy.join().unwrap().status, 504);
    for client in clients {
        client.join().unwrap();
    }
    let order = finished.lock().unwrap().clone();
    assert_eq!(order, ["high", "low-a", "low-b", "low-c"]);

    let refused = infer(&server, "", json!({"priority": 3}));
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .error()
            .contains("priority 3 is not a level of this model"),
        "{}",
        refused.error()
    );
    assert_eq!(infer(&server, "", json!({"priority": "high"})).status, 400);
}

#[test]
fn each_level_has_a_queue_of_its_own() {
    let dir = repository(r#", "priority_queue_sizes": [1, 1]"#);
    let server = Arc::new(Server::start(dir.path()));
    let busy = occupy(&server, 1_000_000);
    let queued = {
        let server = server.clone();
        std::thread::spawn(move || infer(&server, "", json!({})))
    };
    std::thread::sleep(Duration::from_millis(200));
    // The lowest level's queue is full: refused at once; the highest still has room.
    let full = infer(&server, "", json!({}));
    assert_eq!(full.status, 503, "{}", full.error());
    let high = {
        let server = server.clone();
        std::thread::spawn(move || infer(&server, "", json!({"priority": 1})))
    };
    assert_eq!(busy.join().unwrap().status, 504);
    assert_eq!(queued.join().unwrap().status, 200);
    assert_eq!(high.join().unwrap().status, 200);
}

#[test]
fn priority_settings_out_of_range_fail_the_model() {
    for extra in [
        r#", "default_priority_level": 3"#,
        r#", "priority_queue_sizes": [4]"#,
    ] {
        let dir = repository(extra);
        let server = Server::spawn(dir.path(), &[], &[]);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            // Until the load has been tried, the model is UNAVAILABLE "not loaded".
            let index = server.post_json("/v2/repository/index", &json!({}));
            let state = index.json()[0]["state"].as_str().unwrap_or("").to_string();
            let reason = index.json()[0]["reason"].to_string();
            if state == "UNAVAILABLE" && reason.contains("priority") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{extra}: {state} {reason}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
