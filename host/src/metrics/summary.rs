//! A summary family (count and sum, no quantiles), as the Python client exports MLServer's
//! `model_infer_request_duration`; prometheus-client has no summary type, so this family
//! encodes itself, after the registry's.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One series of a summary: observations and their sum.
#[derive(Debug, Default)]
pub(crate) struct SummarySeries {
    count: AtomicU64,
    /// The sum's `f64` bits.
    sum: AtomicU64,
}

impl SummarySeries {
    /// Observes `value`.
    pub(crate) fn observe(&self, value: f64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }
}

/// A series' label pairs, in order.
type LabelPairs = Vec<(&'static str, String)>;

/// A summary family, its series keyed by their label pairs.
pub(crate) struct SummaryFamily {
    name: &'static str,
    help: &'static str,
    series: Mutex<HashMap<LabelPairs, Arc<SummarySeries>>>,
}

impl SummaryFamily {
    /// An empty family.
    pub(crate) fn new(name: &'static str, help: &'static str) -> Self {
        SummaryFamily {
            name,
            help,
            series: Mutex::new(HashMap::new()),
        }
    }

    /// The series of `labels`, created now if new.
    pub(crate) fn get_or_create(&self, labels: &[(&'static str, String)]) -> Arc<SummarySeries> {
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        series.entry(labels.to_vec()).or_default().clone()
    }

    /// Writes the family (OpenMetrics text; 0.0.4 writes summaries the same way).
    pub(crate) fn encode(&self, text: &mut String) {
        let series = self
            .series
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        // As the registry does with its families, none is written while it has no series.
        if series.is_empty() {
            return;
        }
        let _ = writeln!(text, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(text, "# TYPE {} summary", self.name);
        let mut sorted: Vec<_> = series.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (labels, values) in sorted {
            let labels: Vec<String> = labels
                .iter()
                .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
                .collect();
            let labels = labels.join(",");
            let count = values.count.load(Ordering::Relaxed);
            let sum = f64::from_bits(values.sum.load(Ordering::Relaxed));
            let _ = writeln!(text, "{}_sum{{{labels}}} {sum:?}", self.name);
            let _ = writeln!(text, "{}_count{{{labels}}} {count}", self.name);
        }
    }
}

/// A label value escaped for the exposition.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
