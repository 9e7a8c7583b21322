//! The repository's series: how many model versions are in each state.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the models-by-state gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// The repository's families, registered once.
pub(super) struct RepositoryFamilies {
    models: Family<StateLabels, Gauge>,
}

impl RepositoryFamilies {
    /// Creates the families and registers them in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let models = Family::default();
        registry.register(
            "mlhost_models",
            "Model versions known to the repository, by state",
            models.clone(),
        );
        RepositoryFamilies { models }
    }

    /// Sets the models-by-state gauge from the repository's counts.
    pub(super) fn set_models_by_state(&self, counts: &[(&str, i64)]) {
        for (state, count) in counts {
            self.models
                .get_or_create(&StateLabels {
                    state: state.to_string(),
                })
                .set(*count);
        }
    }
}
