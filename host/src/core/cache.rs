//! The response cache (MLServer's `cache_enabled` / `cache_size`): answers of models that ask
//! for it, kept in one server-wide LRU bounded by entries (`cache_size`) and by output bytes
//! (`max_cache_mb`).
//!
//! An answer is found by a SHA-256 of everything that can change it: the model's name, version
//! and load generation (a reload is a new generation: it never answers from its predecessor's
//! entries), the inputs (names, datatypes, shapes, parameters, data), the requested outputs
//! with their parameters, the request's parameters but a valid `timeout`, and the headers a runtime
//! may read, but the transport's own. The request's `id` is not part of it: a hit answers with
//! the asking request's id.

use super::infer::Reply;
use crate::codec::{InferenceRequest, ParameterValue, Parameters, TIMEOUT_PARAMETER, Tensor};
use crate::metrics::CacheGauges;
use crate::repository::LoadedModel;
use crate::workers::headers::Headers;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Input bytes above which a request's key is computed on a blocking thread (as large bodies
/// are decoded: nothing on the async threads walks a whole large body).
pub(super) const OFFLOAD_BYTES: usize = 256 << 10;

/// What an entry costs besides its output data: its key, its place in both maps, the reply's
/// own fields.
const ENTRY_OVERHEAD: usize = 256;

/// Headers that describe the transport or the client, not the question: left out of the key.
const TRANSPORT_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "date",
    "expect",
    "host",
    "inference-header-content-length",
    "keep-alive",
    "te",
    "traceparent",
    "tracestate",
    "transfer-encoding",
    "user-agent",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-request-id",
];

/// Prefixes of headers left out of the key (gRPC's own metadata).
const TRANSPORT_PREFIXES: &[&str] = &["grpc-", ":"];

/// The key of one answer: a SHA-256 of the request as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key of `request` to `model` with the request's `headers`.
    pub(crate) fn of(model: &LoadedModel, request: &InferenceRequest, headers: &Headers) -> Self {
        let version = model.version.as_deref();
        CacheKey::from_parts(model.generation, &model.name, version, request, headers)
    }

    /// The key of `request` to the load `generation` of model `name` at `version`.
    pub(crate) fn from_parts(
        generation: u64,
        name: &str,
        version: Option<&str>,
        request: &InferenceRequest,
        headers: &Headers,
    ) -> Self {
        let mut hasher = KeyHasher(Sha256::new());
        hasher.bytes(b"mlhost response cache 1");
        hasher.u64(generation);
        hasher.text(name);
        hasher.option(version);
        hasher.u64(request.inputs.len() as u64);
        for input in &request.inputs {
            hasher.tensor(input);
        }
        hasher.u64(request.outputs.len() as u64);
        for output in &request.outputs {
            hasher.text(&output.name);
            hasher.parameters(&output.parameters);
        }
        let parameters: Parameters = request
            .parameters
            .iter()
            .filter(|(name, value)| name != TIMEOUT_PARAMETER || !is_valid_timeout(value))
            .cloned()
            .collect();
        hasher.parameters(&parameters);
        let mut asked: Vec<(String, &str)> = headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.as_str()))
            .filter(|(name, _)| !is_transport_header(name))
            .collect();
        asked.sort();
        hasher.u64(asked.len() as u64);
        for (name, value) in asked {
            hasher.text(&name);
            hasher.text(value);
        }
        CacheKey(hasher.0.finalize().into())
    }
}

/// Whether `timeout` is one the request's checks accept (a positive number of microseconds):
/// only such a timeout is left out of the key, so that an invalid one is never answered from
/// the cache but refused as it would be.
fn is_valid_timeout(value: &ParameterValue) -> bool {
    matches!(value, ParameterValue::Int64(micros) if *micros > 0)
        || matches!(value, ParameterValue::Uint64(micros) if *micros > 0)
}

/// Whether a header belongs to the transport rather than to the question.
fn is_transport_header(name: &str) -> bool {
    TRANSPORT_HEADERS.contains(&name)
        || TRANSPORT_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// Feeds values into a SHA-256, each length-prefixed so that no two requests feed the same
/// bytes.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn bytes(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn u64(&mut self, value: u64) {
        self.0.update(value.to_le_bytes());
    }

    fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    fn option(&mut self, text: Option<&str>) {
        match text {
            Some(text) => {
                self.u64(1);
                self.text(text);
            }
            None => self.u64(0),
        }
    }

    fn tensor(&mut self, tensor: &Tensor) {
        self.text(&tensor.name);
        self.text(tensor.datatype.as_str());
        self.u64(tensor.shape.len() as u64);
        for dimension in &tensor.shape {
            self.u64(*dimension);
        }
        self.parameters(&tensor.parameters);
        self.bytes(&tensor.data);
    }

    fn parameters(&mut self, parameters: &Parameters) {
        self.u64(parameters.len() as u64);
        for (name, value) in parameters {
            self.text(name);
            match value {
                ParameterValue::Bool(value) => {
                    self.u64(1);
                    self.u64(u64::from(*value));
                }
                ParameterValue::Int64(value) => {
                    self.u64(2);
                    self.bytes(&value.to_le_bytes());
                }
                ParameterValue::Uint64(value) => {
                    self.u64(3);
                    self.u64(*value);
                }
                ParameterValue::Double(value) => {
                    self.u64(4);
                    self.u64(value.to_bits());
                }
                ParameterValue::String(value) => {
                    self.u64(5);
                    self.text(value);
                }
            }
        }
    }
}

