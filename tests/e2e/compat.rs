//! What an MLServer user's tools rely on beyond the protocol: the metrics page's format (text
//! 0.0.4 unless OpenMetrics is asked for) and size, gRPC stream message counts, trailing
//! slashes redirected and CORS answered as Starlette does.

use crate::observability::{repository, samples};
use crate::support::{Connection, Server, example_models};
use mlhost::pb;

fn scrape_accepting(server: &Server, accept: Option<&str>) -> crate::support::Response {
    let headers: Vec<(&str, &str)> = accept
        .map(|accept| ("Accept", accept))
        .into_iter()
        .collect();
    Connection::open(server.metrics_address()).request("GET", "/metrics", &headers, b"")
}

#[test]
fn the_metrics_page_is_prometheus_text_unless_openmetrics_is_asked_for() {
    let server = Server::start(&example_models());
    let body = serde_json::json!({"inputs": [{"name": "features", "datatype": "FP32",
        "shape": [1, 3], "data": [1, 2, 4]}]});
    assert_eq!(
        server
            .post_json("/v2/models/house-prices/infer", &body)
            .status,
        200
    );
    for accept in [None, Some("text/plain"), Some("*/*")] {
        let response = scrape_accepting(&server, accept);
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{accept:?}"
        );
        let text = String::from_utf8(response.body).unwrap();
        assert!(text.contains("# TYPE model_infer_request_success_total counter"));
        let samples = samples(&text);
        assert_eq!(
            samples.get(r#"model_infer_request_success_total{model="house-prices",version=""}"#),
            Some(&1.0)
        );
    }
    // Prometheus' own Accept header asks for OpenMetrics first.
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let response = scrape_accepting(&server, Some(prometheus));
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0")
    );
    let text = String::from_utf8(response.body).unwrap();
    assert!(text.contains("# TYPE model_infer_request_success counter"));
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn an_idle_scrape_of_the_examples_is_small() {
    let server = Server::start(&example_models());
    // Probes and scrapes are not requests a series is made for.
    assert_eq!(server.get("/v2/health/ready").status, 200);
    let response = scrape_accepting(&server, None);
    assert!(
        response.body.len() <= 30 * 1024,
        "{} bytes: {}",
        response.body.len(),
        String::from_utf8_lossy(&response.body)
    );
    let text = String::from_utf8(response.body).unwrap();
    assert!(!text.contains("rest_server_requests_total{"), "{text}");
    assert!(
        !text.contains("model_infer_request_success_total{"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_streams_count_the_messages_each_way() {
    let server = Server::start(&example_models());
    let mut client = pb::grpc_inference_service_client::GrpcInferenceServiceClient::connect(
        format!("http://{}", server.grpc_address),
    )
    .await
    .unwrap();
    let request = pb::ModelInferRequest {
        model_name: "house-prices".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "features".into(),
            datatype: "FP32".into(),
            shape: vec![1, 3],
            contents: Some(pb::InferTensorContents {
                fp32_contents: vec![1.0, 2.0, 4.0],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let requests = tokio_stream::iter(vec![request.clone(), request.clone(), request]);
    let mut responses = client
        .model_stream_infer(requests)
        .await
        .unwrap()
        .into_inner();
    let mut answered = 0;
    while let Some(response) = responses.message().await.unwrap() {
        assert_eq!(response.error_message, "");
        answered += 1;
    }
    assert_eq!(answered, 3);
    let text = String::from_utf8(scrape_accepting(&server, None).body).unwrap();
    let samples = samples(&text);
    let labels = r#"grpc_type="BIDI_STREAMING",grpc_service="inference.GRPCInferenceService",grpc_method="ModelStreamInfer""#;
    assert_eq!(
        samples.get(&format!("grpc_server_msg_received_total{{{labels}}}")),
        Some(&3.0),
        "{text}"
    );
    assert_eq!(
        samples.get(&format!("grpc_server_msg_sent_total{{{labels}}}")),
        Some(&3.0)
    );
}

#[test]
fn a_trailing_slash_redirects_to_the_route_without_it() {
    let server = Server::start(&example_models());
    let redirect = server.get("/v2/health/live/");
    assert_eq!(redirect.status, 307);
    assert_eq!(
        redirect.header("location"),
        Some("http://mlhost/v2/health/live")
    );
    let with_query = server.connect().request(
        "POST",
        "/v2/models/iris/infer/?x=1",
        &[("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(with_query.status, 307);
    assert_eq!(
        with_query.header("location"),
        Some("http://mlhost/v2/models/iris/infer?x=1")
    );
    assert_eq!(server.get("/v2/models/iris/ready//").status, 307);
    // No route without the slash either: not found.
    assert_eq!(server.get("/v2/no/such/").status, 404);
    assert_eq!(server.get("/v2/health/live").status, 200);
}

#[test]
fn a_trailing_slash_under_the_root_path_keeps_the_prefix() {
    let models = crate::support::model_folder(&[("settings.json", r#"{"root_path": "/serving"}"#)]);
    let server = Server::start(models.path());
    let redirect = server.get("/serving/v2/health/ready/");
    assert_eq!(redirect.status, 307);
    assert_eq!(
        redirect.header("location"),
        Some("http://mlhost/serving/v2/health/ready")
    );
    assert_eq!(server.get("/elsewhere/v2/health/ready/").status, 404);
}

#[test]
fn cors_answers_the_origins_the_settings_allow() {
    let settings = r#"{"cors_settings": {"allow_origins": ["https://app.example"],
        "allow_origin_regex": "https://.*\\.trusted\\.example", "allow_methods": ["GET", "POST"],
        "allow_headers": ["content-type"], "max_age": 60}}"#;
    let models = repository(settings);
    let server = Server::start(models.path());
    let preflight = |origin: &str| {
        server.connect().request(
            "OPTIONS",
            "/v2/models/plain/infer",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
            b"",
        )
    };
    let allowed = preflight("https://app.example");
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(
        allowed
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert_eq!(allowed.header("access-control-max-age"), Some("60"));
    let by_regex = preflight("https://eu.trusted.example");
    assert_eq!(
        by_regex.header("access-control-allow-origin"),
        Some("https://eu.trusted.example")
    );
    // A preflight the settings do not allow is 400, saying what (Starlette's CORSMiddleware).
    let refused = preflight("https://evil.example");
    assert_eq!(refused.status, 400);
    assert_eq!(refused.header("access-control-allow-origin"), None);
    assert_eq!(refused.error(), "Disallowed CORS origin");
    let headers = server.connect().request(
        "OPTIONS",
        "/v2/models/plain/infer",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "content-type, x-secret"),
        ],
        b"",
    );
    assert_eq!(headers.status, 400);
    assert_eq!(headers.error(), "Disallowed CORS method, headers");
    let simple = server.connect().request(
        "GET",
        "/v2/health/live",
        &[("Origin", "https://app.example")],
        b"",
    );
    assert_eq!(simple.status, 200);
    assert_eq!(
        simple.header("access-control-allow-origin"),
        Some("https://app.example")
    );

    // Without cors_settings there are no CORS headers.
    let models = repository("{}");
    let server = Server::start(models.path());
    let response = server.connect().request(
        "GET",
        "/v2/health/live",
        &[("Origin", "https://app.example")],
        b"",
    );
    assert_eq!(response.header("access-control-allow-origin"), None);
}
