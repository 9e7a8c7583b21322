//! Which requests are traced: the trace settings (Triton's trace extension mapped onto
//! OpenTelemetry), server-wide and per model, changed at run time, and the decision for each
//! request.
//!
//! `trace_level` `TIMESTAMPS` traces, `OFF` does not; `trace_rate` N traces one request in N
//! (the settings' `tracing_sample_ratio` is 1/N); `trace_count` is how many traces are left to
//! take (-1: no end). A request that carries a W3C `traceparent` follows its parent's sampled
//! flag instead of the rate (OpenTelemetry's parent-based sampling).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// One set of trace settings; a model's may leave any of them to the server's.
#[derive(Debug, Default)]
struct Rules {
    /// Whether requests are traced (`TIMESTAMPS`) or not (`OFF`).
    on: Option<bool>,
    /// One request in `rate` is traced.
    rate: Option<f64>,
    /// Traces left to take (-1: no end); counted down as traces are taken.
    count: Option<Arc<AtomicI64>>,
    /// Requests seen, for the rate.
    seen: AtomicU64,
}

impl Rules {
    /// Whether this request is the one in `rate` to trace.
    fn take_rate(&self, rate: f64) -> bool {
        let seen = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        // One in `rate`, spread evenly (exactly every Nth for a whole N).
        ((seen + 1.0) / rate).floor() > (seen / rate).floor()
    }
}

/// Takes one trace from `count` (-1: no end); false when none is left.
fn take_count(count: Option<&Arc<AtomicI64>>) -> bool {
    let Some(count) = count else { return true };
    count
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| match left {
            0 => None,
            left if left < 0 => Some(left),
            left => Some(left - 1),
        })
        .is_ok()
}

/// A change of settings, as Triton's extension sends it: `None` leaves a setting as it is,
/// `Some(None)` clears it (a model's falls back to the server's, the server's to its value at
/// start).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Update {
    pub on: Option<Option<bool>>,
    pub rate: Option<Option<f64>>,
    pub count: Option<Option<i64>>,
}

/// The settings in force for the server or a model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Effective {
    pub on: bool,
    pub rate: f64,
    pub count: i64,
}

#[derive(Debug)]
struct State {
    server: Arc<Rules>,
    models: HashMap<String, Arc<Rules>>,
}

/// The server's and the models' trace settings.
#[derive(Debug)]
pub(crate) struct Sampling {
    state: RwLock<State>,
    /// The server's settings at start (what clearing one restores).
    initial: Effective,
    /// Whether any setting traces: checked first for each request (an atomic load).
    any_on: AtomicBool,
    /// Whether a model has settings of its own.
    per_model: AtomicBool,
}

impl Sampling {
    /// Settings that trace (when `ratio` > 0) one request in 1/`ratio`.
    pub(crate) fn new(ratio: f64) -> Self {
        let on = ratio > 0.0;
        let initial = Effective {
            on,
            rate: if on { (1.0 / ratio).max(1.0) } else { 1.0 },
            count: -1,
        };
        let server = Rules {
            on: Some(initial.on),
            rate: Some(initial.rate),
            count: Some(Arc::new(AtomicI64::new(-1))),
            seen: AtomicU64::new(0),
        };
        Sampling {
            state: RwLock::new(State {
                server: Arc::new(server),
                models: HashMap::new(),
            }),
            initial,
            any_on: on.into(),
            per_model: false.into(),
        }
    }

    /// Whether some request may be traced at all.
    pub(crate) fn any_on(&self) -> bool {
        self.any_on.load(Ordering::Relaxed)
    }

    /// Whether some model has settings of its own (then a request's model must be known
    /// before deciding).
    pub(crate) fn per_model(&self) -> bool {
        self.per_model.load(Ordering::Relaxed)
    }

    /// The server's rules and `model`'s own, if it has any.
    fn rules(&self, model: Option<&str>) -> (Arc<Rules>, Option<Arc<Rules>>) {
        let state = self
            .state
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        let own = model.and_then(|model| state.models.get(model).cloned());
        (state.server.clone(), own)
    }

    /// Whether to trace a request to `model` whose parent (from `traceparent`) is
    /// `parent_sampled`; takes one from the count when it does.
    pub(crate) fn decide(&self, model: Option<&str>, parent_sampled: Option<bool>) -> bool {
        let (server, own) = self.rules(model);
        let own = own.as_deref();
        if own.and_then(|rules| rules.on).or(server.on) != Some(true) {
            return false;
        }
        let traced = match parent_sampled {
            Some(sampled) => sampled,
            None => match own.and_then(|rules| rules.rate.map(|rate| (rules, rate))) {
                Some((rules, rate)) => rules.take_rate(rate),
                None => server.take_rate(server.rate.unwrap_or(1.0)),
            },
        };
        traced
            && take_count(
                own.and_then(|rules| rules.count.as_ref())
                    .or(server.count.as_ref()),
            )
    }

