//! The server's log, and its settings changed at run time (Triton's logging extension).
//!
//! The filter (`logging_settings`, `debug` or `RUST_LOG`) sits in a reload layer: raising
//! `log_verbose_level` adds `mlhost=debug` (1) or `mlhost=trace` (2 and more) to it. `log_info`,
//! `log_warning` and `log_error` turn their level's lines on and off, each a flag the
//! [`Levels`] layer reads; changing one rebuilds tracing's per-callsite interest, so a line
//! turned off costs what a filtered-out line costs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

static INFO: AtomicBool = AtomicBool::new(true);
static WARNING: AtomicBool = AtomicBool::new(true);
static ERROR: AtomicBool = AtomicBool::new(true);

/// Turns lines of a level off when its flag is off.
struct Levels;

fn level_on(level: &Level) -> bool {
    match *level {
        Level::ERROR => ERROR.load(Ordering::Relaxed),
        Level::WARN => WARNING.load(Ordering::Relaxed),
        Level::INFO => INFO.load(Ordering::Relaxed),
        _ => true,
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Levels {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if level_on(metadata.level()) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(
        &self,
        metadata: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        level_on(metadata.level())
    }
}

/// The log's settings as they stand, and how to change its filter.
struct Control {
    filter: reload::Handle<EnvFilter, Registry>,
    /// The filter at start.
    base: String,
    state: Mutex<State>,
}

#[derive(Debug, Clone)]
struct State {
    verbose: u32,
    /// Triton's name of the format: `default` or `ISO8601` (text), or `json`.
    format: String,
}

static CONTROL: OnceLock<Control> = OnceLock::new();

/// Starts the server's log on stderr: `filter` (a `tracing` directive), as JSON lines when
/// `json`, else as text.
pub(crate) fn init(filter: &str, json: bool) {
    let env_filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter_layer, handle) = reload::Layer::new(env_filter);
    // A log that cannot be written (stderr closed: a log collector gone) is dropped; reporting
    // that on the same stderr would panic, and take the server down.
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    let registry = tracing_subscriber::registry()
        .with(filter_layer)
        .with(Levels);
    if json {
        // One JSON object per line; a request's lines carry its span (`request` with its `id`).
        let logs = logs.json().with_current_span(true).with_span_list(false);
        registry.with(logs).init();
    } else {
        let logs = logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        registry.with(logs).init();
    }
    let _ = CONTROL.set(Control {
        filter: handle,
        base: filter.to_string(),
        state: Mutex::new(State {
            verbose: 0,
            format: if json { "json" } else { "default" }.to_string(),
        }),
    });
}

/// A log setting's value, as Triton's extension carries it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    Uint(u32),
    String(String),
}

/// The log settings in Triton's fields.
pub(crate) fn settings() -> Vec<(&'static str, Value)> {
    let state = CONTROL.get().map(|control| {
        control
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    });
    let (verbose, format) = state.map_or((0, "default".to_string()), |state| {
        (state.verbose, state.format)
    });
    vec![
        ("log_file", Value::String(String::new())),
        ("log_info", Value::Bool(INFO.load(Ordering::Relaxed))),
        ("log_warning", Value::Bool(WARNING.load(Ordering::Relaxed))),
        ("log_error", Value::Bool(ERROR.load(Ordering::Relaxed))),
        ("log_verbose_level", Value::Uint(verbose)),
        ("log_format", Value::String(format)),
    ]
}

/// Checks every change first, then applies them all (or none): `(name, None)` leaves a
/// setting as it is (Triton's `null`).
pub(crate) fn update(changes: &[(String, Option<Value>)]) -> Result<(), String> {
    let control = CONTROL
        .get()
        .ok_or_else(|| "the log is not started".to_string())?;
    let mut state = control
        .state
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let mut next = state.clone();
    let mut flags = Vec::new();
    for (name, value) in changes {
        let Some(value) = value else { continue };
        match (name.as_str(), value) {
            ("log_info", Value::Bool(on)) => flags.push((&INFO, *on)),
            ("log_warning", Value::Bool(on)) => flags.push((&WARNING, *on)),
            ("log_error", Value::Bool(on)) => flags.push((&ERROR, *on)),
            ("log_info" | "log_warning" | "log_error", _) => {
                return Err(format!("expect boolean for '{name}'"));
            }
            ("log_verbose_level", Value::Uint(level)) => next.verbose = *level,
            ("log_verbose_level", _) => {
                return Err(format!("expect unsigned integer for '{name}'"));
            }
            ("log_format", Value::String(format)) => next.format = format_change(&state, format)?,
            ("log_format", _) => return Err(format!("expect string for '{name}'")),
            ("log_file", Value::String(file)) if file.is_empty() => {}
            ("log_file", _) => {
                return Err("log_file is not supported: mlhost logs to stderr only".to_string());
            }
            (other, _) => {
                return Err(format!(
                    "unknown log setting '{}'; the settings are log_file, log_info, \
                     log_warning, log_error, log_verbose_level, log_format",
                    crate::codec::quoted(other)
                ));
            }
        }
    }
    if next.verbose != state.verbose {
        let directives = match next.verbose {
            0 => control.base.clone(),
            1 => format!("{},mlhost=debug", control.base),
            _ => format!("{},mlhost=trace", control.base),
        };
        let filter = EnvFilter::try_new(&directives).map_err(|error| error.to_string())?;
        control
            .filter
            .reload(filter)
            .map_err(|error| format!("cannot change the log filter: {error}"))?;
    }
    if !flags.is_empty() {
        for (flag, on) in flags {
            flag.store(on, Ordering::Relaxed);
        }
        tracing::callsite::rebuild_interest_cache();
    }
    *state = next;
    Ok(())
}

/// The format a change asks for: Triton's `default` and `ISO8601` are both mlhost's text
/// (whose timestamps are ISO 8601); text and JSON are chosen at start.
fn format_change(state: &State, format: &str) -> Result<String, String> {
    let json = state.format == "json";
    match format {
        "default" | "ISO8601" if !json => Ok(format.to_string()),
        "json" if json => Ok(format.to_string()),
        "default" | "ISO8601" | "json" => Err(format!(
            "log_format '{format}' is not available at run time: text or JSON is chosen at \
             start (use_structured_logging); this log is {}",
            if json { "json" } else { "text" }
        )),
        other => Err(format!(
            "invalid argument for log_format, got: '{}' (default, ISO8601 or json)",
            crate::codec::quoted(other)
        )),
    }
}
