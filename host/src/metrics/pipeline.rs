//! Pipelines' series, per step: `mlhost_pipeline_step_seconds` (the step's time, its model's
//! queue included) and `mlhost_pipeline_step_failures`, labelled `{pipeline, pipeline_version,
//! step}`. The pipeline's own requests are counted as any model's (`model_infer_request_*`), and
//! each step's call in its model's series too.

use super::lazy::{LazyCounter, LazyHistogram};
use super::{HistogramFamily, seconds_family};
use crate::pipeline::Pipeline;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Labels of the per-step families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    pipeline: String,
    pipeline_version: String,
    step: String,
}

/// The per-step families, registered once.
pub(super) struct StepFamilies {
    seconds: HistogramFamily<StepLabels>,
    failures: Family<StepLabels, Counter>,
}

impl StepFamilies {
    /// Creates the families and registers them in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let families = StepFamilies {
            seconds: seconds_family(),
            failures: Family::default(),
        };
        registry.register(
            "mlhost_pipeline_step_seconds",
            "Time of each step of a pipeline's requests (its model's queue included)",
            families.seconds.clone(),
        );
        registry.register(
            "mlhost_pipeline_step_failures",
            "Requests of a pipeline that failed at a step",
            families.failures.clone(),
        );
        families
    }

    /// The handles of every step of one pipeline version.
    pub(super) fn resolve(
        &self,
        name: &str,
        version: Option<&str>,
        pipeline: &Pipeline,
    ) -> StepMetrics {
        let steps = pipeline.steps.iter().map(|step| {
            let labels = StepLabels {
                pipeline: name.to_string(),
                pipeline_version: version.unwrap_or_default().to_string(),
                step: step.name.clone(),
            };
            let (seconds, failures) = (self.seconds.clone(), self.failures.clone());
            let histogram_labels = labels.clone();
            StepSeries {
                seconds: LazyHistogram::new(move || {
                    seconds.get_or_create(&histogram_labels).clone()
                }),
                failures: LazyCounter::new(move || failures.get_or_create(&labels).clone()),
            }
        });
        StepMetrics {
            steps: steps.collect(),
        }
    }
}

/// One step's series.
#[derive(Debug)]
struct StepSeries {
    seconds: LazyHistogram,
    failures: LazyCounter,
}

/// The series of a pipeline version's steps, by step index.
#[derive(Debug)]
pub(crate) struct StepMetrics {
    steps: Vec<StepSeries>,
}

impl StepMetrics {
    /// Records step `step` as answered after `took`.
    pub(crate) fn succeeded(&self, step: usize, took: Duration) {
        if let Some(series) = self.steps.get(step) {
            series.seconds.observe(took.as_secs_f64());
        }
    }

    /// Records step `step` as failed after `took`.
    pub(crate) fn failed(&self, step: usize, took: Duration) {
        if let Some(series) = self.steps.get(step) {
            series.seconds.observe(took.as_secs_f64());
            series.failures.inc();
        }
    }
}