    /// The settings in force for `model` (the server's for `None`).
    pub(crate) fn effective(&self, model: Option<&str>) -> Effective {
        let (server, own) = self.rules(model);
        let own = own.as_deref();
        Effective {
            on: own.and_then(|rules| rules.on).or(server.on) == Some(true),
            rate: own
                .and_then(|rules| rules.rate)
                .or(server.rate)
                .unwrap_or(1.0),
            count: own
                .and_then(|rules| rules.count.as_ref())
                .or(server.count.as_ref())
                .map_or(-1, |count| count.load(Ordering::Relaxed)),
        }
    }

    /// Applies `update` to the server's settings (`None`) or to `model`'s.
    pub(crate) fn update(&self, model: Option<&str>, update: &Update) {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let current = match model {
            None => Some(state.server.clone()),
            Some(model) => state.models.get(model).cloned(),
        };
        let current = current.as_deref();
        let mut rules = Rules {
            on: pick(update.on, current.and_then(|rules| rules.on)),
            rate: pick(update.rate, current.and_then(|rules| rules.rate)),
            count: match update.count {
                None => current.and_then(|rules| rules.count.clone()),
                Some(None) => None,
                Some(Some(count)) => Some(Arc::new(AtomicI64::new(count))),
            },
            seen: AtomicU64::new(0),
        };
        match model {
            None => {
                // The server's settings are never unset: cleared, they are as at start.
                rules.on = rules.on.or(Some(self.initial.on));
                rules.rate = rules.rate.or(Some(self.initial.rate));
                rules.count = rules
                    .count
                    .or_else(|| Some(Arc::new(AtomicI64::new(self.initial.count))));
                state.server = Arc::new(rules);
            }
            Some(model) => {
                state.models.insert(model.to_string(), Arc::new(rules));
            }
        }
        let any = state.server.on == Some(true)
            || state.models.values().any(|rules| rules.on == Some(true));
        self.any_on.store(any, Ordering::Relaxed);
        self.per_model
            .store(!state.models.is_empty(), Ordering::Relaxed);
    }
}

/// The new value: the update's (`Some(None)` clears it), or the current one.
fn pick<T: Copy>(update: Option<Option<T>>, current: Option<T>) -> Option<T> {
    match update {
        None => current,
        Some(value) => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_of_n_traces_every_nth_request() {
        let sampling = Sampling::new(0.25);
        let traced: Vec<bool> = (0..8).map(|_| sampling.decide(None, None)).collect();
        assert_eq!(traced.iter().filter(|traced| **traced).count(), 2);
        assert_eq!(sampling.effective(None).rate, 4.0);
    }

    #[test]
    fn a_parent_decides_and_the_count_runs_out() {
        let sampling = Sampling::new(0.0);
        assert!(!sampling.any_on());
        assert!(!sampling.decide(None, Some(true)));
        let on = Update {
            on: Some(Some(true)),
            count: Some(Some(2)),
            ..Update::default()
        };
        sampling.update(None, &on);
        assert!(sampling.any_on());
        assert!(!sampling.decide(None, Some(false)));
        assert!(sampling.decide(None, Some(true)));
        assert!(sampling.decide(None, None));
        assert!(!sampling.decide(None, None), "the count is spent");
        assert_eq!(sampling.effective(None).count, 0);
    }

    #[test]
    fn a_model_s_own_settings_fall_back_to_the_server_s() {
        let sampling = Sampling::new(1.0);
        let off = Update {
            on: Some(Some(false)),
            ..Update::default()
        };
        sampling.update(Some("m"), &off);
        assert!(!sampling.decide(Some("m"), None));
        assert!(sampling.decide(Some("other"), None));
        let cleared = Update {
            on: Some(None),
            ..Update::default()
        };
        sampling.update(Some("m"), &cleared);
        assert!(sampling.decide(Some("m"), None));
        sampling.update(
            None,
            &Update {
                rate: Some(Some(3.0)),
                ..Update::default()
            },
        );
        assert_eq!(sampling.effective(Some("m")).rate, 3.0);
        sampling.update(
            None,
            &Update {
                rate: Some(None),
                ..Update::default()
            },
        );
        assert_eq!(sampling.effective(None).rate, 1.0);
    }
}
