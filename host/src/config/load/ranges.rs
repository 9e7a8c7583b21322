//! The ranges of the numeric settings, checked where the files are read: a value of the right
//! type but outside its range is an error naming the file and the field (docs/configuration.md
//! lists the ranges).

use super::super::{ModelSettings, Settings};

/// The most worker threads (model instances) per model.
const MAX_PARALLEL_WORKERS: usize = 1024;
/// The largest adaptive batch, in rows.
const MAX_BATCH_SIZE: usize = 65_536;
/// The longest wait for a batch to fill, in seconds.
const MAX_BATCH_TIME: f64 = 10.0;
/// The most requests a model's queue may hold.
const MAX_QUEUE_SIZE: usize = 1 << 20;
/// The most priority levels a model may have.
const MAX_PRIORITY_LEVELS: usize = 16;
/// The longest timeout, in seconds (a year).
const MAX_TIMEOUT_SECONDS: f64 = 365.0 * 24.0 * 3600.0;
/// The most linear memory per instance, in MiB (4 TiB).
const MAX_MEMORY_LIMIT_MB: u64 = 1 << 22;
/// The most output per call, in MiB (1 TiB).
const MAX_OUTPUT_MB: u64 = 1 << 20;
/// The largest budget of requests in flight, in MiB (1 TiB).
const MAX_BUFFERED_MB: u64 = 1 << 20;
/// The most elements per tensor (2⁴⁰).
const MAX_TENSOR_ELEMENTS: u64 = 1 << 40;
/// The most guest log per call, in KiB (1 GiB).
const MAX_GUEST_LOG_KB: u64 = 1 << 20;
/// The most slots of the instance pool.
const MAX_INSTANCE_POOL_SIZE: u32 = 4096;
/// The largest gRPC message (2 GiB, gRPC's own bound).
const MAX_GRPC_MESSAGE_LENGTH: u64 = (1 << 31) - 1;
/// The largest component file, in MiB (16 GiB).
const MAX_COMPONENT_SIZE_MB: u64 = 1 << 14;

/// The most one model may download from object storage, in MiB (16 TiB).
const MAX_MODEL_DOWNLOAD_MB: u64 = 1 << 24;

/// The most answers the response cache may hold.
const MAX_CACHE_SIZE: usize = 1 << 24;
/// The most output data the response cache may hold, in MiB (1 TiB).
const MAX_CACHE_MB: u64 = 1 << 20;

