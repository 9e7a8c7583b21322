//! The instance pool's slots, reserved per model version, so that no model can starve another's
//! load or reload.
//!
//! wasmtime's pooling allocator has `instance_pool_size` slots shared by every instance. Each
//! model version that is loaded claims twice its workers: the slots its instances hold, and as
//! many again for its next reload (which builds the new version beside the serving one). While a
//! reload (or an older version still finishing its requests) holds more, it claims what it
//! holds. A load whose claim does not fit beside the others' is refused at once with an error
//! that says what is left, before any instance is created. A version's lease is held by its
//! worker threads (through their copy of the component) and ends when the last of them stops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A model version, as the pool's slots are reserved for it.
type Key = (String, Option<String>);

/// The slots of the instance pool and who has claimed them.
#[derive(Clone)]
pub(crate) struct SlotBudget {
    inner: Arc<Mutex<Claims>>,
}

#[derive(Default)]
struct Claims {
    /// The pool's slots; 0 when instances are allocated on demand (nothing to reserve).
    total: u32,
    /// Live leases per model version, oldest first: (lease id, workers).
    leases: HashMap<Key, Vec<(u64, u32)>>,
    next_id: u64,
}

impl Claims {
    /// What a model version claims: twice the workers of its newest lease (its reload's
    /// headroom), or every worker its leases hold when that is more.
    fn claim(leases: &[(u64, u32)]) -> u64 {
        let held: u64 = leases.iter().map(|(_, workers)| u64::from(*workers)).sum();
        let newest = leases.last().map_or(0, |(_, workers)| u64::from(*workers));
        held.max(2 * newest)
    }

    /// What every model version but `except` claims.
    fn claimed_by_others(&self, except: &Key) -> u64 {
        self.leases
            .iter()
            .filter(|(key, _)| *key != except)
            .map(|(_, leases)| Self::claim(leases))
            .sum()
    }
}

/// Why a load cannot have its slots.
#[derive(Debug, thiserror::Error)]
#[error(
    "the instance pool cannot hold this model: {workers} workers need {needed} of its \
     {total} slots (the workers and as many again for a reload), and other models have \
     reserved {reserved}; lower `parallel_workers` or raise `instance_pool_size`"
)]
pub struct SlotsExhausted {
    pub workers: u32,
    pub needed: u64,
    pub total: u32,
    pub reserved: u64,
}

impl SlotBudget {
    /// A budget of `total` slots (0: no pool, nothing reserved).
    pub(crate) fn new(total: u32) -> Self {
        SlotBudget {
            inner: Arc::new(Mutex::new(Claims {
                total,
                ..Claims::default()
            })),
        }
    }

    /// Reserves slots for a version of model `name` with `workers` workers, or says why not. The
    /// reservation lasts as long as the lease.
    pub(crate) fn reserve(
        &self,
        name: &str,
        version: Option<&str>,
        workers: usize,
    ) -> Result<SlotLease, SlotsExhausted> {
        let key = (name.to_string(), version.map(str::to_string));
        let workers = u32::try_from(workers.max(1)).unwrap_or(u32::MAX);
        let mut claims = self.inner.lock().expect("slot budget lock");
        let total = claims.total;
        let id = claims.next_id;
        if total > 0 {
            let reserved = claims.claimed_by_others(&key);
            let mut mine = claims.leases.get(&key).cloned().unwrap_or_default();
            mine.push((id, workers));
            let needed = Claims::claim(&mine);
            if reserved + needed > u64::from(total) {
                return Err(SlotsExhausted {
                    workers,
                    needed,
                    total,
                    reserved,
                });
            }
        }
        claims.next_id += 1;
        claims
            .leases
            .entry(key.clone())
            .or_default()
            .push((id, workers));
        Ok(SlotLease {
            budget: self.clone(),
            key,
            id,
        })
    }

    fn release(&self, key: &Key, id: u64) {
        let mut claims = self.inner.lock().expect("slot budget lock");
        if let Some(leases) = claims.leases.get_mut(key) {
            leases.retain(|(lease, _)| *lease != id);
            if leases.is_empty() {
                claims.leases.remove(key);
            }
        }
    }
}

/// Slots reserved for one loaded model version; released on drop.
pub(crate) struct SlotLease {
    budget: SlotBudget,
    key: Key,
    id: u64,
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        self.budget.release(&self.key, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_cannot_take_the_slots_another_needs_to_reload() {
        let budget = SlotBudget::new(256);
        let small = budget.reserve("small", None, 1).unwrap();
        // 254 workers and as many for a reload do not fit beside the small model's 2.
        let error = budget.reserve("big", None, 254).err().unwrap();
        assert!(
            error
                .to_string()
                .contains("254 workers need 508 of its 256 slots"),
            "{error}"
        );
        let big = budget.reserve("big", None, 127).unwrap();
        // The small model reloads beside its serving version, within its own reservation.
        let reloaded = budget.reserve("small", None, 1).unwrap();
        drop(small);
        // The big one can too, and can grow no further.
        let big_reloaded = budget.reserve("big", None, 127).unwrap();
        drop(big);
        assert!(budget.reserve("big", None, 128).is_err());
        drop(big_reloaded);
        drop(reloaded);
        let all = budget.reserve("big", None, 128).unwrap();
        drop(all);
    }

    #[test]
    fn versions_still_finishing_count_until_they_end() {
        let budget = SlotBudget::new(8);
        let first = budget.reserve("m", None, 2).unwrap();
        let second = budget.reserve("m", None, 2).unwrap();
        let _other = budget.reserve("n", None, 2).unwrap();
        // first and second hold 4, a third would hold 6: with n's 4 that is over 8.
        assert!(budget.reserve("m", None, 2).is_err());
        drop(first);
        let _third = budget.reserve("m", None, 2).unwrap();
        drop(second);
    }

    #[test]
    fn without_a_pool_nothing_is_refused() {
        let budget = SlotBudget::new(0);
        let _lease = budget.reserve("m", None, 100_000).unwrap();
    }
}
