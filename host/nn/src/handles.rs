//! Handle bookkeeping for one guest: a generational slab for the WasmEdge
//! ABI's integer handles, and a live-handle budget (`--max-handles`) for
//! the component resources wasi:nn and edgewasm:llm hand out.
//!
//! Freed slots are reused, so a guest that creates and frees objects in a
//! loop holds the host's bookkeeping at its peak live count, not at the
//! number of objects it ever made. The generation in each handle keeps a
//! stale handle from reaching the slot's next occupant.

use crate::error::{NnError, NnResult};

/// Default `max_handles`: 4096 live wasi:nn / edgewasm:llm objects per
/// guest. A guest needs a handful per model and context (at most
/// `--max-contexts` of those), so this leaves room for thousands of
/// undropped tensors or errors while keeping the host's bookkeeping for
/// them to a few MiB.
pub const DEFAULT_MAX_HANDLES: usize = 4096;

/// Bits of a slab handle that name the slot; the rest count its reuses.
/// Generation 0 makes the first handle of slot `i` equal to `i`, the small
/// integers WasmEdge hands out.
const INDEX_BITS: u32 = 20;

/// Most slots a slab ever creates (so the largest useful `--max-handles`
/// for core modules).
pub const MAX_SLOTS: usize = 1 << INDEX_BITS;

const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;

/// Reuses of one slot before it is retired for good: a retired slot is
/// never handed out again, so no handle value is ever issued twice.
const GENERATIONS: u32 = 1 << (32 - INDEX_BITS);

/// A table of `T` addressed by `u32` handles (`generation << 20 | index`).
/// Values are boxed so a free or retired slot costs 16 bytes.
#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// Free slots that still have generations left, reused last-in first-out.
    free: Vec<u32>,
    live: usize,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<Box<T>>,
}

impl<T> Default for Slab<T> {
    fn default() -> Slab<T> {
        Slab { slots: Vec::new(), free: Vec::new(), live: 0 }
    }
}

impl<T> Slab<T> {
    /// Stores `value`; `None` once all [`MAX_SLOTS`] slots are in use or
    /// retired (about 4 billion handles issued).
    pub fn insert(&mut self, value: T) -> Option<u32> {
        let index = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < MAX_SLOTS => {
                self.slots.push(Slot { generation: 0, value: None });
                (self.slots.len() - 1) as u32
            }
            None => return None,
        };
        let slot = &mut self.slots[index as usize];
        slot.value = Some(Box::new(value));
        self.live += 1;
        Some((slot.generation << INDEX_BITS) | index)
    }

    fn slot(&self, handle: u32) -> Option<&Slot<T>> {
        let slot = self.slots.get((handle & INDEX_MASK) as usize)?;
        (slot.generation == handle >> INDEX_BITS && slot.value.is_some()).then_some(slot)
    }

    pub fn get(&self, handle: u32) -> Option<&T> {
        self.slot(handle)?.value.as_deref()
    }

    pub fn get_mut(&mut self, handle: u32) -> Option<&mut T> {
        self.slot(handle)?;
        self.slots[(handle & INDEX_MASK) as usize].value.as_deref_mut()
    }

    /// Takes the value out; its handle (and every earlier one of the slot)
    /// is invalid from now on.
    pub fn remove(&mut self, handle: u32) -> Option<T> {
        self.slot(handle)?;
        let index = handle & INDEX_MASK;
        let slot = &mut self.slots[index as usize];
        let value = slot.value.take()?;
        self.live -= 1;
        if slot.generation + 1 < GENERATIONS {
            slot.generation += 1;
            self.free.push(index);
        }
        Some(*value)
    }

    /// Live values.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Live values, in slot order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.value.as_deref())
    }

    /// Live values with their handles, in slot order.
    pub fn handles(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.value.as_deref().map(|v| ((s.generation << INDEX_BITS) | i as u32, v)))
    }

    /// Slots ever created (live, free and retired): the table's size.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

/// Extra error resources a guest at its handle limit may still receive:
/// the error that tells it about the limit, and a few more, before a guest
/// that keeps failing calls without dropping the errors is stopped.
const ERROR_RESERVE: usize = 64;

/// The live wasi:nn and edgewasm:llm resources of one component guest,
/// against `--max-handles`. Every resource the host pushes into the
/// guest's table is counted here, and uncounted when the guest drops it.
#[derive(Debug)]
pub struct HandleBudget {
    live: usize,
    max: usize,
}

impl HandleBudget {
    pub fn new(max: usize) -> HandleBudget {
        HandleBudget { live: 0, max }
    }

