//! The built-in runtimes' own code compiled natively against the same code run as a component
//! (wasm32-wasip2 + simd128, in a wasmtime instance), on batches of 1, 32 and 1024 rows: the
//! ratio is what running a model as WebAssembly costs.
//!
//! Run with `cargo bench --bench runtimes`. Prints figures; asserts nothing.

use mlhost::{
    BUILT_IN_RUNTIMES, CallMode, ComponentSource, DataType, EngineOptions, GuestSettings,
    InferenceRequest, InstanceLimits, ModelContext, ModelInstance, Tensor, WasmEngine,
};
use mlhost_guest::Model;
use std::path::Path;
use std::time::{Duration, Instant};

const BATCHES: [usize; 3] = [1, 32, 1024];

/// One model to measure: a built-in runtime, a folder, and its input's width.
struct Case {
    label: &'static str,
    runtime: &'static str,
    folder: std::path::PathBuf,
    features: usize,
}

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let linear = tempfile::tempdir().unwrap();
    std::fs::write(
        linear.path().join("linear.json"),
        r#"{"kind": "logistic", "coefficients": [[1, 2, 3, 4], [4, 3, 2, 1], [0, 1, 0, 1]], "intercepts": [0, 0, 0]}"#,
    )
    .unwrap();
    let fixtures = workspace.join("runtimes/trees/fixtures");
    let cases = [
        Case {
            label: "linear (logistic, 4 features, 3 classes)",
            runtime: "linear",
            folder: linear.path().to_path_buf(),
            features: 4,
        },
        Case {
            label: "xgboost (multi:softprob, 3 classes)",
            runtime: "trees",
            folder: fixtures.join("xgboost-multiclass"),
            features: 5,
        },
        Case {
            label: "xgboost (reg:squarederror)",
            runtime: "trees",
            folder: fixtures.join("xgboost-regression"),
            features: 5,
        },
        Case {
            label: "lightgbm (regression)",
            runtime: "trees",
            folder: fixtures.join("lightgbm-regression"),
            features: 5,
        },
        Case {
            label: "lightgbm (multiclass, 3 classes)",
            runtime: "trees",
            folder: fixtures.join("lightgbm-multiclass"),
            features: 5,
        },
    ];
    let engine = WasmEngine::new(&EngineOptions {
        instance_pool_size: 8,
        max_memory_bytes: 256 << 20,
        cache_dir: None,
    })
    .unwrap();
    println!("predict time per batch, native vs component (ratio = wasm / native)");
    for case in &cases {
        println!("{}", case.label);
        let mut native = native_model(case);
        let mut instance = component_instance(&engine, case);
        for rows in BATCHES {
            let request = request(rows, case.features);
            let rounds = (20_000 / rows).max(20);
            let native_time = time(rounds, || {
                native(request.clone());
            });
            let wasm_time = time(rounds, || {
                let deadline = Instant::now() + Duration::from_secs(10);
                instance
                    .predict(
                        request.clone(),
                        deadline,
                        Duration::from_secs(10),
                        None,
                        CallMode::Worker,
                        None,
                    )
                    .unwrap();
            });
            println!(
                "  {rows:>5} rows  native {:>9.1} µs   wasm {:>9.1} µs   ratio {:.2}x",
                native_time.as_secs_f64() * 1e6,
                wasm_time.as_secs_f64() * 1e6,
                wasm_time.as_secs_f64() / native_time.as_secs_f64()
            );
        }
    }
}

/// The mean time of `rounds` calls, after a warm-up.
fn time(rounds: usize, mut call: impl FnMut()) -> Duration {
    for _ in 0..rounds / 10 + 1 {
        call();
    }
    let started = Instant::now();
    for _ in 0..rounds {
        call();
    }
    started.elapsed() / rounds as u32
}

/// Rows of `features` FP32 values, the same for both sides.
fn request(rows: usize, features: usize) -> InferenceRequest {
    let data: Vec<u8> = (0..rows * features)
        .map(|index| ((index * 7919 % 1000) as f32 / 250.0) - 2.0)
        .flat_map(f32::to_le_bytes)
        .collect();
    InferenceRequest {
        inputs: vec![Tensor {
            name: "input-0".into(),
            datatype: DataType::Fp32,
            shape: vec![rows as u64, features as u64],
            data,
            parameters: vec![],
        }],
        ..Default::default()
    }
}

/// The runtime's crate called directly, as plain Rust; the request is converted to the SDK's
/// types as the component's bindings would (not timed apart: it is a copy either way).
fn native_model(case: &Case) -> Box<dyn FnMut(InferenceRequest)> {
    let settings = mlhost_guest::ModelSettings {
        name: "bench".into(),
        version: None,
        uri: case.folder.to_string_lossy().into_owned(),
        extra: "{}".into(),
        parameters: vec![],
    };
    fn run<M: Model>(model: M) -> Box<dyn FnMut(InferenceRequest)> {
        Box::new(move |request: InferenceRequest| {
            let request = to_sdk(request);
            std::hint::black_box(model.predict(request).unwrap());
        })
    }
    match case.runtime {
        "linear" => run(mlhost_runtime_linear::Linear::load(settings).unwrap()),
        _ => run(mlhost_runtime_trees::Trees::load(settings).unwrap()),
    }
}

fn to_sdk(request: InferenceRequest) -> mlhost_guest::InferenceRequest {
    mlhost_guest::InferenceRequest {
        id: request.id,
        inputs: request
            .inputs
            .into_iter()
            .map(|tensor| mlhost_guest::Tensor {
                name: tensor.name,
                datatype: mlhost_guest::Datatype::Fp32,
                shape: tensor.shape,
                data: tensor.data,
                parameters: vec![],
            })
            .collect(),
        outputs: vec![],
        parameters: vec![],
    }
}

fn component_instance(engine: &WasmEngine, case: &Case) -> ModelInstance {
    let (name, bytes) = BUILT_IN_RUNTIMES
        .iter()
        .find(|(name, _)| *name == case.runtime)
        .unwrap();
    let component = engine
        .component(&ComponentSource::BuiltIn { name, bytes })
        .unwrap();
    let context = ModelContext {
        name: "bench".into(),
        host_dir: case.folder.clone(),
        settings: GuestSettings {
            name: "bench".into(),
            version: None,
            uri: "/model".into(),
            extra: "{}".into(),
            parameters: vec![],
        },
        limits: InstanceLimits {
            memory_bytes: 256 << 20,
            timeout: Duration::from_secs(10),
            max_output_bytes: 64 << 20,
            log_budget: 64 << 10,
        },
        // The runtimes' own compute, inside the sandbox.
        native: mlhost::NativeOptions {
            choice: mlhost::BackendChoice::Sandboxed,
            ..Default::default()
        },
    };
    ModelInstance::new(&component, &context).unwrap().0
}
