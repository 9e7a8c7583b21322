//! The registry's exposition: MLServer's names and labels, series made on first use.

use super::*;

#[test]
fn series_use_mlservers_names_and_appear_when_first_used() {
    let mut metrics = Metrics::new("rest_server");
    metrics.resolve_rest_routes([("POST", "/v2/models/{model}/infer")]);
    let model = metrics.model("iris", Some("1"));
    let idle = metrics.encode(Format::Text);
    assert!(!idle.contains("model=\"iris\""), "{idle}");
    assert!(!idle.contains("rest_server_requests_total{"), "{idle}");
    assert!(!idle.contains("model_infer_request_duration"), "{idle}");
    model.success.inc();
    model.success.inc();
    model.duration.observe(0.5);
    model.queue_seconds.observe(0.001);
    let route = metrics.rest_started("POST", "/v2/models/{model}/infer");
    metrics.rest_finished(route, 200, Duration::from_millis(2));
    metrics.set_models_by_state(&[("READY", 1)]);
    let text = metrics.encode(Format::Text);
    for expected in [
        "# TYPE model_infer_request_success_total counter",
        r#"model_infer_request_success_total{model="iris",version="1"} 2"#,
        "# TYPE model_infer_request_duration summary",
        r#"model_infer_request_duration_count{model="iris",version="1"} 1"#,
        r#"rest_server_requests_total{method="POST",path="/v2/models/{model_name}/infer",status_code="200",app_name="mlserver"} 1"#,
        r#"rest_server_requests_in_progress{method="POST",app_name="mlserver"} 0"#,
        "# TYPE rest_server_request_duration_seconds histogram",
        r#"mlhost_models{state="READY"} 1"#,
        "mlhost_model_queue_seconds_count{",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert!(!text.contains("# EOF"));
    let openmetrics = metrics.encode(Format::OpenMetrics);
    assert!(openmetrics.contains("# TYPE model_infer_request_success counter"));
    assert!(openmetrics.ends_with("# EOF\n"));
}

#[test]
fn rest_paths_are_labelled_without_the_root_path() {
    let mut metrics = Metrics::new("rest_server");
    let prefixed = "/serving/v2/models/{model}/versions/{version}/infer";
    metrics.resolve_rest_routes([("POST", prefixed), ("GET", "/serving/v2")]);
    let route = metrics.rest_started("POST", prefixed);
    metrics.rest_finished(route, 200, Duration::from_millis(1));
    let route = metrics.rest_started("GET", "/serving/v2");
    metrics.rest_finished(route, 200, Duration::from_millis(1));
    let text = metrics.encode(Format::Text);
    assert!(
        text.contains(r#"path="/v2/models/{model_name}/versions/{model_version}/infer""#),
        "{text}"
    );
    assert!(text.contains(r#"path="/v2","#), "{text}");
    assert!(!text.contains("/serving"), "{text}");
}
