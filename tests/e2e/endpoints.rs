//! Every REST endpoint of the protocol's core, against the example models.

use crate::support::{Server, example_models};
use serde_json::json;

#[test]
fn health_endpoints_answer_200_with_kserves_bodies() {
    let server = Server::start(&example_models());
    for (path, body) in [
        ("/v2/health/live", json!({"live": true})),
        ("/v2/health/ready", json!({"ready": true})),
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.json(), body, "{path}");
    }
}

#[test]
fn server_metadata_names_the_server() {
    let server = Server::start(&example_models());
    let response = server.get("/v2");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.json(),
        json!({"name": "mlhost", "version": env!("CARGO_PKG_VERSION"),
               "extensions": ["model_repository", "binary_tensor_data", "statistics", "model_configuration",
                              "schedule_policy", "parameters", "trace", "logging"]})
    );
}

#[test]
fn model_metadata_comes_from_the_runtime_or_the_settings() {
    let server = Server::start(&example_models());
    let expected_iris = json!({
        "name": "iris",
        "versions": ["1"],
        "platform": "linear",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}
        ]
    });
    assert_eq!(server.get("/v2/models/iris").json(), expected_iris);
    assert_eq!(
        server.get("/v2/models/iris/versions/1").json(),
        expected_iris
    );

    // house-prices declares its inputs and outputs in model-settings.json: they win.
    let metadata = server.get("/v2/models/house-prices").json();
    assert_eq!(
        metadata["inputs"],
        json!([{"name": "features", "datatype": "FP32", "shape": [-1, 3]}])
    );
    assert_eq!(
        metadata["outputs"],
        json!([{"name": "predict", "datatype": "FP64", "shape": [-1, 1]}])
    );
    assert_eq!(metadata["versions"], json!([]));
}

#[test]
fn model_readiness_by_name_and_version() {
    let server = Server::start(&example_models());
    for path in [
        "/v2/models/iris/ready",
        "/v2/models/iris/versions/1/ready",
        "/v2/models/house-prices/ready",
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 200, "{path}");
        let name = path.split('/').nth(3).unwrap();
        assert_eq!(
            response.json(),
            json!({"name": name, "ready": true}),
            "{path}"
        );
    }
    let response = server.get("/v2/models/iris/versions/2/ready");
    assert_eq!(response.status, 404);
    assert!(response.error().contains("no version '2'"));
    let response = server.get("/v2/models/nope/ready");
    assert_eq!(response.status, 404);
    assert!(response.error().contains("'nope' not found"));
}

#[test]
fn infer_by_name_and_by_version() {
    let server = Server::start(&example_models());
    let body = json!({"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]});
    for path in ["/v2/models/iris/infer", "/v2/models/iris/versions/1/infer"] {
        let response = server.post_json(path, &body);
        assert_eq!(response.status, 200, "{path}: {:?}", response.json());
        let json = response.json();
        assert_eq!(json["model_name"], "iris");
        assert_eq!(json["model_version"], "1");
        assert_eq!(json["outputs"][0]["name"], "predict");
        assert_eq!(json["outputs"][0]["data"], json!([0]));
    }
}

#[test]
fn root_path_prefixes_every_route() {
    let server = Server::start_with(&example_models(), &[], &[("MLHOST_ROOT_PATH", "/serving")]);
    assert_eq!(server.get("/serving/v2/health/live").status, 200);
    assert_eq!(server.get("/serving/v2/models/iris").json()["name"], "iris");
    assert_eq!(
        server.get("/v2/health/live").status,
        200,
        "also without the prefix"
    );
    assert_eq!(server.get("/elsewhere/v2/health/live").status, 404);
}
