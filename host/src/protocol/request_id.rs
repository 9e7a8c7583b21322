//! The id that ties every log line of one request together, and that the client gets back.

use axum::http::HeaderMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The header carrying a request's id, in and out.
pub(crate) const HEADER: &str = "x-request-id";

/// The longest client-given id kept; a longer (or non-printable) one is replaced.
const MAX_LENGTH: usize = 128;

/// The request's id: the client's `x-request-id` when it gives a sensible one, else a new one.
pub(crate) fn of(headers: &HeaderMap) -> String {
    headers
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty() && id.len() <= MAX_LENGTH && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_string)
        .unwrap_or_else(fresh)
}

/// A new id, unique within the process: a per-process start mixed with a counter.
fn fresh() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        now ^ u64::from(std::process::id()).rotate_left(32)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:016x}",
        start.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_sensible_client_id_and_makes_unique_ones() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, "abc-123".parse().unwrap());
        assert_eq!(of(&headers), "abc-123");
        headers.insert(HEADER, "has space".parse().unwrap());
        assert_ne!(of(&headers), "has space");
        let (a, b) = (of(&HeaderMap::new()), of(&HeaderMap::new()));
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
    }
}
