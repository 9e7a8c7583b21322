//! `grpc.health.v1.Health` and server reflection (v1 and v1alpha) on the gRPC port, through
//! tonic's clients of those services, as Kubernetes' probes, grpc-health-probe and grpcurl call
//! them.

use crate::support::{Server, model_folder};
use mlhost::pb;
use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use prost::Message;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_reflection::pb::{v1, v1alpha};

const LINEAR: &str =
    r#"{"kind": "linear", "coefficients": [[2.0]], "intercepts": [0.0], "input_name": "x"}"#;

/// A repository with model `a` at version 1.
fn repository() -> tempfile::TempDir {
    model_folder(&[
        (
            "a/model-settings.json",
            r#"{"implementation": "linear", "parameters": {"version": "1"}}"#,
        ),
        ("a/linear.json", LINEAR),
    ])
}

async fn channel(server: &Server) -> Channel {
    Channel::from_shared(format!("http://{}", server.grpc_address))
        .unwrap()
        .connect()
        .await
        .expect("connect over gRPC")
}

async fn check(health: &mut HealthClient<Channel>, service: &str) -> Result<ServingStatus, Code> {
    let request = HealthCheckRequest {
        service: service.into(),
    };
    match health.check(request).await {
        Ok(response) => Ok(response.into_inner().status()),
        Err(status) => Err(status.code()),
    }
}

/// The next status of a Watch stream, within a few seconds.
async fn next(watch: &mut tonic::Streaming<HealthCheckResponse>) -> Option<ServingStatus> {
    tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("a status within 10 s")
        .map(|message| message.unwrap().status())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_check_answers_for_the_server_and_each_model() {
    let dir = repository();
    let server = Server::start(dir.path());
    let mut health = HealthClient::new(channel(&server).await);
    for service in ["", "inference.GRPCInferenceService", "a", "a/1"] {
        assert_eq!(
            check(&mut health, service).await,
            Ok(ServingStatus::Serving),
            "{service:?}"
        );
    }
    // Unknown names (and versions) are NOT_FOUND, as the health protocol says.
    for service in ["nope", "a/2", "grpc.nope.Service"] {
        assert_eq!(
            check(&mut health, service).await,
            Err(Code::NotFound),
            "{service:?}"
        );
    }
    let mut inference = GrpcInferenceServiceClient::new(channel(&server).await);
    inference
        .repository_model_unload(pb::RepositoryModelUnloadRequest {
            model_name: "a".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for service in ["a", "a/1"] {
        assert_eq!(
            check(&mut health, service).await,
            Ok(ServingStatus::NotServing),
            "{service:?}"
        );
    }
    assert_eq!(check(&mut health, "").await, Ok(ServingStatus::Serving));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn health_watch_streams_each_change_until_the_server_stops() {
    let dir = repository();
    let server = Server::start(dir.path());
    let channel = channel(&server).await;
    let mut health = HealthClient::new(channel.clone());
    let mut inference = GrpcInferenceServiceClient::new(channel);
    let watch = |service: &str| {
        let mut health = health.clone();
        let request = HealthCheckRequest {
            service: service.into(),
        };
        async move { health.watch(request).await.unwrap().into_inner() }
    };
    let mut model = watch("a").await;
    let mut server_status = watch("").await;
    let mut later = watch("b").await;
    assert_eq!(next(&mut model).await, Some(ServingStatus::Serving));
    assert_eq!(next(&mut server_status).await, Some(ServingStatus::Serving));
    // Unknown: SERVICE_UNKNOWN, and the call stays open.
    assert_eq!(next(&mut later).await, Some(ServingStatus::ServiceUnknown));

    let unload = pb::RepositoryModelUnloadRequest {
        model_name: "a".into(),
        ..Default::default()
    };
    inference.repository_model_unload(unload).await.unwrap();
    assert_eq!(next(&mut model).await, Some(ServingStatus::NotServing));
    let load = |name: &str| pb::RepositoryModelLoadRequest {
        model_name: name.into(),
        ..Default::default()
    };
    inference.repository_model_load(load("a")).await.unwrap();
    assert_eq!(next(&mut model).await, Some(ServingStatus::Serving));

    // A model that appears on disk and is loaded: its watcher learns it.
    std::fs::create_dir(dir.path().join("b")).unwrap();
    std::fs::write(dir.path().join("b/linear.json"), LINEAR).unwrap();
    std::fs::write(
        dir.path().join("b/model-settings.json"),
        r#"{"implementation": "linear"}"#,
    )
    .unwrap();
    inference.repository_model_load(load("b")).await.unwrap();
    // NOT_SERVING while it loads, if the watcher looks then; SERVING once loaded.
    let mut status = next(&mut later).await;
    if status == Some(ServingStatus::NotServing) {
        status = next(&mut later).await;
    }
    assert_eq!(status, Some(ServingStatus::Serving));
    assert_eq!(check(&mut health, "b").await, Ok(ServingStatus::Serving));

    // As the server stops, every watcher learns NOT_SERVING and its stream ends.
    let stopped = tokio::task::spawn_blocking(move || server.terminate());
    for stream in [&mut model, &mut server_status, &mut later] {
        assert_eq!(next(stream).await, Some(ServingStatus::NotServing));
        assert_eq!(next(stream).await, None);
    }
    let status = stopped.await.unwrap().expect("the server stops in time");
    assert!(status.success(), "{status:?}");
}

/// The services reflection v1 lists, and the file that declares `symbol`, decoded.
async fn reflect_v1(
    channel: Channel,
    symbol: &str,
) -> (Vec<String>, prost_types::FileDescriptorProto) {
    use v1::server_reflection_request::MessageRequest;
    use v1::server_reflection_response::MessageResponse;
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol(symbol.into()),
    ]
    .map(|request| v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    });
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no list of services");
    };
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no file for {symbol}");
    };
    let names = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    let file =
        prost_types::FileDescriptorProto::decode(&files.file_descriptor_proto[0][..]).unwrap();
    (names, file)
}

