//! Compiled code mapped from the compilation cache, with only what runs kept resident
//! (host/src/wasm/residency.rs): every example still answers, and on Linux the mappings carry
//! the advice.

use crate::support::{Server, example_models};
use serde_json::{Value, json};

/// One request for each example model: its name and a body of one row.
fn example_requests() -> Vec<(&'static str, Value)> {
    let input = |name: &str, datatype: &str, row: Value| {
        let columns = row.as_array().map_or(0, Vec::len);
        json!({"inputs": [{"name": name, "datatype": datatype, "shape": [1, columns], "data": row}]})
    };
    vec![
        (
            "iris",
            input("input-0", "FP64", json!([5.1, 3.5, 1.4, 0.2])),
        ),
        ("onnx-iris", input("X", "FP32", json!([5.1, 3.5, 1.4, 0.2]))),
        (
            "house-prices",
            input("features", "FP32", json!([1.0, 2.0, 4.0])),
        ),
        (
            "xgboost-classifier",
            input("input-0", "FP32", json!([0.1, 0.2, 0.3, 0.4, 0.5])),
        ),
        (
            "lightgbm-classifier",
            input("input-0", "FP64", json!([0.1, 0.2, 0.3, 0.4, 0.5])),
        ),
    ]
}

#[test]
fn every_example_answers_from_compiled_code_mapped_from_the_cache() {
    // The shared compilation cache: the examples' runtimes are mapped from it (compiled first
    // if this is the run's first server to need them, then mapped from the file written).
    let server = Server::start(&example_models());
    for (model, body) in example_requests() {
        let response = server.post_json(&format!("/v2/models/{model}/infer"), &body);
        assert_eq!(response.status, 200, "{model}: {}", response.error());
        let outputs = response.json()["outputs"].as_array().cloned();
        assert!(
            outputs.is_some_and(|outputs| !outputs.is_empty()),
            "{model}: {}",
            response.json()
        );
    }
    #[cfg(target_os = "linux")]
    {
        let advised = advised_cache_files(server.pid());
        assert!(
            advised.len() >= 3,
            "linear, trees and onnx mapped from the cache, read at random: {advised:?}"
        );
    }
}

/// The compilation cache's files mapped by process `pid` with `MADV_RANDOM` advice (the `rr`
/// flag of /proc/PID/smaps) on at least one of their mappings.
#[cfg(target_os = "linux")]
fn advised_cache_files(pid: u32) -> std::collections::BTreeSet<String> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut advised = std::collections::BTreeSet::new();
    let mut mapped: Option<String> = None;
    for line in smaps.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some(file) = mapped.take()
                && flags.split_whitespace().any(|flag| flag == "rr")
            {
                advised.insert(file);
            }
        } else if is_mapping_header(line) {
            // A mapping's first line: its range, ..., then (for a file) the path last.
            mapped = line
                .split_whitespace()
                .last()
                .filter(|path| path.ends_with(".cwasm"))
                .map(str::to_string);
        }
    }
    advised
}

/// Whether a line of /proc/PID/smaps starts a mapping: `START-END PERMS ...`, in hexadecimal.
#[cfg(target_os = "linux")]
fn is_mapping_header(line: &str) -> bool {
    line.split_whitespace()
        .next()
        .and_then(|range| range.split_once('-'))
        .is_some_and(|(start, end)| {
            u64::from_str_radix(start, 16).is_ok() && u64::from_str_radix(end, 16).is_ok()
        })
}
