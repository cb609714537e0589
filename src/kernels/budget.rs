//! A memory budget shared by every queue of one broker, and the charge each
//! queued delivery holds against it.
//!
//! The budget counts bytes, not messages: what one slow consumer can hold is
//! bounded per session, what all of them hold together is bounded here. A
//! [`Charge`] refunds its bytes when it is dropped, so a delivery that leaves
//! a queue by any path (written, acknowledged, dropped, expired, handed to
//! another session, released at shutdown) gives its bytes back exactly once,
//! without each of those paths having to remember to.
//!
//! Checking and charging are two steps ([`MemoryBudget::fits`], then
//! [`MemoryBudget::charge`]): the broker decides under its state lock, and
//! the only thing that can happen concurrently is a writer refunding, which
//! can only make room.

use crate::sync::{Arc, AtomicUsize, Ordering};

/// Bytes queued for delivery across a whole broker, against a limit. A
/// cheap handle: clones share one count.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    pool: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes; 0 means no limit (the bytes are still
    /// counted, for reports).
    pub fn new(limit: usize) -> Self {
        MemoryBudget {
            pool: Arc::new(Pool {
                limit: if limit == 0 { usize::MAX } else { limit },
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// The limit in bytes (`usize::MAX` when unlimited).
    pub fn limit(&self) -> usize {
        self.pool.limit
    }

    /// Bytes currently charged.
    pub fn used(&self) -> usize {
        self.pool.used.load(Ordering::Acquire)
    }

    /// True when `bytes` more would stay within the limit.
    pub fn fits(&self, bytes: usize) -> bool {
        self.used().saturating_add(bytes) <= self.pool.limit
    }

    /// Charges `bytes`, whether or not they fit (the caller decided); the
    /// returned [`Charge`] gives them back when dropped.
    pub fn charge(&self, bytes: usize) -> Charge {
        self.pool.used.fetch_add(bytes, Ordering::AcqRel);
        Charge {
            pool: self.pool.clone(),
            bytes,
        }
    }
}

/// Bytes one queued delivery holds against a [`MemoryBudget`]; refunded on
/// drop.
#[derive(Debug)]
pub struct Charge {
    pool: Arc<Pool>,
    bytes: usize,
}

impl Charge {
    /// The bytes charged.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.pool.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn a_charge_is_refunded_exactly_once_when_dropped() {
        let b = MemoryBudget::new(100);
        let c = b.charge(60);
        assert_eq!(b.used(), 60);
        assert!(b.fits(40));
        assert!(!b.fits(41));
        let moved = c; // moving a charge (to another queue) refunds nothing
        assert_eq!(b.used(), 60);
        drop(moved);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn zero_means_unlimited_but_still_counted() {
        let b = MemoryBudget::new(0);
        let _c = b.charge(1 << 40);
        assert!(b.fits(1 << 40));
        assert_eq!(b.used(), 1 << 40);
    }

    // The admission policy resumes a paused publisher once `used` is back
    // under half of `limit` (broker/admission.rs): a wrong limit there
    // either never pauses or never resumes.
    #[test]
    fn the_limit_reads_back_and_zero_reads_as_unlimited() {
        assert_eq!(MemoryBudget::new(100).limit(), 100);
        assert_eq!(MemoryBudget::new(0).limit(), usize::MAX);
    }
}
