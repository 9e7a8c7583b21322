//! The connection settings of both ports (timeouts, connection and HTTP/2 limits, the shutdown's
//! grace period): their ranges, and their values as durations.

use super::Settings;
use std::time::Duration;

/// The longest timeout or period, in seconds (a day).
const MAX_SECONDS: f64 = 24.0 * 3600.0;
/// The largest HTTP/2 flow-control window (2³¹ − 1, HTTP/2's own bound).
const MAX_WINDOW: u32 = (1 << 31) - 1;
/// The smallest HTTP/2 flow-control window (HTTP/2's initial one).
const MIN_WINDOW: u32 = 65_535;

/// A field outside its range: the field and what is wrong.
type RangeError = (&'static str, String);

/// Checks the connection settings' ranges.
pub(super) fn check(settings: &Settings) -> Result<(), RangeError> {
    for (field, value) in [
        (
            "header_read_timeout_seconds",
            settings.header_read_timeout_seconds,
        ),
        (
            "keep_alive_timeout_seconds",
            settings.keep_alive_timeout_seconds,
        ),
        (
            "body_read_timeout_seconds",
            settings.body_read_timeout_seconds,
        ),
        ("send_timeout_seconds", settings.send_timeout_seconds),
        (
            "grpc_handshake_timeout_seconds",
            settings.grpc_handshake_timeout_seconds,
        ),
        (
            "grpc_idle_timeout_seconds",
            settings.grpc_idle_timeout_seconds,
        ),
        (
            "grpc_keepalive_interval_seconds",
            settings.grpc_keepalive_interval_seconds,
        ),
        (
            "grpc_keepalive_timeout_seconds",
            settings.grpc_keepalive_timeout_seconds,
        ),
        (
            "shutdown_grace_period_seconds",
            settings.shutdown_grace_period_seconds,
        ),
    ] {
        if !(value > 0.0 && value <= MAX_SECONDS) {
            return Err((field, format!("{value} is not between 0 and {MAX_SECONDS}")));
        }
    }
    within("max_connections", settings.max_connections, 1, 1 << 20)?;
    within(
        "grpc_max_concurrent_streams",
        settings.grpc_max_concurrent_streams,
        1,
        1 << 16,
    )?;
    within(
        "grpc_stream_window_bytes",
        settings.grpc_stream_window_bytes,
        MIN_WINDOW,
        MAX_WINDOW,
    )?;
    within(
        "grpc_connection_window_bytes",
        settings.grpc_connection_window_bytes,
        MIN_WINDOW,
        MAX_WINDOW,
    )?;
    within(
        "grpc_max_header_list_bytes",
        settings.grpc_max_header_list_bytes,
        1024,
        16 << 20,
    )
}

/// `value` within `min..=max`, else the error for `field`.
fn within(field: &'static str, value: u32, min: u32, max: u32) -> Result<(), RangeError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err((field, format!("{value} is not between {min} and {max}")))
    }
}

/// A checked number of seconds as a duration (a value [`check`] refused gives the longest).
pub(crate) fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::from_secs_f64(MAX_SECONDS))
}
