//! The repository extension: index, load, unload and reload while the server serves.

use crate::support::{Connection, LinearLoad, Server, model_folder};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

fn linear(slope: f64, intercept: f64) -> String {
    json!({"kind": "linear", "coefficients": [[slope]], "intercepts": [intercept], "input_name": "x"}).to_string()
}

fn infer(server: &Server, model: &str, x: f64) -> crate::support::Response {
    server.post_json(
        &format!("/v2/models/{model}/infer"),
        &json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [x]}]}),
    )
}

fn index(server: &Server, body: &str) -> Vec<Value> {
    let response = server
        .connect()
        .post("/v2/repository/index", body.as_bytes());
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    response.json().as_array().unwrap().clone()
}

fn entry<'a>(index: &'a [Value], name: &str) -> &'a Value {
    index
        .iter()
        .find(|entry| entry["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {index:?}"))
}

fn post(server: &Server, path: &str) -> crate::support::Response {
    server.connect().post(path, b"")
}

fn write(dir: &Path, path: &str, contents: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

#[test]
fn index_load_unload_and_reload_through_rest() {
    let dir = model_folder(&[
        ("settings.json", r#"{"load_models_at_startup": false}"#),
        ("a/model-settings.json", r#"{"implementation": "linear"}"#),
        ("a/linear.json", &linear(2.0, 0.0)),
        (
            "broken/model-settings.json",
            r#"{"implementation": "linear", "max_batch_size": "two"}"#,
        ),
        ("m/1/model-settings.json", r#"{"implementation": "linear"}"#),
        ("m/1/linear.json", &linear(1.0, 0.0)),
        ("m/2/model-settings.json", r#"{"implementation": "linear"}"#),
        ("m/2/linear.json", &linear(20.0, 0.0)),
    ]);
    let server = Server::start(dir.path());

    // Nothing loaded: everything on disk is listed, as not loaded.
    let all = index(&server, "");
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(
        entry(&all, "a"),
        &json!({"name": "a", "state": "UNAVAILABLE", "reason": "not loaded"})
    );
    assert!(index(&server, r#"{"ready": true}"#).is_empty());
    assert_eq!(infer(&server, "a", 1.0).status, 404);

    assert_eq!(post(&server, "/v2/repository/models/a/load").status, 200);
    assert_eq!(
        infer(&server, "a", 3.0).json()["outputs"][0]["data"],
        json!([6.0])
    );
    assert_eq!(
        index(&server, r#"{"ready": true}"#),
        vec![json!({"name": "a", "state": "READY", "reason": ""})]
    );

    // Versions load together; the highest is the default.
    assert_eq!(post(&server, "/v2/repository/models/m/load").status, 200);
    assert_eq!(
        infer(&server, "m", 1.0).json()["outputs"][0]["data"],
        json!([20.0])
    );
    assert_eq!(entry(&index(&server, ""), "m")["state"], "READY");

    // A broken model is reported with its file and field.
    let response = post(&server, "/v2/repository/models/broken/load");
    assert_eq!(response.status, 400);
    let error = response.error();
    assert!(
        error.contains("model-settings.json") && error.contains("`max_batch_size`"),
        "{error}"
    );
    let broken = entry(&index(&server, ""), "broken").clone();
    assert_eq!(broken["state"], "UNAVAILABLE");
    assert!(
        broken["reason"]
            .as_str()
            .unwrap()
            .contains("`max_batch_size`"),
        "{broken}"
    );

    let response = post(&server, "/v2/repository/models/nope/load");
    assert_eq!(response.status, 404);
    assert!(response.error().contains("'nope' not found"));

    // A changed model is picked up by load.
    write(dir.path(), "a/linear.json", &linear(5.0, 1.0));
    assert_eq!(post(&server, "/v2/repository/models/a/load").status, 200);
    assert_eq!(
        infer(&server, "a", 3.0).json()["outputs"][0]["data"],
        json!([16.0])
    );

    // A reload that fails keeps the previous version serving.
    write(dir.path(), "a/linear.json", "{not json");
    assert_eq!(post(&server, "/v2/repository/models/a/load").status, 400);
    assert_eq!(
        infer(&server, "a", 3.0).json()["outputs"][0]["data"],
        json!([16.0])
    );
    write(dir.path(), "a/linear.json", &linear(5.0, 1.0));

    // A version removed from disk goes away on reload.
    std::fs::remove_dir_all(dir.path().join("m/2")).unwrap();
    assert_eq!(post(&server, "/v2/repository/models/m/load").status, 200);
    assert_eq!(
        infer(&server, "m", 1.0).json()["outputs"][0]["data"],
        json!([1.0])
    );
    assert_eq!(server.get("/v2/models/m/versions/2/ready").status, 404);

    // Unload: refused at once, and listed as unloaded.
    assert_eq!(post(&server, "/v2/repository/models/a/unload").status, 200);
    let response = infer(&server, "a", 3.0);
    assert_eq!(response.status, 404);
    assert!(response.error().contains("unloaded"));
    assert_eq!(server.get("/v2/models/a/ready").status, 404);
    assert_eq!(entry(&index(&server, ""), "a")["reason"], "unloaded");
    assert_eq!(post(&server, "/v2/repository/models/a/unload").status, 404);
    assert_eq!(post(&server, "/v2/repository/models/a/load").status, 200);
    assert_eq!(infer(&server, "a", 3.0).status, 200);

    // A model added while the server runs.
    write(
        dir.path(),
        "c/model-settings.json",
        r#"{"implementation": "linear"}"#,
    );
    write(dir.path(), "c/linear.json", &linear(7.0, 0.0));
    assert_eq!(post(&server, "/v2/repository/models/c/load").status, 200);
    assert_eq!(
        infer(&server, "c", 1.0).json()["outputs"][0]["data"],
        json!([7.0])
    );

    let response = server
        .connect()
        .post("/v2/repository/index", b"{\"ready\": ");
    assert_eq!(response.status, 400);
    response.error();
}

#[test]
fn swapping_one_model_never_costs_another_a_request() {
    let dir = model_folder(&[
        ("a/model-settings.json", r#"{"implementation": "linear"}"#),
        ("a/linear.json", &linear(2.0, 1.0)),
        (
            "b/model-settings.json",
            r#"{"implementation": "linear", "parallel_workers": 2}"#,
        ),
        ("b/linear.json", &linear(3.0, 0.0)),
    ]);
    let server = Server::start(dir.path());
    let load_a = LinearLoad::start(&server, "a", 2, 2.0, 1.0);

    // A client of B: every answer is from a whole model, version 3·x or 4·x, or a clear refusal.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let b_client = {
        let (stop, address) = (stop.clone(), server.address);
        std::thread::spawn(move || {
            let mut connection = Connection::open(address);
            let (mut answered, mut refused) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [10]}]});
                let response = connection.post("/v2/models/b/infer", body.to_string().as_bytes());
                match response.status {
                    200 => {
                        let data = response.json()["outputs"][0]["data"].clone();
                        assert!(
                            data == json!([30.0]) || data == json!([40.0]),
                            "B answered {data}"
                        );
                        answered += 1;
                    }
                    404 | 503 => {
                        response.error();
                        refused += 1;
                    }
                    other => panic!(
                        "B answered {other}: {:?}",
                        String::from_utf8_lossy(&response.body)
                    ),
                }
            }
            (answered, refused)
        })
    };

    for round in 0..12 {
        let slope = if round % 2 == 0 { 4.0 } else { 3.0 };
        write(dir.path(), "b/linear.json", &linear(slope, 0.0));
        assert_eq!(post(&server, "/v2/repository/models/b/load").status, 200);
        if round % 3 == 0 {
            assert_eq!(post(&server, "/v2/repository/models/b/unload").status, 200);
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(post(&server, "/v2/repository/models/b/load").status, 200);
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (answered, refused) = b_client.join().unwrap();
    let (good, bad) = load_a.finish();
    assert_eq!(
        bad, 0,
        "model A failed {bad} requests while B was swapped ({good} succeeded)"
    );
    assert!(
        good > 0 && answered > 0,
        "A {good}, B answered {answered}, refused {refused}"
    );
}

#[test]
fn a_restart_loads_compiled_components_from_the_cache() {
    let dir = model_folder(&[
        ("a/model-settings.json", r#"{"implementation": "linear"}"#),
        ("a/linear.json", &linear(2.0, 0.0)),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("compiled");
    let env = [("MLHOST_COMPILATION_CACHE_DIR", cache_dir.to_str().unwrap())];
    let first = Server::start_with(dir.path(), &[], &env);
    assert!(
        first
            .logs()
            .iter()
            .any(|line| line.contains("compiled component"))
    );
    drop(first);
    let mut entry: Vec<String> = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|file| file.unwrap().file_name().to_string_lossy().into_owned())
        .map(|name| name.rsplit_once('.').unwrap().1.to_string())
        .collect();
    entry.sort();
    assert_eq!(
        entry,
        ["cwasm", "lock", "sha256"],
        "one entry: the artifact, its checksum and the lock its compilation held"
    );

    let second = Server::start_with(dir.path(), &[], &env);
    assert!(
        second
            .logs()
            .iter()
            .any(|line| line.contains("loaded compiled component from the cache")),
        "{:?}",
        second.logs()
    );
    assert_eq!(
        infer(&second, "a", 2.0).json()["outputs"][0]["data"],
        json!([4.0])
    );
}

#[test]
fn on_a_first_start_small_runtimes_compile_before_a_large_one() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("compiled");
    let env = [("MLHOST_COMPILATION_CACHE_DIR", cache_dir.to_str().unwrap())];
    let server = Server::spawn(&crate::support::example_models(), &[], &env);
    // Each compilation's time, from its model's load asking for it to its end (waited for
    // generously: compiling the ONNX runtime on a loaded machine takes a minute).
    let elapsed = |runtime: &str| -> u64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            let logs = server.logs();
            if let Some(line) = logs
                .iter()
                .find(|line| line.contains("compiled component") && line.contains(runtime))
            {
                let field = line.split("elapsed_ms=").nth(1).unwrap();
                return field.split_whitespace().next().unwrap().parse().unwrap();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no compilation of {runtime}: {logs:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let (linear, onnx) = (elapsed("'linear'"), elapsed("'onnx'"));
    assert!(
        linear * 3 < onnx,
        "the small runtime took {linear} ms, the large one {onnx} ms: it waited for it"
    );
}
