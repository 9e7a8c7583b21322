//! The server-wide byte budget of requests in flight: the bodies being buffered and the requests
//! decoded from them, queued or running, until each is answered (`max_buffered_mb`). A request
//! that would take the total over the budget is refused at once (503, RESOURCE_EXHAUSTED), so
//! the memory requests hold is bounded by the settings, not by what clients send.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The bytes all requests in flight may hold between them.
#[derive(Debug)]
pub(crate) struct ByteBudget {
    limit: u64,
    used: AtomicU64,
}

/// Why a request was refused: the budget had no room for it.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the server is busy: {wanted} more bytes of requests would take it over its budget of {limit} \
     bytes (max_buffered_mb); try again later"
)]
pub struct OverBudget {
    /// The bytes asked for.
    pub wanted: u64,
    /// The budget.
    pub limit: u64,
}

impl ByteBudget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: u64) -> Arc<ByteBudget> {
        Arc::new(ByteBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// Bytes held now.
    #[cfg(test)]
    fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// An empty reservation, to grow as a body arrives.
    pub(crate) fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: 0,
        }
    }

    /// Takes `bytes` when they fit.
    fn take(&self, bytes: u64) -> Result<(), OverBudget> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .map(|_| ())
            .map_err(|_| OverBudget {
                wanted: bytes,
                limit: self.limit,
            })
    }
}

/// Bytes of the budget held by one request, given back when it is dropped (once the request
/// is answered).
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<ByteBudget>,
    bytes: u64,
}

impl Reservation {
    /// Holds `bytes` more, or fails (holding what it held) when the budget has no room.
    pub(crate) fn grow(&mut self, bytes: u64) -> Result<(), OverBudget> {
        self.budget.take(bytes)?;
        self.bytes += bytes;
        Ok(())
    }

    /// Holds at least `total` bytes in all.
    pub(crate) fn grow_to(&mut self, total: u64) -> Result<(), OverBudget> {
        match total.checked_sub(self.bytes) {
            Some(more) if more > 0 => self.grow(more),
            _ => Ok(()),
        }
    }

    /// The bytes held.
    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let budget = ByteBudget::new(100);
        let mut first = budget.reservation();
        first.grow(60).unwrap();
        let mut second = budget.reservation();
        let refused = second.grow(50).unwrap_err();
        assert_eq!((refused.wanted, refused.limit), (50, 100));
        assert!(refused.to_string().contains("max_buffered_mb"));
        second.grow_to(40).unwrap();
        assert_eq!(budget.used(), 100);
        second.grow_to(30).unwrap();
        assert_eq!(second.bytes(), 40, "never shrinks");
        drop(first);
        assert_eq!(budget.used(), 40);
        second.grow(60).unwrap();
        drop(second);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_huge_request_cannot_overflow_the_count() {
        let budget = ByteBudget::new(100);
        let mut reservation = budget.reservation();
        reservation.grow(1).unwrap();
        assert!(reservation.grow(u64::MAX).is_err());
        assert_eq!(budget.used(), 1);
    }
}
