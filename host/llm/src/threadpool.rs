//! A small persistent fork-join pool for the forward pass.
//!
//! Decode runs ~200 matmuls per token, each a few microseconds of work per
//! thread, so spawning threads per op (or waking them through the OS every
//! time) would cost more than the math. Workers here spin briefly on an
//! atomic generation counter before parking, and the calling thread takes
//! part.
//!
//! Work is split into chunks that threads *claim* from a shared counter, and
//! a worker only takes part in a job if it shows up while the job is still
//! open. On a busy device a worker can be descheduled for milliseconds; with
//! a static split the caller would wait for that worker's share, but here the
//! caller (and any other worker) simply claims the remaining chunks, closes
//! the job, and waits only for workers that are mid-chunk. Which thread
//! computes a chunk never changes its result, so outputs stay bit-identical
//! whatever the scheduling.

use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A job as the workers see it: a borrowed closure whose lifetime has been
/// erased (see the SAFETY argument in [`ThreadPool::for_each_chunk`]).
type Job = &'static (dyn Fn() + Sync);

/// `Shared::ticket`: bits 32.. the job's generation (mod 2^32), bit 31 set
/// once the caller closed the job, bits 0..31 the workers that joined it.
const CLOSED: u64 = 1 << 31;
const JOINED: u64 = CLOSED - 1;

/// State shared by the caller and the workers. The hot path (posting a job,
/// joining it, reporting completion) touches only atomics: a mutex there
/// would put a worker to sleep whenever it raced the caller, and waking it
/// costs more than the job.
struct Shared {
    /// Bumped once per job; workers look at the ticket when it moves.
    generation: AtomicUsize,
    /// Who may still join the current job (see [`CLOSED`]).
    ticket: AtomicU64,
    /// Workers that joined the current job and finished it.
    done: AtomicUsize,
    /// Points at the current `Job`, which lives on the caller's stack for
    /// the duration of `for_each_chunk`.
    job: AtomicPtr<Job>,
    /// Workers that are (about to be) parked on `wake`.
    sleepers: AtomicUsize,
    park: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
    panicked: AtomicBool,
    n_threads: usize,
}

/// A fixed set of worker threads running one job at a time.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Serialises jobs from different callers sharing the pool.
    run_lock: Mutex<()>,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool").field("n_threads", &self.n_threads()).finish()
    }
}

/// How long an idle worker spins before parking. Long enough to cover the
/// gap between two matmuls of one token, short enough not to burn a core
/// between requests.
const SPIN: Duration = Duration::from_micros(500);