#[tokio::test(flavor = "multi_thread")]
async fn reflection_lists_and_describes_the_services() {
    let dir = repository();
    let server = Server::start(dir.path());
    let channel = channel(&server).await;

    let (services, file) = reflect_v1(channel.clone(), "inference.GRPCInferenceService").await;
    for service in [
        "inference.GRPCInferenceService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(services.iter().any(|name| name == service), "{services:?}");
    }
    assert_eq!(file.package(), "inference");
    let methods: Vec<&str> = file.service[0].method.iter().map(|m| m.name()).collect();
    for method in [
        "ModelInfer",
        "ModelStreamInfer",
        "ModelReady",
        "SystemSharedMemoryStatus",
    ] {
        assert!(methods.contains(&method), "{methods:?}");
    }
    let (_, health) = reflect_v1(channel.clone(), "grpc.health.v1.Health").await;
    assert_eq!(health.package(), "grpc.health.v1");

    // v1alpha, which older tools (and grpcio-reflection) use: the same answers.
    use v1alpha::server_reflection_request::MessageRequest;
    use v1alpha::server_reflection_response::MessageResponse;
    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "inference.ModelInferRequest".into(),
        )),
    };
    let mut answers = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no file for inference.ModelInferRequest");
    };
    let file =
        prost_types::FileDescriptorProto::decode(&files.file_descriptor_proto[0][..]).unwrap();
    assert!(
        file.message_type
            .iter()
            .any(|m| m.name() == "ModelInferRequest")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reflection_stream_may_pause_between_requests() {
    // Tools keep a reflection stream open and ask as they need: it is not held to the pace of
    // request bodies (here 0.5 s without data), as ModelStreamInfer is not.
    let dir = repository();
    let settings = r#"{"body_read_timeout_seconds": 0.5}"#;
    std::fs::write(dir.path().join("settings.json"), settings).unwrap();
    let server = Server::start(dir.path());
    let mut client =
        v1::server_reflection_client::ServerReflectionClient::new(channel(&server).await);
    let (requests, receiver) = tokio::sync::mpsc::channel(4);
    let list = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    requests.send(list.clone()).await.unwrap();
    let mut answers = client
        .server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    assert!(answers.message().await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    requests.send(list).await.unwrap();
    let later = answers.message().await;
    assert!(matches!(later, Ok(Some(_))), "{later:?}");
}
