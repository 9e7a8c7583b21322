//! How long re-creating a model instance takes (what a trap costs), with the pooling allocator
//! and with on-demand allocation, measured in the same run; and one small inference call.
//!
//! Run with `cargo bench --bench instantiate`. Prints figures; asserts nothing.

use mlhost::{
    BUILT_IN_RUNTIMES, CallMode, ComponentSource, DataType, EngineOptions, GuestSettings,
    InferenceRequest, InstanceLimits, ModelContext, ModelInstance, Tensor, WasmEngine,
};
use std::path::Path;
use std::time::{Duration, Instant};

const ROUNDS: u32 = 2000;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let context = linear_model(dir.path());
    let (name, bytes) = BUILT_IN_RUNTIMES[0];
    let component = ComponentSource::BuiltIn { name, bytes };

    println!(
        "re-creating a `{name}` model instance (instantiate + load + metadata), {ROUNDS} rounds"
    );
    let on_demand = recreate(&component, &context, "on-demand allocation", 0);
    let pooling = recreate(&component, &context, "pooling allocator", 64);
    println!(
        "  pooling / on-demand: {:.2}x the time",
        pooling.as_secs_f64() / on_demand.as_secs_f64()
    );
    compile_cold_and_warm(name, &component);
}

/// A small logistic regression in `dir`, for the `linear` runtime.
fn linear_model(dir: &Path) -> ModelContext {
    std::fs::write(
        dir.join("linear.json"),
        r#"{"kind": "logistic", "coefficients": [[1, 2, 3, 4], [4, 3, 2, 1], [0, 1, 0, 1]], "intercepts": [0, 0, 0]}"#,
    )
    .unwrap();
    ModelContext {
        name: "bench".into(),
        host_dir: dir.to_path_buf(),
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
    }
}

/// The mean time to re-create an instance with `pool` instance slots (0: on-demand allocation);
/// with a pool, also times one small predict call.
fn recreate(source: &ComponentSource, context: &ModelContext, label: &str, pool: u32) -> Duration {
    let engine = WasmEngine::new(&EngineOptions {
        instance_pool_size: pool,
        max_memory_bytes: 256 << 20,
        cache_dir: None,
    })
    .unwrap();
    let component = engine.component(source).unwrap();
    for _ in 0..50 {
        drop(ModelInstance::new(&component, context).unwrap());
    }
    let started = Instant::now();
    for _ in 0..ROUNDS {
        drop(ModelInstance::new(&component, context).unwrap());
    }
    let mean = started.elapsed() / ROUNDS;
    println!(
        "  {label:<22} {:>8.1} µs per instance",
        mean.as_secs_f64() * 1e6
    );
    if pool > 0 {
        let (mut instance, _) = ModelInstance::new(&component, context).unwrap();
        let call = predict_time(&mut instance);
        println!(
            "  one 1-row predict call  {:>8.1} µs (pooling engine)",
            call.as_secs_f64() * 1e6
        );
    }
    mean
}

/// The mean time of a 1-row predict call.
fn predict_time(instance: &mut ModelInstance) -> Duration {
    let data: Vec<u8> = [5.1f32, 3.5, 1.4, 0.2]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let request = InferenceRequest {
        inputs: vec![Tensor {
            name: "input-0".into(),
            datatype: DataType::Fp32,
            shape: vec![1, 4],
            data,
            parameters: vec![],
        }],
        ..Default::default()
    };
    let started = Instant::now();
    for _ in 0..ROUNDS {
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
    }
    started.elapsed() / ROUNDS
}

/// A start with a cold compilation cache against one with a warm cache (what a restart pays).
fn compile_cold_and_warm(name: &str, source: &ComponentSource) {
    let cache = tempfile::tempdir().unwrap();
    let start = || {
        let engine = WasmEngine::new(&EngineOptions {
            instance_pool_size: 0,
            max_memory_bytes: 256 << 20,
            cache_dir: Some(cache.path().join("compiled")),
        })
        .unwrap();
        let started = Instant::now();
        engine.component(source).unwrap();
        started.elapsed()
    };
    let cold = start();
    let warm = start();
    println!("getting the `{name}` component ready at start-up");
    println!(
        "  cold cache (compile + store) {:>8.1} ms",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "  warm cache (load)            {:>8.1} ms",
        warm.as_secs_f64() * 1e3
    );
    println!(
        "  warm / cold: {:.3}x the time",
        warm.as_secs_f64() / cold.as_secs_f64()
    );
}
