//! Series made when first used: a handle that knows its family and labels, creates its series
//! in the family the first time it is bumped, and keeps it (later bumps touch only atomics).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::OnceLock;

/// Makes a series in its family.
type Make<T> = Box<dyn Fn() -> T + Send + Sync>;

/// A counter whose series appears in its family when first incremented.
pub(crate) struct LazyCounter {
    series: OnceLock<Counter>,
    make: Make<Counter>,
}

impl LazyCounter {
    /// A counter made by `make` (the family's `get_or_create`) on first use.
    pub(super) fn new(make: impl Fn() -> Counter + Send + Sync + 'static) -> Self {
        LazyCounter {
            series: OnceLock::new(),
            make: Box::new(make),
        }
    }

    /// Increments the counter; returns its previous value.
    pub(crate) fn inc(&self) -> u64 {
        self.series.get_or_init(&self.make).inc()
    }
}

impl std::fmt::Debug for LazyCounter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LazyCounter")
            .field("series", &self.series.get())
            .finish()
    }
}

/// A histogram whose series appears in its family when first observed; it may also observe
/// into a second histogram (a family without the model's labels, as MLServer's is).
pub(crate) struct LazyHistogram {
    series: OnceLock<Histogram>,
    make: Make<Histogram>,
    also: Option<Histogram>,
}

impl LazyHistogram {
    /// A histogram made by `make` (the family's `get_or_create`) on first use.
    pub(super) fn new(make: impl Fn() -> Histogram + Send + Sync + 'static) -> Self {
        LazyHistogram {
            series: OnceLock::new(),
            make: Box::new(make),
            also: None,
        }
    }

    /// Also observes every value into `also`.
    pub(super) fn also(mut self, also: Histogram) -> Self {
        self.also = Some(also);
        self
    }

    /// Observes `value`.
    pub(crate) fn observe(&self, value: f64) {
        self.series.get_or_init(&self.make).observe(value);
        if let Some(also) = &self.also {
            also.observe(value);
        }
    }
}

impl std::fmt::Debug for LazyHistogram {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LazyHistogram")
            .field("created", &self.series.get().is_some())
            .finish()
    }
}
