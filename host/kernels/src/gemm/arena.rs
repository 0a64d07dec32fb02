//! One huge-page-backed allocation for all of a model's interleaved weights.
//!
//! Decode streams every weight once per token, so it runs at the speed of
//! memory, and with 4 KiB pages part of that goes to TLB misses. On the
//! 2-core VM a plain read of 256 MiB ran at 18–23 GB/s on one thread with
//! 4 KiB pages and at 31 GB/s with transparent huge pages. A huge page needs
//! an aligned 2 MiB range inside one mapping, which separate per-matrix heap
//! allocations (0.1–2 MiB each) never give, so the matrices are carved out of
//! one anonymous mapping advised `MADV_HUGEPAGE` (used as a hint: where the
//! kernel says no, it is still ordinary memory).

use std::ops::{Deref, DerefMut, Range};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use memmap2::MmapMut;

/// The huge page size the mapping is aligned to.
const HUGE_PAGE: usize = 2 << 20;
/// Alignment of every slice (a cache line; enough for any block type).
const SLICE_ALIGN: usize = 64;

/// A fixed-size region handing out disjoint slices, first come first served.
pub struct WeightArena {
    /// Owns the memory `base` points into; never accessed through otherwise.
    _map: MmapMut,
    base: *mut u8,
    capacity: usize,
    next: AtomicUsize,
}

// SAFETY: `base` points into `_map`, which the arena owns and never moves or
// unmaps before it is dropped; memory behind it is only reached through
// `ArenaSlice`s, each of which owns a disjoint range (see `alloc`).
unsafe impl Send for WeightArena {}
// SAFETY: as above; `alloc` hands out ranges with an atomic bump, so
// concurrent callers get disjoint ranges.
unsafe impl Sync for WeightArena {}

impl std::fmt::Debug for WeightArena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightArena").field("capacity", &self.capacity).field("used", &self.used()).finish()
    }
}

impl WeightArena {
    /// Reserves `capacity` bytes (address space only: pages become resident
    /// when first written). `None` if the mapping fails or `capacity` is 0;
    /// callers then use the heap.
    pub fn new(capacity: usize) -> Option<Arc<WeightArena>> {
        if capacity == 0 {
            return None;
        }
        let mut map = MmapMut::map_anon(capacity.checked_add(HUGE_PAGE)?).ok()?;
        let start = map.as_mut_ptr();
        let skip = start.align_offset(HUGE_PAGE).min(HUGE_PAGE);
        #[cfg(target_os = "linux")]
        let _ = map.advise_range(memmap2::Advice::HugePage, skip, capacity);
        // SAFETY: skip < HUGE_PAGE, so `start + skip` stays inside the
        // mapping of capacity + HUGE_PAGE bytes.
        let base = unsafe { start.add(skip) };
        Some(Arc::new(WeightArena { _map: map, base, capacity, next: AtomicUsize::new(0) }))
    }

    /// Bytes handed out so far, with the alignment padding between slices.
    pub fn used(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }

    /// A zeroed slice of `len` bytes, or `None` when the arena is full.
    pub fn alloc(self: &Arc<Self>, len: usize) -> Option<ArenaSlice> {
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let start = next.checked_next_multiple_of(SLICE_ALIGN)?;
            let end = start.checked_add(len).filter(|&end| end <= self.capacity)?;
            match self.next.compare_exchange_weak(next, end, Ordering::Relaxed, Ordering::Relaxed) {
                // Fresh anonymous pages are zero, and each byte is handed out
                // once.
                Ok(_) => return Some(ArenaSlice { arena: Arc::clone(self), range: start..end }),
                Err(now) => next = now,
            }
        }
    }
}

/// Bytes of a [`WeightArena`] owned by one matrix. Keeps the arena alive.
pub struct ArenaSlice {
    arena: Arc<WeightArena>,
    range: Range<usize>,
}

impl std::fmt::Debug for ArenaSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArenaSlice").field("range", &self.range).finish()
    }
}

impl Deref for ArenaSlice {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `range` lies inside the arena's mapping (checked in
        // `alloc`), which lives as long as `self.arena`; no other slice
        // covers these bytes, and mutation needs `&mut self`.
        unsafe { std::slice::from_raw_parts(self.arena.base.add(self.range.start), self.range.len()) }
    }
}

impl DerefMut for ArenaSlice {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.arena.base.add(self.range.start), self.range.len()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_disjoint_zeroed_aligned_and_bounded() {
        let arena = WeightArena::new(1024).unwrap();
        assert_eq!(arena.used(), 0);
        let mut a = arena.alloc(100).unwrap();
        let mut b = arena.alloc(836).unwrap();
        assert!(a.iter().chain(b.iter()).all(|&x| x == 0));
        a.fill(1);
        b.fill(2);
        assert!(a.iter().all(|&x| x == 1) && b.iter().all(|&x| x == 2));
        assert_eq!(a.as_ptr() as usize % SLICE_ALIGN, 0);
        assert_eq!(b.as_ptr() as usize % SLICE_ALIGN, 0);
        assert_eq!(arena.used(), 128 + 836);
        assert_eq!(arena.alloc(61).map(|s| s.len()), None, "starts at 1024: full");
        assert_eq!(arena.alloc(0).map(|s| s.len()), Some(0));
        assert!(WeightArena::new(0).is_none());
        drop(arena);
        assert_eq!(a[99], 1, "slices keep the arena alive");
    }
}
