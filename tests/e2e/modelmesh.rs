//! ModelMesh's model-runtime SPI (`mmesh.ModelRuntime`), driven as ModelMesh drives it, through a
//! client generated from kserve/modelmesh's model-runtime.proto: status, load, inference routed
//! by `mm-model-id`, sizes, unload; cancelled and concurrent loads.

use crate::support::{Server, example_models, linear_component, model_folder};
use mlhost::pb;
use mlhost_proto::mmesh::model_runtime_client::ModelRuntimeClient;
use mlhost_proto::mmesh::runtime_status_response::Status as RuntimeState;
use mlhost_proto::mmesh::{
    LoadModelRequest, ModelSizeRequest, PredictModelSizeRequest, RuntimeStatusRequest,
    RuntimeStatusResponse, UnloadModelRequest,
};
use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use std::path::Path;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::Channel;

/// Starts a server with the SPI on a port of its own (and `env` besides), not waiting for it to
/// be ready; its SPI client.
async fn start(models: &Path, env: &[(&str, &str)]) -> (Server, ModelRuntimeClient<Channel>) {
    let mut env = env.to_vec();
    env.push(("MLHOST_MODELMESH_PORT", "0"));
    let server = Server::spawn(models, &[], &env);
    let ports: serde_json::Value =
        serde_json::from_slice(&std::fs::read(server.port_file()).unwrap()).unwrap();
    let port = ports["modelmesh"]
        .as_u64()
        .expect("the port file names the SPI's port");
    let client = ModelRuntimeClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect("connect to the SPI");
    (server, client)
}

