//! The response cache's series: `mlhost_cache_entries`, `mlhost_cache_bytes` and
//! `mlhost_cache_evictions`, server-wide (the hits and misses are per model, in `model`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The response cache's handles (clones share their series).
#[derive(Debug, Clone, Default)]
pub(crate) struct CacheGauges {
    /// Answers held.
    pub entries: Gauge,
    /// Bytes held (output data and each entry's overhead).
    pub bytes: Gauge,
    /// Answers evicted to make room.
    pub evictions: Counter,
}

impl CacheGauges {
    /// Creates the series and registers them in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let gauges = CacheGauges::default();
        registry.register(
            "mlhost_cache_entries",
            "Answers held by the response cache",
            gauges.entries.clone(),
        );
        registry.register(
            "mlhost_cache_bytes",
            "Bytes held by the response cache (output data and each entry's overhead)",
            gauges.bytes.clone(),
        );
        registry.register(
            "mlhost_cache_evictions",
            "Answers the response cache evicted to make room",
            gauges.evictions.clone(),
        );
        gauges
    }
}