impl ThreadPool {
    /// A pool of `n_threads` (≥ 1) threads, counting the caller.
    pub fn new(n_threads: usize) -> ThreadPool {
        let n_threads = n_threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            ticket: AtomicU64::new(CLOSED),
            done: AtomicUsize::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            sleepers: AtomicUsize::new(0),
            park: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            n_threads,
        });
        let workers = (1..n_threads)
            .map(|tid| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("edgewasm-worker-{tid}"))
                    .spawn(move || worker_loop(&shared))
                    .expect("failed to spawn inference worker thread")
            })
            .collect();
        ThreadPool { shared, workers, run_lock: Mutex::new(()) }
    }

    /// Threads per job, counting the caller.
    pub fn n_threads(&self) -> usize {
        self.shared.n_threads
    }

    /// A chunk size giving each thread about `per_thread` chunks of `n`
    /// items (at least `min`), so late or slow threads can be covered.
    pub fn chunk_size(&self, n: usize, per_thread: usize, min: usize) -> usize {
        n.div_ceil(self.n_threads() * per_thread.max(1)).max(min.max(1))
    }

    /// Calls `f` on consecutive ranges of `chunk` items covering `0..n`,
    /// each exactly once, on the caller and whichever workers join in time.
    /// Returns when every range is done. Panics if `f` panicked.
    ///
    /// If another caller is using the pool, this one runs all of `f` on its
    /// own thread instead of queueing (so guests sharing a pool still run in
    /// parallel).
    pub fn for_each_chunk<F: Fn(Range<usize>) + Sync>(&self, n: usize, chunk: usize, f: F) {
        let chunk = chunk.max(1);
        let n_chunks = n.div_ceil(chunk);
        let next = AtomicUsize::new(0);
        let work = || loop {
            let i = next.fetch_add(1, SeqCst);
            if i >= n_chunks {
                break;
            }
            f(i * chunk..((i + 1) * chunk).min(n));
        };
        if self.shared.n_threads == 1 || n_chunks <= 1 {
            work();
            return;
        }
        let _guard = match self.run_lock.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                work();
                return;
            }
        };
        let job: &(dyn Fn() + Sync) = &work;
        // SAFETY: the erased reference (and the `job` slot pointing at it) is
        // only used by workers that joined through `ticket` while it was open
        // for this generation, and this function does not return (even when
        // `work` panics on this thread, thanks to catch_unwind) before the
        // ticket is closed and every joined worker has reported `done`. So
        // `work` and `job` outlive every use.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn() + Sync), Job>(job) };
        let sh = &*self.shared;
        let generation = sh.generation.load(SeqCst).wrapping_add(1);
        sh.job.store(&job as *const Job as *mut Job, SeqCst);
        sh.done.store(0, SeqCst);
        sh.ticket.store(((generation as u64) & 0xFFFF_FFFF) << 32, SeqCst);
        sh.generation.store(generation, SeqCst);
        if sh.sleepers.load(SeqCst) > 0 {
            // Taking the lock orders this notify after a parking worker's
            // last look at `generation` (it holds the lock from then until
            // it waits), so the wake-up cannot be lost.
            let _g = sh.park.lock().unwrap_or_else(|e| e.into_inner());
            sh.wake.notify_all();
        }
        let mine = panic::catch_unwind(AssertUnwindSafe(&work));
        let joined = (sh.ticket.fetch_or(CLOSED, SeqCst) & JOINED) as usize;
        let waiting = Instant::now();
        let mut spins = 0u32;
        while sh.done.load(SeqCst) != joined {
            // Joined workers are mid-chunk: spin, but yield if one of them
            // was descheduled (more threads than free cores).
            spins = spins.wrapping_add(1);
            if spins % 1024 == 0 && waiting.elapsed() > SPIN * 4 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        sh.job.store(std::ptr::null_mut(), SeqCst);
        if let Err(p) = mine {
            panic::resume_unwind(p);
        }
        if sh.panicked.swap(false, SeqCst) {
            panic!("an inference worker thread panicked");
        }
    }
}

impl ThreadPool {
    /// Calls `f(i, row)` on each whole `row_len`-long row `i` of `data`,
    /// spread over the pool like [`ThreadPool::for_each_chunk`]. Rows are
    /// disjoint, so `f` gets each one mutably.
    pub fn for_each_row_mut<T: Send, F: Fn(usize, &mut [T]) + Sync>(&self, data: &mut [T], row_len: usize, f: F) {
        let row_len = row_len.max(1);
        let rows = data.len() / row_len;
        let base = RowsPtr(data.as_mut_ptr());
        self.for_each_chunk(rows, self.chunk_size(rows, 4, 1), |range| {
            let base = &base;
            for i in range {
                // SAFETY: row i (i < rows, so inside `data`, which outlives
                // the job) is handed out exactly once by for_each_chunk, so no
                // two threads hold overlapping slices.
                let row = unsafe { std::slice::from_raw_parts_mut(base.0.add(i * row_len), row_len) };
                f(i, row);
            }
        });
    }
}

/// The base of the rows [`ThreadPool::for_each_row_mut`] hands out.
struct RowsPtr<T>(*mut T);
// SAFETY: only used to build disjoint row slices of a `&mut [T]` with
// `T: Send`, each on one thread; equivalent to sending `&mut` rows.
unsafe impl<T: Send> Sync for RowsPtr<T> {}

