//! The instances of one model, shared by its worker threads and its inline calls.
//!
//! A model has a fixed number of instances (one per worker). An idle instance waits here; a
//! worker takes one for each job it runs (waiting while inline calls hold them all), an inline
//! call takes one only if one is idle at once. An instance lost to a trap is counted as missing
//! and re-created by the next worker that needs one, so inline calls never pay for it.

use crate::wasm::ModelInstance;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A model's idle instances, and how many are missing.
pub(super) struct Instances {
    slots: Mutex<Slots>,
    returned: Condvar,
}

struct Slots {
    idle: Vec<ModelInstance>,
    /// Instances dropped after a trap and not yet re-created.
    missing: usize,
    /// Workers waiting in [`Instances::take`]: giving an instance back wakes one only when one
    /// waits (a condition variable's notify is a system call even when nobody waits, and
    /// inline calls give an instance back on every request).
    waiting: usize,
}

/// What a worker gets when it asks for an instance.
pub(super) enum Taken {
    /// An idle instance.
    Idle(ModelInstance),
    /// None is idle but one is missing: the worker re-creates it (and gives it back after its
    /// job, or calls [`Instances::lost`] if it cannot).
    Missing,
}

impl Instances {
    /// The pool of `instances`, all idle.
    pub(super) fn new(instances: Vec<ModelInstance>) -> Self {
        Instances {
            slots: Mutex::new(Slots {
                idle: instances,
                missing: 0,
                waiting: 0,
            }),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // Nothing panics while holding the lock; recover the data if something ever did.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A worker's take: an idle instance, else a missing one to re-create, else waits for one
    /// to come back (from an inline call: a model has an instance per worker, so a worker waits
    /// only while inline calls hold them). Blocking: call it on a worker thread.
    pub(super) fn take(&self) -> Taken {
        let mut slots = self.lock();
        loop {
            if let Some(instance) = slots.idle.pop() {
                return Taken::Idle(instance);
            }
            if slots.missing > 0 {
                slots.missing -= 1;
                return Taken::Missing;
            }
            slots.waiting += 1;
            slots = self
                .returned
                .wait(slots)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slots.waiting -= 1;
        }
    }

    /// An inline call's take: an idle instance if there is one now, without waiting for one
    /// (the lock itself is held only to push or pop).
    pub(super) fn try_take(&self) -> Option<ModelInstance> {
        self.lock().idle.pop()
    }

    /// Gives an instance back.
    pub(super) fn put(&self, instance: ModelInstance) {
        let mut slots = self.lock();
        slots.idle.push(instance);
        self.wake_a_waiting_worker(&slots);
    }

    /// Counts an instance as lost (dropped after a trap, or not re-created): the next worker
    /// that finds none idle re-creates it.
    pub(super) fn lost(&self) {
        let mut slots = self.lock();
        slots.missing += 1;
        self.wake_a_waiting_worker(&slots);
    }

    fn wake_a_waiting_worker(&self, slots: &Slots) {
        if slots.waiting > 0 {
            self.returned.notify_one();
        }
    }

    /// Drops the idle instances, once the workers have stopped (no worker waits then: each has
    /// ended with the queue).
    pub(super) fn close(&self) {
        let idle = std::mem::take(&mut self.lock().idle);
        drop(idle);
    }
}
