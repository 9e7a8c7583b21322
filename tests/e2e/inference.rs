//! Inference results checked against values computed independently of the runtime.

use crate::support::{Server, example_models, model_folder};
use serde_json::{Value, json};

/// The iris example's coefficients, read from its file.
struct Logistic {
    coefficients: Vec<Vec<f64>>,
    intercepts: Vec<f64>,
}

impl Logistic {
    fn example() -> Logistic {
        let text = std::fs::read_to_string(example_models().join("iris/linear.json")).unwrap();
        let file: Value = serde_json::from_str(&text).unwrap();
        let matrix = |value: &Value| -> Vec<f64> {
            value
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        Logistic {
            coefficients: file["coefficients"]
                .as_array()
                .unwrap()
                .iter()
                .map(matrix)
                .collect(),
            intercepts: matrix(&file["intercepts"]),
        }
    }

    /// Softmax of the scores, written out plainly.
    fn probabilities(&self, row: &[f64]) -> Vec<f64> {
        let scores: Vec<f64> = self
            .coefficients
            .iter()
            .zip(&self.intercepts)
            .map(|(weights, b)| weights.iter().zip(row).map(|(w, x)| w * x).sum::<f64>() + b)
            .collect();
        let max = scores.iter().cloned().fold(f64::MIN, f64::max);
        let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f64 = exps.iter().sum();
        exps.iter().map(|e| e / total).collect()
    }
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn logistic_regression_gives_the_probabilities_computed_by_hand() {
    let server = Server::start(&example_models());
    let rows = [
        [5.1, 3.5, 1.4, 0.2],
        [5.9, 3.0, 4.2, 1.5],
        [6.7, 3.0, 5.2, 2.3],
    ];
    let response = server.post_json(
        "/v2/models/iris/infer",
        &json!({
            "id": "request-7",
            "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [3, 4], "data": rows}],
            "outputs": [{"name": "predict_proba"}, {"name": "predict"}]
        }),
    );
    assert_eq!(response.status, 200);
    let json = response.json();
    assert_eq!(json["id"], "request-7");
    let proba = &json["outputs"][0];
    assert_eq!(proba["name"], "predict_proba");
    assert_eq!(proba["datatype"], "FP64");
    assert_eq!(proba["shape"], json!([3, 3]));
    let model = Logistic::example();
    let expected: Vec<f64> = rows
        .iter()
        .flat_map(|row| model.probabilities(row))
        .collect();
    let actual = floats(&proba["data"]);
    assert_eq!(actual.len(), 9);
    for (a, e) in actual.iter().zip(&expected) {
        assert!((a - e).abs() < 1e-12, "{actual:?} != {expected:?}");
    }
    // The three flowers are one of each species.
    assert_eq!(
        json["outputs"][1],
        json!({"name": "predict", "datatype": "INT64", "shape": [3], "data": [0, 1, 2],
               "parameters": {"content_type": "np"}})
    );
}

#[test]
fn linear_regression_matches_hand_arithmetic() {
    let server = Server::start(&example_models());
    // 150·1 + 12.5·2 − 0.75·4 + 20 = 192 and 150·0.5 + 12.5·0 − 0.75·(−8) + 20 = 101.
    let response = server.post_json(
        "/v2/models/house-prices/infer",
        &json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 3], "data": [[1, 2, 4], [0.5, 0, -8]]}]}),
    );
    assert_eq!(response.status, 200, "{:?}", response.json());
    assert_eq!(
        response.json(),
        json!({
            "model_name": "house-prices",
            "outputs": [{"name": "predict", "datatype": "FP64", "shape": [2, 1], "data": [192.0, 101.0],
                         "parameters": {"content_type": "np"}}]
        })
    );
}

#[test]
fn flat_and_nested_data_and_any_numeric_datatype_agree() {
    let server = Server::start(&example_models());
    let mut answers = Vec::new();
    for (datatype, data) in [
        ("FP32", json!([5, 3, 1, 0, 7, 3, 5, 2])),
        ("FP64", json!([[5, 3, 1, 0], [7, 3, 5, 2]])),
        ("INT32", json!([[5, 3, 1, 0], [7, 3, 5, 2]])),
        ("UINT8", json!([5, 3, 1, 0, 7, 3, 5, 2])),
        ("FP16", json!([5, 3, 1, 0, 7, 3, 5, 2])),
    ] {
        let response = server.post_json(
            "/v2/models/iris/infer",
            &json!({
                "inputs": [{"name": "input-0", "datatype": datatype, "shape": [2, 4], "data": data}],
                "outputs": [{"name": "predict_proba"}]
            }),
        );
        assert_eq!(response.status, 200, "{datatype}: {:?}", response.json());
        answers.push(response.json()["outputs"].clone());
    }
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "{answers:?}"
    );
}

#[test]
fn many_concurrent_requests_each_get_their_own_answer() {
    let server = Server::start_with(&example_models(), &["--parallel-workers", "2"], &[]);
    let address = server.address;
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            std::thread::spawn(move || {
                let mut connection = crate::support::Connection::open(address);
                for i in 0..25 {
                    let x = (thread * 25 + i) as f64;
                    let body = json!({
                        "id": format!("{thread}-{i}"),
                        "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3], "data": [x, 0, 0]}]
                    });
                    let response = connection.post("/v2/models/house-prices/infer", body.to_string().as_bytes());
                    assert_eq!(response.status, 200);
                    let json = response.json();
                    assert_eq!(json["id"], format!("{thread}-{i}"));
                    assert_eq!(json["outputs"][0]["data"], json!([150.0 * x + 20.0]));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn fp64_values_come_back_bit_exact_through_rest_json() {
    // y = 1·x + 0: the answer is the input, so any change is the JSON codec's. The values are
    // Python's repr of doubles (0.1 + 0.2, the smallest normal, the largest, the smallest
    // subnormal, and full-precision values a parser without correct rounding reads one ULP off).
    let dir = model_folder(&[
        (
            "identity/model-settings.json",
            r#"{"implementation": "linear"}"#,
        ),
        (
            "identity/linear.json",
            r#"{"kind": "linear", "coefficients": [[1.0]], "intercepts": [0.0], "input_name": "x"}"#,
        ),
    ]);
    let server = Server::start(dir.path());
    let texts = [
        "0.30000000000000004",
        "2.2250738585072014e-308",
        "1.7976931348623157e308",
        "5e-324",
        "1.9912786788935177",
        "243.98422522574026",
        "0.0009067979265841685",
        "946.0527003294959",
    ];
    let body = format!(
        r#"{{"inputs": [{{"name": "x", "datatype": "FP64", "shape": [{}, 1], "data": [{}]}}]}}"#,
        texts.len(),
        texts.join(", ")
    );
    let response = server
        .connect()
        .post("/v2/models/identity/infer", body.as_bytes());
    assert_eq!(response.status, 200, "{:?}", response.json());
    let output = &response.json()["outputs"][0];
    assert_eq!(output["shape"], json!([texts.len(), 1]));
    for (text, value) in texts.iter().zip(floats(&output["data"])) {
        let nearest: f64 = text.parse().unwrap();
        assert_eq!(
            value.to_bits(),
            nearest.to_bits(),
            "{text} came back as {value:?}"
        );
    }
}