/// Asks `runtimeStatus` until READY (every earlier answer is STARTING and carries nothing else).
async fn wait_ready(client: &mut ModelRuntimeClient<Channel>) -> RuntimeStatusResponse {
    let deadline = Instant::now() + crate::support::READY_TIMEOUT;
    loop {
        let status = client
            .runtime_status(RuntimeStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if status.status == RuntimeState::Ready as i32 {
            return status;
        }
        assert_eq!(status.status, RuntimeState::Starting as i32);
        assert_eq!(status.capacity_in_bytes, 0);
        assert!(Instant::now() < deadline, "the runtime never became READY");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A load as ModelMesh Serving sends it: `modelType` a placement label, the type (when given)
/// in `modelKey`'s `model_type`.
fn load(id: &str, model_type: &str, path: &Path) -> LoadModelRequest {
    let key = if model_type.is_empty() {
        serde_json::json!({"storage_key": "local"})
    } else {
        serde_json::json!({"model_type": {"name": model_type}, "storage_key": "local"})
    };
    LoadModelRequest {
        model_id: id.into(),
        model_type: "rt:mlhost-modelmesh".into(),
        model_path: path.to_str().unwrap().into(),
        model_key: key.to_string(),
    }
}

/// An iris request (model `name` in the message), with `mm-model-id` when `mesh_id` is given.
fn iris_request(name: &str, mesh_id: Option<&str>) -> tonic::Request<pb::ModelInferRequest> {
    let mut request = tonic::Request::new(pb::ModelInferRequest {
        model_name: name.into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "input-0".into(),
            datatype: "FP32".into(),
            shape: vec![1, 4],
            contents: Some(pb::InferTensorContents {
                fp32_contents: vec![5.1, 3.5, 1.4, 0.2],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    });
    if let Some(id) = mesh_id {
        request
            .metadata_mut()
            .insert("mm-model-id", id.parse().unwrap());
    }
    request
}

async fn infer_client(server: &Server) -> GrpcInferenceServiceClient<Channel> {
    GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_address))
        .await
        .unwrap()
}

async fn size_of(client: &mut ModelRuntimeClient<Channel>, id: &str) -> Result<u64, Code> {
    client
        .model_size(ModelSizeRequest {
            model_id: id.into(),
        })
        .await
        .map(|size| size.into_inner().size_in_bytes)
        .map_err(|status| status.code())
}

async fn unload(client: &mut ModelRuntimeClient<Channel>, id: &str) {
    client
        .unload_model(UnloadModelRequest {
            model_id: id.into(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn load_infer_by_mm_model_id_size_and_unload() {
    let empty = tempfile::tempdir().unwrap();
    let (server, mut mesh) = start(empty.path(), &[("MLHOST_MODELMESH_CAPACITY_MB", "300")]).await;
    let status = wait_ready(&mut mesh).await;
    assert_eq!(status.capacity_in_bytes, 300 << 20);
    assert_eq!(status.max_loading_concurrency, 2);
    assert_eq!(status.model_loading_timeout_ms, 90_000);
    assert_eq!(status.default_model_size_in_bytes, 16 << 20);
    assert!(status.runtime_version.starts_with("mlhost "), "{status:?}");
    let infer = &status.method_infos["inference.GRPCInferenceService/ModelInfer"];
    assert_eq!(infer.id_injection_path, vec![1]);

    // A folder with its model-settings.json (which names the model "iris").
    let iris = example_models().join("iris");
    let predicted = mesh
        .predict_model_size(PredictModelSizeRequest {
            model_id: "iris-mm".into(),
            model_path: iris.to_str().unwrap().into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .size_in_bytes;
    let loaded = mesh.load_model(load("iris-mm", "", &iris)).await.unwrap();
    let size = loaded.into_inner().size_in_bytes;
    assert!(size >= 2 << 20, "{size}");
    assert_eq!(predicted, size);
    assert_eq!(size_of(&mut mesh, "iris-mm").await, Ok(size));

    // ModelMesh's forwarded call: mm-model-id names the model, whatever model_name says.
    let mut grpc = infer_client(&server).await;
    let answer = grpc
        .model_infer(iris_request("elsewhere", Some("iris-mm")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.model_name, "iris-mm");
    assert_eq!(answer.outputs[0].name, "predict");
    // The id injected into model_name (idInjectionPath [1]) works as well.
    grpc.model_infer(iris_request("iris-mm", None))
        .await
        .unwrap();
    // An id that is not ASCII comes in mm-model-id-bin.
    mesh.load_model(load("iris-módelo", "", &iris))
        .await
        .unwrap();
    let mut request = iris_request("elsewhere", None);
    request.metadata_mut().insert_bin(
        "mm-model-id-bin",
        tonic::metadata::MetadataValue::from_bytes("iris-módelo".as_bytes()),
    );
    let answer = grpc.model_infer(request).await.unwrap().into_inner();
    assert_eq!(answer.model_name, "iris-módelo");
    unload(&mut mesh, "iris-módelo").await;

    unload(&mut mesh, "iris-mm").await;
    unload(&mut mesh, "iris-mm").await;
    unload(&mut mesh, "never-loaded").await;
    let error = grpc
        .model_infer(iris_request("x", Some("iris-mm")))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound, "{error:?}");
    assert_eq!(size_of(&mut mesh, "iris-mm").await, Err(Code::NotFound));
    let index = server.post_json("/v2/repository/index", &serde_json::json!({}));
    assert_eq!(index.json(), serde_json::json!([]));
    server.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn files_types_refusals_and_the_purge_before_ready() {
    let empty = tempfile::tempdir().unwrap();
    let (server, mut mesh) = start(empty.path(), &[]).await;
    wait_ready(&mut mesh).await;
    // A model file without model-settings.json: the runtime from the model type.
    let folder = model_folder(&[]);
    let file = folder.path().join("coefficients.json");
    std::fs::copy(example_models().join("iris/linear.json"), &file).unwrap();
    // The type in ModelMesh's label only (an InferenceService without `runtime`).
    let mut by_label = load("by-file", "", &file);
    by_label.model_type = "mt:linear:1|pv:grpc-v2".into();
    mesh.load_model(by_label).await.unwrap();
    let mut grpc = infer_client(&server).await;
    grpc.model_infer(iris_request("by-file", None))
        .await
        .unwrap();

    // Refused before any load: nothing is left of them.
    let refusals = [
        load("typed", "sklearn", &file),
        load("missing", "linear", Path::new("/no/such/model")),
        load("", "linear", &file),
    ];
    for request in refusals {
        let error = mesh.load_model(request).await.unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    }
    // A load that fails (a file the runtime cannot read) leaves nothing either.
    let broken = folder.path().join("broken.json");
    std::fs::write(&broken, "not json").unwrap();
    let error = mesh
        .load_model(load("broken", "linear", &broken))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Internal, "{error:?}");
    let index = server.post_json("/v2/repository/index", &serde_json::json!({}));
    let names: Vec<serde_json::Value> = index
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["name"].clone())
        .collect();
    assert_eq!(names, vec![serde_json::json!("by-file")]);

    // ModelMesh restarted: runtimeStatus unloads what it had loaded before answering READY.
    wait_ready(&mut mesh).await;
    assert_eq!(size_of(&mut mesh, "by-file").await, Err(Code::NotFound));
    let error = grpc
        .model_infer(iris_request("by-file", None))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    server.terminate();
}

/// Whether the server logs a line holding `text` within a few seconds (its log is read by a
/// thread of the test's, a little after the server writes it).
async fn logged(server: &Server, text: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if server.logs().iter().any(|line| line.contains(text)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Copies of the hostile test runtime's folder, `count` of them, each a `wasm` model.
fn component_models(count: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let component = linear_component().with_file_name("mlhost_test_hostile.wasm");
    for index in 0..count {
        let folder = dir.path().join(format!("m{index}"));
        std::fs::create_dir(&folder).unwrap();
        std::fs::copy(&component, folder.join("hostile.wasm")).unwrap();
    }
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_load_leaves_nothing_behind() {
    let empty = tempfile::tempdir().unwrap();
    // A compilation cache of its own: the component compiles, so the load takes a while.
    let cache = tempfile::tempdir().unwrap();
    let (server, mut mesh) = start(
        empty.path(),
        &[(
            "MLHOST_COMPILATION_CACHE_DIR",
            cache.path().to_str().unwrap(),
        )],
    )
    .await;
    wait_ready(&mut mesh).await;
    let models = component_models(1);
    let mut request = tonic::Request::new(load("cancelled", "wasm", &models.path().join("m0")));
    request.set_timeout(Duration::from_millis(50));
    let error = mesh.load_model(request).await.unwrap_err();
    assert!(
        matches!(error.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{error:?}"
    );
    // As ModelMesh does: unload at once. It returns once the load has ended and is undone.
    unload(&mut mesh, "cancelled").await;
    assert!(
        logged(&server, "the load's caller went away").await,
        "the load was not cancelled mid-way: {:?}",
        server.logs()
    );
    assert_eq!(size_of(&mut mesh, "cancelled").await, Err(Code::NotFound));
    let index = server.post_json("/v2/repository/index", &serde_json::json!({}));
    assert_eq!(index.json(), serde_json::json!([]));
    server.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_loads_stay_within_the_bound() {
    let empty = tempfile::tempdir().unwrap();
    let (server, mut mesh) = start(
        empty.path(),
        &[("MLHOST_MODELMESH_MAX_LOADING_CONCURRENCY", "1")],
    )
    .await;
    assert_eq!(wait_ready(&mut mesh).await.max_loading_concurrency, 1);
    let models = component_models(4);
    let mut loads = tokio::task::JoinSet::new();
    for index in 0..4 {
        let mut mesh = mesh.clone();
        let path = models.path().join(format!("m{index}"));
        loads.spawn(async move {
            mesh.load_model(load(&format!("c{index}"), "wasm", &path))
                .await
                .map(|answer| answer.into_inner().size_in_bytes)
        });
    }
    let mut total = 0;
    while let Some(loaded) = loads.join_next().await {
        total += loaded.unwrap().unwrap();
    }
    // Each size counted once; their sum is what ModelMesh holds against the capacity.
    let mut sizes = 0;
    for index in 0..4 {
        sizes += size_of(&mut mesh, &format!("c{index}")).await.unwrap();
    }
    assert_eq!(sizes, total);
    // One load at a time: each start is followed by its end before the next start.
    let finished = |server: &Server| {
        server
            .logs()
            .iter()
            .filter(|line| line.contains("modelmesh: load finished"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while finished(&server) < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut running = 0;
    for line in server.logs() {
        if line.contains("modelmesh: loading model") {
            running += 1;
            assert_eq!(running, 1, "two loads at once: {:?}", server.logs());
        } else if line.contains("modelmesh: load finished") {
            running -= 1;
        }
    }
    assert_eq!(running, 0);
    server.terminate();
}
