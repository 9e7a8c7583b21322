//! Each class of bad input gets a 4xx `{"error": ...}` and the connection keeps serving.

use crate::support::{Connection, Server, example_models};
use serde_json::json;

fn iris_input(datatype: &str, shape: serde_json::Value, data: serde_json::Value) -> String {
    json!({"inputs": [{"name": "input-0", "datatype": datatype, "shape": shape, "data": data}]})
        .to_string()
}

/// Sends a good request on the same connection and checks it still answers correctly.
fn still_serves(connection: &mut Connection) {
    let response = connection.post(
        "/v2/models/house-prices/infer",
        json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 4]}]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["outputs"][0]["data"], json!([192.0]));
}

#[test]
fn bad_requests_get_a_clear_4xx_and_the_connection_stays_usable() {
    let server = Server::start(&example_models());
    let mut connection = server.connect();
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("malformed JSON", "/v2/models/iris/infer", "{\"inputs\": [".into(), 400, "malformed request body"),
        ("not an object", "/v2/models/iris/infer", "[1, 2]".into(), 400, "malformed request body"),
        ("missing inputs", "/v2/models/iris/infer", "{}".into(), 400, "missing field `inputs`"),
        ("no inputs", "/v2/models/iris/infer", json!({"inputs": []}).to_string(), 400, "no inputs"),
        ("unknown datatype", "/v2/models/iris/infer", iris_input("FLOAT32", json!([1, 4]), json!([1, 2, 3, 4])), 400, "unknown datatype 'FLOAT32'"),
        ("too few elements", "/v2/models/iris/infer", iris_input("FP32", json!([2, 4]), json!([1, 2, 3, 4])), 400, "holds 8 elements but 4"),
        ("too many elements", "/v2/models/iris/infer", iris_input("FP32", json!([1, 4]), json!([1, 2, 3, 4, 5])), 400, "more than the 4 elements"),
        ("out of range", "/v2/models/iris/infer", iris_input("UINT8", json!([1, 4]), json!([1, 2, 3, 300])), 400, "300 is out of range for UINT8"),
        ("not an integer", "/v2/models/iris/infer", iris_input("INT32", json!([1, 4]), json!([1, 2, 3, 4.5])), 400, "expected an integer"),
        ("string for a number", "/v2/models/iris/infer", iris_input("FP32", json!([1, 4]), json!([1, 2, 3, "x"])), 400, "expected a number"),
        ("number for BYTES", "/v2/models/iris/infer", iris_input("BYTES", json!([1]), json!([1])), 400, "expected a string"),
        ("negative dimension", "/v2/models/iris/infer", iris_input("FP32", json!([-1, 4]), json!([1, 2, 3, 4])), 400, "negative dimension"),
        ("overflowing shape", "/v2/models/iris/infer", iris_input("FP32", json!([4294967296u64, 4294967296u64, 16]), json!([1])), 400, "more than the 268435456 elements"),
        ("wrong input name", "/v2/models/iris/infer", json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).to_string(), 400, "unknown input 'x'"),
        ("duplicate input", "/v2/models/iris/infer", json!({"inputs": [
            {"name": "input-0", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
            {"name": "input-0", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).to_string(), 400, "given twice"),
        ("declared datatype", "/v2/models/house-prices/infer", json!({"inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}]}).to_string(), 400, "the model takes FP32"),
        ("declared shape", "/v2/models/house-prices/infer", json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).to_string(), 400, "the model takes [-1, 3]"),
        ("runtime rejects features", "/v2/models/iris/infer", iris_input("FP32", json!([1, 3]), json!([1, 2, 3])), 400, "the model takes 4"),
        ("unknown output", "/v2/models/iris/infer", json!({"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}], "outputs": [{"name": "logits"}]}).to_string(), 400, "unknown output 'logits'"),
        ("nested parameter", "/v2/models/iris/infer", json!({"parameters": {"a": [1]}, "inputs": []}).to_string(), 400, "parameter 'a'"),
        ("unknown model", "/v2/models/nope/infer", iris_input("FP32", json!([1, 4]), json!([1, 2, 3, 4])), 404, "model 'nope' not found"),
        ("unknown version", "/v2/models/iris/versions/9/infer", iris_input("FP32", json!([1, 4]), json!([1, 2, 3, 4])), 404, "no version '9'"),
        ("unversioned model's version", "/v2/models/house-prices/versions/1/infer", "{}".into(), 404, "no version '1'"),
    ];
    for (case, path, body, status, needle) in cases {
        let response = connection.post(path, body.as_bytes());
        assert_eq!(
            response.status,
            status,
            "{case}: {:?}",
            String::from_utf8_lossy(&response.body)
        );
        let error = response.error();
        assert!(error.contains(needle), "{case}: {error:?} lacks {needle:?}");
        still_serves(&mut connection);
    }
}

#[test]
fn unknown_routes_and_methods_answer_json_errors() {
    let server = Server::start(&example_models());
    let mut connection = server.connect();
    let response = connection.request("GET", "/v2/nothing/here", &[], b"");
    assert_eq!(response.status, 404);
    response.error();
    let response = connection.request("GET", "/v2/models/iris/infer", &[], b"");
    assert_eq!(response.status, 405);
    response.error();
    still_serves(&mut connection);
}

#[test]
fn oversized_bodies_get_413_with_a_json_error() {
    let server = Server::start(&example_models());
    let mut connection = server.connect();
    // Announce a 65 MiB body: the server refuses it without waiting for the bytes.
    let head =
        "POST /v2/models/iris/infer HTTP/1.1\r\nHost: mlhost\r\nContent-Length: 68157440\r\n\r\n{";
    let response = connection.raw(head.as_bytes());
    assert_eq!(response.status, 413);
    assert!(
        response.error().contains("over the limit"),
        "{}",
        response.error()
    );
}