/// A field outside its range: the field and what is wrong.
pub(super) type RangeError = (&'static str, String);

/// `value` within `min..=max`, else the error for `field`.
fn within<T: PartialOrd + std::fmt::Display>(
    field: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<(), RangeError> {
    if value < min || value > max {
        Err((field, format!("{value} is not between {min} and {max}")))
    } else {
        Ok(())
    }
}

/// A duration in seconds: positive, finite and at most `max`.
fn seconds(field: &'static str, value: f64, max: f64) -> Result<(), RangeError> {
    if value.is_nan() || value <= 0.0 {
        Err((field, format!("{value} must be positive (seconds)")))
    } else if value > max {
        Err((field, format!("{value} is over the most allowed, {max}")))
    } else {
        Ok(())
    }
}

/// Checks the ranges of the server's numeric settings.
pub(super) fn check_settings(settings: &Settings) -> Result<(), RangeError> {
    within(
        "parallel_workers",
        settings.parallel_workers,
        0,
        MAX_PARALLEL_WORKERS,
    )?;
    seconds(
        "timeout_seconds",
        settings.timeout_seconds,
        MAX_TIMEOUT_SECONDS,
    )?;
    within(
        "memory_limit_mb",
        settings.memory_limit_mb,
        1,
        MAX_MEMORY_LIMIT_MB,
    )?;
    within("max_output_mb", settings.max_output_mb, 1, MAX_OUTPUT_MB)?;
    if !(0.0..=1.0).contains(&settings.tracing_sample_ratio) {
        return Err((
            "tracing_sample_ratio",
            format!("{} is not between 0 and 1", settings.tracing_sample_ratio),
        ));
    }
    within(
        "max_request_body_mb",
        settings.max_request_body_mb,
        1,
        1 << 20,
    )?;
    if let Some(buffered) = settings.max_buffered_mb {
        within("max_buffered_mb", buffered, 1, MAX_BUFFERED_MB)?;
    }
    within(
        "max_tensor_elements",
        settings.max_tensor_elements,
        1,
        MAX_TENSOR_ELEMENTS,
    )?;
    within(
        "guest_log_limit_kb",
        settings.guest_log_limit_kb,
        0,
        MAX_GUEST_LOG_KB,
    )?;
    within("max_queue_size", settings.max_queue_size, 1, MAX_QUEUE_SIZE)?;
    // Short calls must end well within an inline call's budget (5-10 ms).
    within("inline_call_max_us", settings.inline_call_max_us, 1, 5_000)?;
    within(
        "instance_pool_size",
        settings.instance_pool_size,
        0,
        MAX_INSTANCE_POOL_SIZE,
    )?;
    within(
        "max_component_size_mb",
        settings.max_component_size_mb,
        1,
        MAX_COMPONENT_SIZE_MB,
    )?;
    within(
        "max_model_download_mb",
        settings.max_model_download_mb,
        1,
        MAX_MODEL_DOWNLOAD_MB,
    )?;
    within("cache_size", settings.cache_size, 0, MAX_CACHE_SIZE)?;
    within("max_cache_mb", settings.max_cache_mb, 1, MAX_CACHE_MB)?;
    if let Some(length) = settings.grpc_max_message_length {
        within(
            "grpc_max_message_length",
            length,
            1,
            MAX_GRPC_MESSAGE_LENGTH,
        )?;
    }
    Ok(())
}

/// Checks the ranges of a model's numeric settings (those bounded by the server's are checked
/// against them when the model loads).
pub(super) fn check_model_settings(settings: &ModelSettings) -> Result<(), RangeError> {
    if let Some(workers) = settings.parallel_workers {
        within("parallel_workers", workers, 0, MAX_PARALLEL_WORKERS)?;
    }
    within("max_batch_size", settings.max_batch_size, 0, MAX_BATCH_SIZE)?;
    let batch_time = settings.max_batch_time;
    if !(0.0..=MAX_BATCH_TIME).contains(&batch_time) {
        return Err((
            "max_batch_time",
            format!("{batch_time} is not between 0 and {MAX_BATCH_TIME} (seconds)"),
        ));
    }
    if let Some(timeout) = settings.timeout_seconds {
        seconds("timeout_seconds", timeout, MAX_TIMEOUT_SECONDS)?;
    }
    if let Some(memory) = settings.memory_limit_mb {
        within("memory_limit_mb", memory, 1, MAX_MEMORY_LIMIT_MB)?;
    }
    if let Some(output) = settings.max_output_mb {
        within("max_output_mb", output, 1, MAX_OUTPUT_MB)?;
    }
    if let Some(queue) = settings.max_queue_size {
        within("max_queue_size", queue, 1, MAX_QUEUE_SIZE)?;
    }
    if let Some(threads) = settings.intra_op_threads {
        within("intra_op_threads", threads, 1, 256)?;
    }
    check_priorities(settings)
}

/// Priority levels: a bounded number, a default among them, a queue size for each.
fn check_priorities(settings: &ModelSettings) -> Result<(), RangeError> {
    let levels = settings.priority_levels;
    within("priority_levels", levels, 0, MAX_PRIORITY_LEVELS)?;
    within(
        "default_priority_level",
        settings.default_priority_level,
        0,
        levels.max(1),
    )?;
    let sizes = &settings.priority_queue_sizes;
    if !sizes.is_empty() && sizes.len() != levels.max(1) {
        return Err((
            "priority_queue_sizes",
            format!(
                "{} sizes for {} priority levels",
                sizes.len(),
                levels.max(1)
            ),
        ));
    }
    for size in sizes {
        within("priority_queue_sizes", *size, 1, MAX_QUEUE_SIZE)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(json: &str) -> Result<(), RangeError> {
        check_model_settings(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn model_values_out_of_range_name_the_field_and_say_why() {
        let (field, message) = model(r#"{"parallel_workers": 100000}"#).unwrap_err();
        assert_eq!(field, "parallel_workers");
        assert!(message.contains("between 0 and 1024"), "{message}");
        let (field, message) = model(r#"{"timeout_seconds": -1}"#).unwrap_err();
        assert_eq!(field, "timeout_seconds");
        assert!(message.contains("must be positive"), "{message}");
        let (field, _) = model(r#"{"max_batch_size": 18446744073709551615}"#).unwrap_err();
        assert_eq!(field, "max_batch_size");
        let (field, _) = model(r#"{"max_batch_time": 1e308}"#).unwrap_err();
        assert_eq!(field, "max_batch_time");
        let (field, _) = model(r#"{"max_batch_time": -0.5}"#).unwrap_err();
        assert_eq!(field, "max_batch_time");
        for (json, field) in [
            (r#"{"memory_limit_mb": 0}"#, "memory_limit_mb"),
            (r#"{"max_output_mb": 0}"#, "max_output_mb"),
            (r#"{"max_queue_size": 0}"#, "max_queue_size"),
            (r#"{"intra_op_threads": 0}"#, "intra_op_threads"),
        ] {
            assert_eq!(model(json).unwrap_err().0, field, "{json}");
        }
        model(r#"{"parallel_workers": 4, "max_batch_size": 64, "max_batch_time": 0.5}"#).unwrap();
    }

    #[test]
    fn server_values_out_of_range_name_the_field() {
        for (field, settings) in [
            (
                "parallel_workers",
                Settings {
                    parallel_workers: 100_000,
                    ..Settings::default()
                },
            ),
            (
                "instance_pool_size",
                Settings {
                    instance_pool_size: 1_000_000,
                    ..Settings::default()
                },
            ),
            (
                "max_queue_size",
                Settings {
                    max_queue_size: 0,
                    ..Settings::default()
                },
            ),
            (
                "grpc_max_message_length",
                Settings {
                    grpc_max_message_length: Some(0),
                    ..Settings::default()
                },
            ),
            (
                "timeout_seconds",
                Settings {
                    timeout_seconds: -1.0,
                    ..Settings::default()
                },
            ),
            (
                "max_model_download_mb",
                Settings {
                    max_model_download_mb: 0,
                    ..Settings::default()
                },
            ),
        ] {
            assert_eq!(check_settings(&settings).unwrap_err().0, field);
        }
        check_settings(&Settings::default()).unwrap();
    }
}
