//! What the server says of a model: its metadata, its configuration and its statistics, as
//! Triton's messages.

use crate::codec::grpc::pb;
use crate::codec::{ModelMetadata, TensorMetadata};

/// A model's metadata as the gRPC message.
pub(super) fn encode_metadata(
    name: &str,
    versions: Vec<String>,
    metadata: &ModelMetadata,
) -> pb::ModelMetadataResponse {
    let tensors = |tensors: &[TensorMetadata]| {
        tensors
            .iter()
            .map(|tensor| pb::model_metadata_response::TensorMetadata {
                name: tensor.name.clone(),
                datatype: tensor.datatype.as_str().to_string(),
                shape: tensor.shape.clone(),
            })
            .collect()
    };
    pb::ModelMetadataResponse {
        name: name.to_string(),
        versions,
        platform: metadata.platform.clone(),
        inputs: tensors(&metadata.inputs),
        outputs: tensors(&metadata.outputs),
    }
}

/// A model's configuration as Triton's `ModelConfig` message.
pub(super) fn encode_config(config: crate::protocol::model_config::ModelConfig) -> pb::ModelConfig {
    use crate::protocol::model_config::triton_type_number;
    pb::ModelConfig {
        name: config.name,
        platform: config.platform,
        backend: config.backend,
        max_batch_size: config.max_batch_size,
        input: config
            .input
            .into_iter()
            .map(|tensor| pb::ModelInput {
                name: tensor.name,
                data_type: triton_type_number(tensor.data_type),
                dims: tensor.dims,
            })
            .collect(),
        output: config
            .output
            .into_iter()
            .map(|tensor| pb::ModelOutput {
                name: tensor.name,
                data_type: triton_type_number(tensor.data_type),
                dims: tensor.dims,
            })
            .collect(),
        scheduling_choice: config.dynamic_batching.map(|batching| {
            pb::model_config::SchedulingChoice::DynamicBatching(pb::ModelDynamicBatching {
                preferred_batch_size: batching.preferred_batch_size,
                max_queue_delay_microseconds: batching.max_queue_delay_microseconds,
            })
        }),
    }
}

/// One model version's statistics as Triton's `ModelStatistics` message.
pub(super) fn encode_statistics(
    name: &str,
    version: Option<&str>,
    stats: crate::stats::StatsSnapshot,
) -> pb::ModelStatistics {
    let duration = |measured: crate::stats::Measured| {
        Some(pb::StatisticDuration {
            count: measured.count,
            ns: measured.ns,
        })
    };
    pb::ModelStatistics {
        name: name.to_string(),
        version: version.unwrap_or_default().to_string(),
        last_inference: stats.last_inference,
        inference_count: stats.inference_count,
        execution_count: stats.execution_count,
        inference_stats: Some(pb::InferStatistics {
            success: duration(stats.success),
            fail: duration(stats.fail),
            queue: duration(stats.queue),
            compute_input: duration(stats.compute_input),
            compute_infer: duration(stats.compute_infer),
            compute_output: duration(stats.compute_output),
            cache_hit: duration(stats.cache_hit),
            cache_miss: duration(stats.cache_miss),
        }),
        batch_stats: stats
            .batch_stats
            .into_iter()
            .map(|batch| pb::InferBatchStatistics {
                batch_size: batch.batch_size,
                compute_input: duration(batch.compute_input),
                compute_infer: duration(batch.compute_infer),
                compute_output: duration(batch.compute_output),
            })
            .collect(),
    }
}