    /// Fails with `too-large` if the guest may not take `n` more
    /// resources (of kind `what`); counts nothing. For refusing before
    /// costly work.
    pub fn check(&self, n: usize, what: &str) -> NnResult<()> {
        match self.live.checked_add(n) {
            Some(t) if t <= self.max => Ok(()),
            _ => Err(NnError::too_large(format!(
                "{what}: the guest holds {} wasi:nn/edgewasm:llm resources, the limit is {} (--max-handles); drop some first",
                self.live, self.max
            ))),
        }
    }

    /// Counts `n` new resources of kind `what`, or fails as [`Self::check`].
    pub fn acquire(&mut self, n: usize, what: &str) -> NnResult<()> {
        self.check(n, what)?;
        self.live += n;
        Ok(())
    }

    /// Counts one more error resource: allowed a little past the limit, so
    /// that a refusal can still be reported; past that, `too-large` (which
    /// the caller turns into a trap, having no error left to return).
    pub fn acquire_error(&mut self) -> NnResult<()> {
        if self.live >= self.max.saturating_add(ERROR_RESERVE) {
            return Err(NnError::too_large(format!(
                "the guest holds {} wasi:nn/edgewasm:llm resources, over the limit of {} (--max-handles), and does not drop the errors it gets",
                self.live, self.max
            )));
        }
        self.live += 1;
        Ok(())
    }

    /// One resource dropped.
    pub fn release(&mut self) {
        self.live = self.live.saturating_sub(1);
    }

    /// Live resources.
    pub fn live(&self) -> usize {
        self.live
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

/// Fails with `too-large` when a guest that holds `live` handles may not
/// take another (the WasmEdge ABI's counterpart of [`HandleBudget`]).
pub fn check_live(live: usize, max: usize, what: &str) -> NnResult<()> {
    if live >= max {
        return Err(NnError::too_large(format!(
            "{what}: the guest holds {live} wasi_ephemeral_nn handles, the limit is {max} (--max-handles); unload or finalize some first"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_stale_handles_never_alias() {
        let mut s = Slab::default();
        let a = s.insert("a").unwrap();
        let b = s.insert("b").unwrap();
        assert_eq!((a, b), (0, 1), "first handles are the slot indices");
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None, "double free");
        let c = s.insert("c").unwrap();
        assert_ne!(c, a, "the reused slot has a new generation");
        assert_eq!(c & INDEX_MASK, a, "the slot itself is reused");
        assert_eq!(s.get(a), None);
        assert_eq!(s.get(c), Some(&"c"));
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!((s.len(), s.capacity()), (2, 2));
        assert_eq!(s.get(u32::MAX), None);
        assert_eq!(s.get(7), None);
    }

    #[test]
    fn churn_keeps_the_table_small_and_retires_exhausted_slots() {
        let mut s = Slab::default();
        let keep = s.insert(0u32).unwrap();
        let mut seen = std::collections::HashSet::new();
        let cycles = 3 * GENERATIONS as usize;
        for i in 0..cycles {
            let h = s.insert(i as u32).unwrap();
            assert!(seen.insert(h), "handle {h:#x} issued twice");
            assert_eq!(s.remove(h), Some(i as u32));
        }
        // One slot per GENERATIONS cycles is retired, never reused.
        assert_eq!(s.capacity(), 1 + 3);
        assert_eq!((s.len(), s.get(keep)), (1, Some(&0)));
    }

    #[test]
    fn a_full_slab_refuses() {
        let mut s = Slab::default();
        for _ in 0..MAX_SLOTS {
            s.insert(()).unwrap();
        }
        assert_eq!(s.insert(()), None);
        s.remove(5).unwrap();
        assert_eq!(s.insert(()), Some((1 << INDEX_BITS) | 5));
    }

    #[test]
    fn the_budget_counts_live_resources() {
        let mut b = HandleBudget::new(3);
        b.acquire(2, "x").unwrap();
        let e = b.acquire(2, "graph").unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::TooLarge);
        assert!(e.message.contains("--max-handles"), "{e}");
        b.acquire(1, "x").unwrap();
        assert!(b.acquire(1, "x").is_err());
        for _ in 0..ERROR_RESERVE {
            b.acquire_error().unwrap();
        }
        assert!(b.acquire_error().is_err());
        for _ in 0..ERROR_RESERVE + 1 {
            b.release();
        }
        assert_eq!(b.live(), 2);
        b.acquire(1, "x").unwrap();
        assert!(b.acquire(usize::MAX, "x").is_err());
        assert!(check_live(2, 3, "x").is_ok());
        assert!(check_live(3, 3, "x").unwrap_err().message.contains("--max-handles"));
    }
}
