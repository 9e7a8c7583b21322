//! Serializing the operations on one model name: loads and unloads of a model run one at a
//! time, while operations on different models run concurrently.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type OperationLock = Arc<tokio::sync::Mutex<()>>;

/// One lock per model name with an operation under way (or waiting).
#[derive(Default)]
pub(super) struct OperationLocks {
    locks: Mutex<HashMap<String, OperationLock>>,
}

impl OperationLocks {
    /// Runs `operation` once no other operation on `name` runs.
    pub(super) async fn serialized<T>(&self, name: &str, operation: impl Future<Output = T>) -> T {
        let lock = self.lock(name);
        let result = {
            let _serialized = lock.lock().await;
            operation.await
        };
        self.release(name, lock);
        result
    }

    fn lock(&self, name: &str) -> OperationLock {
        self.locks
            .lock()
            .expect("operations lock")
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Forgets a model's lock once no operation holds or waits for it, so that the map does not
    /// grow with every name ever asked for.
    fn release(&self, name: &str, lock: OperationLock) {
        let mut locks = self.locks.lock().expect("operations lock");
        // Ours and the map's: nobody else holds it.
        if Arc::strong_count(&lock) == 2 {
            locks.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn operations_on_one_name_run_one_at_a_time_and_locks_are_forgotten() {
        let locks = Arc::new(OperationLocks::default());
        let running = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let (locks, running) = (locks.clone(), running.clone());
            tasks.spawn(async move {
                locks
                    .serialized("m", async {
                        assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0);
                        tokio::task::yield_now().await;
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
        assert!(locks.locks.lock().unwrap().is_empty());
    }
}
