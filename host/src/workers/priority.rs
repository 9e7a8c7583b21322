//! Request priorities, as Triton's: a model may have several priority levels (its
//! `priority_levels`, level 1 the highest); a request names its level with the `priority`
//! parameter (0, or none: the model's `default_priority_level`). Each level has a queue of its
//! own, bounded on its own, and a free worker takes from the highest level that has a request.

use crate::codec::{ParameterValue, Parameters};
use crossbeam_channel::{Receiver, Select, TryRecvError};

/// The request parameter naming a request's priority level (tritonclient's `priority`).
pub(crate) const PRIORITY_PARAMETER: &str = "priority";

/// A model's queues: one per priority level, highest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueSettings {
    /// Each level's capacity, level 1 first (one entry: no priorities).
    pub capacities: Vec<usize>,
    /// The level of a request that names none (1-based).
    pub default_level: usize,
}

impl QueueSettings {
    /// One queue of `capacity`: no priorities.
    #[cfg(test)]
    pub(crate) fn single(capacity: usize) -> Self {
        QueueSettings {
            capacities: vec![capacity],
            default_level: 1,
        }
    }

    /// How many levels there are.
    pub(crate) fn levels(&self) -> usize {
        self.capacities.len()
    }

    /// The queue (0: the highest) a request with these parameters goes to, or why its
    /// `priority` is refused. With one level, any priority goes to it (as Triton, which ignores
    /// priorities when a model has none).
    pub(crate) fn queue_of(&self, parameters: &Parameters) -> Result<usize, String> {
        let Some((_, value)) = parameters
            .iter()
            .find(|(name, _)| name == PRIORITY_PARAMETER)
        else {
            return Ok(self.default_level - 1);
        };
        let level = match value {
            ParameterValue::Int64(level) if *level >= 0 => *level as u64,
            ParameterValue::Uint64(level) => *level,
            _ => {
                return Err(format!(
                    "the `{PRIORITY_PARAMETER}` parameter must be a level from 0 (the default) \
                     to {}",
                    self.levels()
                ));
            }
        };
        if self.levels() == 1 {
            return Ok(0);
        }
        match level {
            0 => Ok(self.default_level - 1),
            level if level as usize <= self.levels() => Ok(level as usize - 1),
            level => Err(format!(
                "priority {level} is not a level of this model: it has {} (1 the highest; 0 for \
                 its default, {})",
                self.levels(),
                self.default_level
            )),
        }
    }
}

/// The next job of the queues, highest level first; blocks until one arrives. `None` once every
/// queue is closed and empty.
pub(super) fn next<T>(queues: &[Receiver<T>]) -> Option<T> {
    if let [only] = queues {
        return only.recv().ok();
    }
    loop {
        let mut open = false;
        for queue in queues {
            match queue.try_recv() {
                Ok(job) => return Some(job),
                Err(TryRecvError::Empty) => open = true,
                Err(TryRecvError::Disconnected) => {}
            }
        }
        if !open {
            return None;
        }
        let mut select = Select::new();
        for queue in queues {
            select.recv(queue);
        }
        select.ready();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn priority(value: ParameterValue) -> Parameters {
        vec![(PRIORITY_PARAMETER.to_string(), value)]
    }

    #[test]
    fn a_request_names_its_level_or_gets_the_default() {
        let queues = QueueSettings {
            capacities: vec![4, 4, 4],
            default_level: 3,
        };
        assert_eq!(queues.queue_of(&Vec::new()), Ok(2));
        assert_eq!(queues.queue_of(&priority(ParameterValue::Int64(0))), Ok(2));
        assert_eq!(queues.queue_of(&priority(ParameterValue::Uint64(1))), Ok(0));
        assert_eq!(queues.queue_of(&priority(ParameterValue::Int64(2))), Ok(1));
        let error = queues
            .queue_of(&priority(ParameterValue::Int64(4)))
            .unwrap_err();
        assert!(
            error.contains("not a level of this model: it has 3"),
            "{error}"
        );
        assert!(
            queues
                .queue_of(&priority(ParameterValue::String("high".into())))
                .is_err()
        );
        assert!(
            queues
                .queue_of(&priority(ParameterValue::Int64(-1)))
                .is_err()
        );
        // Without levels, any priority is taken (and ignored).
        let single = QueueSettings::single(8);
        assert_eq!(single.queue_of(&priority(ParameterValue::Int64(9))), Ok(0));
    }

    #[test]
    fn the_highest_level_is_taken_first() {
        let (high_tx, high) = crossbeam_channel::bounded(4);
        let (low_tx, low) = crossbeam_channel::bounded(4);
        low_tx.send("low 1").unwrap();
        high_tx.send("high 1").unwrap();
        low_tx.send("low 2").unwrap();
        let queues = [high, low];
        assert_eq!(next(&queues), Some("high 1"));
        assert_eq!(next(&queues), Some("low 1"));
        high_tx.send("high 2").unwrap();
        assert_eq!(next(&queues), Some("high 2"));
        assert_eq!(next(&queues), Some("low 2"));
        drop((high_tx, low_tx));
        assert_eq!(next(&queues), None);
    }
}
