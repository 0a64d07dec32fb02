//! Admission control: a fixed number of guest slots and a bounded queue
//! in front of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Slots for running guests, and room for requests waiting for one.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    /// Requests admitted and not yet finished (running or waiting).
    admitted: AtomicUsize,
    max_concurrency: usize,
    max_queue: usize,
    /// Signalled when `admitted` drops to zero.
    idle: Notify,
}

/// An admitted request (running or waiting); leaving frees its place.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
}

/// A running request: its ticket and its guest slot.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _ticket: Ticket,
}

impl Admission {
    pub fn new(max_concurrency: usize, max_queue: usize) -> Admission {
        let max_concurrency = max_concurrency.max(1);
        Admission {
            slots: Arc::new(Semaphore::new(max_concurrency)),
            admitted: AtomicUsize::new(0),
            max_concurrency,
            max_queue,
            idle: Notify::new(),
        }
    }

    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }

    pub fn max_queue(&self) -> usize {
        self.max_queue
    }

    /// Admits a request if fewer than `max_concurrency + max_queue` are in.
    pub fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let limit = self.max_concurrency + self.max_queue;
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
            .ok()
            .map(|_| Ticket { admission: Arc::clone(self) })
    }

    /// Requests admitted and not finished.
    pub fn in_flight(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }

    /// Resolves once no admitted request is left.
    pub async fn drained(&self) {
        loop {
            let notified = self.idle.notified();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Ticket {
    /// Waits for a guest slot.
    pub async fn run(self) -> Slot {
        let permit = Arc::clone(&self.admission.slots).acquire_owned().await.expect("the semaphore is never closed");
        Slot { _permit: permit, _ticket: self }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.admission.admitted.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.admission.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admits_up_to_slots_plus_queue() {
        let a = Arc::new(Admission::new(2, 1));
        let t: Vec<Ticket> = (0..3).map(|_| a.admit().expect("room")).collect();
        assert!(a.admit().is_none(), "a fourth request is refused");
        let mut t = t.into_iter();
        let s1 = t.next().unwrap().run().await;
        let _s2 = t.next().unwrap().run().await;
        let third = t.next().unwrap();
        // The third waits for a slot until one is freed.
        let waiting = tokio::spawn(third.run());
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(s1);
        let _s3 = waiting.await.unwrap();
        assert!(a.admit().is_some(), "the finished request's place is free again");
    }

    #[tokio::test]
    async fn drained_waits_for_the_last_request() {
        let a = Arc::new(Admission::new(1, 0));
        let slot = a.admit().unwrap().run().await;
        let d = {
            let a = Arc::clone(&a);
            tokio::spawn(async move { a.drained().await })
        };
        tokio::task::yield_now().await;
        assert!(!d.is_finished());
        drop(slot);
        d.await.unwrap();
        assert_eq!(a.in_flight(), 0);
    }
}