/// Joins the job of `generation` if it is still open: `true` if joined.
fn join(shared: &Shared, generation: usize) -> bool {
    let want = ((generation as u64) & 0xFFFF_FFFF) << 32;
    let mut t = shared.ticket.load(SeqCst);
    loop {
        if t & !(CLOSED | JOINED) != want || t & CLOSED != 0 {
            return false;
        }
        match shared.ticket.compare_exchange_weak(t, t + 1, SeqCst, SeqCst) {
            Ok(_) => return true,
            Err(now) => t = now,
        }
    }
}

fn worker_loop(shared: &Shared) {
    let mut seen = 0usize;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        // Spin, then park until the generation moves or we shut down.
        let generation = loop {
            if shared.shutdown.load(SeqCst) {
                return;
            }
            let g = shared.generation.load(SeqCst);
            if g != seen {
                break g;
            }
            spins = spins.wrapping_add(1);
            if spins % 256 == 0 && start.elapsed() > SPIN {
                shared.sleepers.fetch_add(1, SeqCst);
                let guard = shared.park.lock().unwrap_or_else(|e| e.into_inner());
                if shared.generation.load(SeqCst) == seen && !shared.shutdown.load(SeqCst) {
                    drop(shared.wake.wait_timeout(guard, Duration::from_millis(100)));
                } else {
                    drop(guard);
                }
                shared.sleepers.fetch_sub(1, SeqCst);
            } else {
                std::hint::spin_loop();
            }
        };
        seen = generation;
        if !join(shared, generation) {
            continue; // too late: the caller already finished this job
        }
        let ptr = shared.job.load(SeqCst);
        // SAFETY: we joined the open ticket of this generation, so the slot
        // points at the caller's `Job`, which stays alive until the caller
        // has seen our `done` below.
        let job: Job = unsafe { *ptr };
        if panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
            shared.panicked.store(true, SeqCst);
        }
        shared.done.fetch_add(1, SeqCst);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        {
            let _g = self.shared.park.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn every_chunk_runs_exactly_once() {
        let pool = ThreadPool::new(3);
        for round in 0..300 {
            let n = round % 37;
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            pool.for_each_chunk(n, 1 + round % 4, |r| {
                for i in r {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                }
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn workers_take_part() {
        let pool = ThreadPool::new(2);
        let main = std::thread::current().id();
        let elsewhere = AtomicUsize::new(0);
        for _ in 0..200 {
            pool.for_each_chunk(64, 1, |_| {
                if std::thread::current().id() != main {
                    elsewhere.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_micros(20));
            });
        }
        assert!(elsewhere.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn callers_sharing_a_pool_all_finish() {
        let pool = Arc::new(ThreadPool::new(2));
        let total = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (pool, total) = (Arc::clone(&pool), Arc::clone(&total));
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        pool.for_each_chunk(50, 3, |r| {
                            total.fetch_add(r.len(), Ordering::Relaxed);
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(total.load(Ordering::Relaxed), 4 * 100 * 50);
    }

    #[test]
    fn rows_are_handed_out_once_each() {
        let pool = ThreadPool::new(2);
        let mut data = vec![0u32; 7 * 5 + 3]; // the 3 left over are no row
        for _ in 0..50 {
            pool.for_each_row_mut(&mut data, 5, |i, row| row.iter_mut().for_each(|v| *v += i as u32 + 1));
        }
        for (j, v) in data.iter().enumerate() {
            assert_eq!(*v, if j < 35 { 50 * (j as u32 / 5 + 1) } else { 0 });
        }
    }

    #[test]
    fn worker_panic_is_reported() {
        let pool = ThreadPool::new(2);
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.for_each_chunk(64, 1, |r| {
                std::thread::sleep(Duration::from_micros(50));
                if r.start == 63 {
                    panic!("boom");
                }
            })
        }));
        assert!(r.is_err());
        // The pool still works afterwards.
        let hits = AtomicUsize::new(0);
        pool.for_each_chunk(10, 1, |_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 10);
    }
}
