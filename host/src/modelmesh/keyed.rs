//! One lock per model id: the SPI's calls on one id (load, unload, the purge) run one at a
//! time, while calls on different ids run concurrently.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// The locks of the ids with a call under way (or waiting).
#[derive(Default)]
pub(super) struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A held lock on one id; forgotten from the map when the last holder or waiter drops it.
pub(super) struct IdGuard {
    guard: Option<OwnedMutexGuard<()>>,
    lock: Arc<tokio::sync::Mutex<()>>,
    id: String,
    owner: Arc<KeyedLocks>,
}

impl KeyedLocks {
    /// Waits until no other call holds `id`, then holds it until the guard drops. Cancelling the
    /// wait holds nothing.
    pub(super) async fn lock(self: &Arc<Self>, id: &str) -> IdGuard {
        let lock = self
            .locks
            .lock()
            .expect("id locks")
            .entry(id.to_string())
            .or_default()
            .clone();
        let mut guard = IdGuard {
            guard: None,
            lock: lock.clone(),
            id: id.to_string(),
            owner: self.clone(),
        };
        guard.guard = Some(lock.lock_owned().await);
        guard
    }

    /// The ids with a call under way or waiting.
    pub(super) fn busy(&self) -> Vec<String> {
        self.locks
            .lock()
            .expect("id locks")
            .keys()
            .cloned()
            .collect()
    }
}

impl Drop for IdGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.owner.locks.lock().expect("id locks");
        // The map's and ours: nobody else holds or waits for it.
        if Arc::strong_count(&self.lock) == 2 {
            locks.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn calls_on_one_id_run_one_at_a_time_and_locks_are_forgotten() {
        let locks = Arc::new(KeyedLocks::default());
        let running = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let (locks, running) = (locks.clone(), running.clone());
            tasks.spawn(async move {
                let _held = locks.lock("m").await;
                assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0);
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
        assert!(locks.busy().is_empty());
        // A wait that is cancelled leaves nothing either.
        let held = locks.lock("n").await;
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(10), locks.lock("n"));
        assert!(waiting.await.is_err());
        assert_eq!(locks.busy(), vec!["n".to_string()]);
        drop(held);
        assert!(locks.busy().is_empty());
    }
}