/// The server's response cache.
pub(crate) struct ResponseCache {
    max_entries: usize,
    max_bytes: usize,
    lru: Mutex<Lru>,
    gauges: CacheGauges,
}

/// The entries and their order of use.
#[derive(Default)]
struct Lru {
    entries: HashMap<CacheKey, Entry>,
    /// Keys by their last use, oldest first.
    order: BTreeMap<u64, CacheKey>,
    tick: u64,
    bytes: usize,
}

struct Entry {
    reply: Arc<Reply>,
    used: u64,
    bytes: usize,
}

impl ResponseCache {
    /// A cache of at most `max_entries` answers and `max_bytes` bytes, reporting to `gauges`.
    pub(crate) fn new(max_entries: usize, max_bytes: usize, gauges: CacheGauges) -> Self {
        ResponseCache {
            max_entries,
            max_bytes,
            lru: Mutex::default(),
            gauges,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// The answer stored under `key`, now the most recently used.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<Arc<Reply>> {
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        let entry = lru.entries.get_mut(key)?;
        let previous = std::mem::replace(&mut entry.used, tick);
        let reply = entry.reply.clone();
        lru.order.remove(&previous);
        lru.order.insert(tick, *key);
        Some(reply)
    }

    /// Stores `reply` under `key`, evicting the least recently used answers past the bounds.
    /// An answer larger than the whole cache is not stored.
    pub(crate) fn insert(&self, key: CacheKey, reply: Reply) {
        let bytes = size_of_reply(&reply);
        if self.max_entries == 0 || bytes > self.max_bytes {
            return;
        }
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        let entry = Entry {
            reply: Arc::new(reply),
            used: tick,
            bytes,
        };
        if let Some(old) = lru.entries.insert(key, entry) {
            lru.order.remove(&old.used);
            lru.bytes -= old.bytes;
        }
        lru.order.insert(tick, key);
        lru.bytes += bytes;
        while lru.entries.len() > self.max_entries || lru.bytes > self.max_bytes {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some(evicted) = lru.entries.remove(&oldest) {
                lru.bytes -= evicted.bytes;
                self.gauges.evictions.inc();
            }
        }
        self.gauges.entries.set(lru.entries.len() as i64);
        self.gauges.bytes.set(lru.bytes as i64);
    }
}

/// What an answer costs the cache: its output data, names and parameters, and the entry's
/// overhead.
fn size_of_reply(reply: &Reply) -> usize {
    let parameters = |parameters: &Parameters| -> usize {
        parameters
            .iter()
            .map(|(name, value)| {
                name.len()
                    + match value {
                        ParameterValue::String(text) => text.len() + 24,
                        _ => 16,
                    }
            })
            .sum()
    };
    let outputs: usize = reply
        .response
        .outputs
        .iter()
        .map(|tensor| {
            tensor.data.len()
                + tensor.name.len()
                + tensor.shape.len() * 8
                + parameters(&tensor.parameters)
                + 64
        })
        .sum();
    let headers: usize = reply
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 48)
        .sum();
    ENTRY_OVERHEAD + outputs + headers + parameters(&reply.response.parameters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DataType, InferenceResponse};

    fn reply(bytes: usize) -> Reply {
        Reply {
            response: InferenceResponse {
                model_name: "m".into(),
                model_version: None,
                id: None,
                outputs: vec![Tensor {
                    name: "y".into(),
                    datatype: DataType::Uint8,
                    shape: vec![bytes as u64],
                    data: vec![0; bytes],
                    parameters: vec![],
                }],
                parameters: vec![],
            },
            headers: vec![],
        }
    }

    fn key(n: u8) -> CacheKey {
        CacheKey([n; 32])
    }

    #[test]
    fn evicts_the_least_recently_used_past_its_entries() {
        let cache = ResponseCache::new(2, usize::MAX, CacheGauges::default());
        cache.insert(key(1), reply(1));
        cache.insert(key(2), reply(1));
        assert!(cache.get(&key(1)).is_some());
        cache.insert(key(3), reply(1));
        assert!(
            cache.get(&key(2)).is_none(),
            "2 was the least recently used"
        );
        assert!(cache.get(&key(1)).is_some() && cache.get(&key(3)).is_some());
        assert_eq!(cache.gauges.entries.get(), 2);
        assert_eq!(cache.gauges.evictions.get(), 1);
    }

    #[test]
    fn evicts_past_its_bytes_and_skips_answers_larger_than_itself() {
        let one = size_of_reply(&reply(1000));
        let cache = ResponseCache::new(100, 2 * one + 10, CacheGauges::default());
        cache.insert(key(1), reply(1000));
        cache.insert(key(2), reply(1000));
        cache.insert(key(3), reply(1000));
        assert!(cache.get(&key(1)).is_none());
        assert_eq!(cache.gauges.bytes.get() as usize, 2 * one);
        cache.insert(key(4), reply(10_000));
        assert!(cache.get(&key(4)).is_none());
        assert!(cache.get(&key(2)).is_some() && cache.get(&key(3)).is_some());
        // Replacing an entry counts its bytes once.
        cache.insert(key(3), reply(1000));
        assert_eq!(cache.gauges.bytes.get() as usize, 2 * one);
    }
}
