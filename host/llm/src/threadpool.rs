//! A small persistent fork-join pool for the forward pass.
//!
//! Decode runs ~200 matmuls per token, each a few microseconds of work per
//! thread, so spawning threads per op (or waking them through the OS every
//! time) would cost more than the math. Workers here spin briefly on an
//! atomic generation counter before parking, and the calling thread takes
//! part as worker 0.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A job as the workers see it: a borrowed closure whose lifetime has been
/// erased (see the SAFETY argument in [`ThreadPool::run`]).
type Job = &'static (dyn Fn(usize, usize) + Sync);

/// State shared by the caller and the workers. The hot path (posting a job,
/// picking it up, reporting completion) touches only atomics: a mutex there
/// would put a worker to sleep whenever it raced the caller, and waking it
/// costs more than the job.
struct Shared {
    /// Bumped once per job; workers run the job when they see a new value.
    generation: AtomicUsize,
    /// Workers still running the current job.
    pending: AtomicUsize,
    /// Points at the current `Job`, which lives on the caller's stack for
    /// the duration of `run`.
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
            pending: AtomicUsize::new(0),
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
                    .spawn(move || worker_loop(&shared, tid))
                    .expect("failed to spawn inference worker thread")
            })
            .collect();
        ThreadPool { shared, workers, run_lock: Mutex::new(()) }
    }

    /// Threads per job, counting the caller.
    pub fn n_threads(&self) -> usize {
        self.shared.n_threads
    }

    /// Runs `f(thread_index, n_threads)` on every thread of the pool and
    /// returns when all have finished. Panics if `f` panicked on any thread.
    pub fn run<F: Fn(usize, usize) + Sync>(&self, f: F) {
        let n = self.shared.n_threads;
        if n == 1 {
            f(0, 1);
            return;
        }
        let _guard = self.run_lock.lock().unwrap_or_else(|e| e.into_inner());
        let job: &(dyn Fn(usize, usize) + Sync) = &f;
        // SAFETY: the erased reference (and the `job` slot pointing at it)
        // is only used by workers between the generation bump below and the
        // moment `pending` reaches zero, and this function does not return
        // (even when `f` panics on this thread, thanks to catch_unwind) before
        // `pending` is zero. So `f` and `job` outlive every use.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize, usize) + Sync), Job>(job) };
        self.shared.job.store(&job as *const Job as *mut Job, SeqCst);
        self.shared.pending.store(n - 1, SeqCst);
        self.shared.generation.fetch_add(1, SeqCst);
        if self.shared.sleepers.load(SeqCst) > 0 {
            // Taking the lock orders this notify after a parking worker's
            // last look at `generation` (it holds the lock from then until
            // it waits), so the wake-up cannot be lost.
            let _g = self.shared.park.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        let mine = panic::catch_unwind(AssertUnwindSafe(|| f(0, n)));
        let waiting = Instant::now();
        let mut spins = 0u32;
        while self.shared.pending.load(SeqCst) != 0 {
            // Jobs last microseconds, so spin; but if a worker was
            // descheduled (more threads than free cores), stop burning the
            // core it may need.
            spins = spins.wrapping_add(1);
            if spins % 1024 == 0 && waiting.elapsed() > SPIN * 4 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        self.shared.job.store(std::ptr::null_mut(), SeqCst);
        if let Err(p) = mine {
            panic::resume_unwind(p);
        }
        if self.shared.panicked.swap(false, SeqCst) {
            panic!("an inference worker thread panicked");
        }
    }
}

fn worker_loop(shared: &Shared, tid: usize) {
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
        let ptr = shared.job.load(SeqCst);
        if !ptr.is_null() {
            // SAFETY: a non-null slot points at the caller's `Job`, which
            // stays alive until `pending` (decremented below) reaches zero.
            let job: Job = unsafe { *ptr };
            if panic::catch_unwind(AssertUnwindSafe(|| job(tid, shared.n_threads))).is_err() {
                shared.panicked.store(true, SeqCst);
            }
        }
        shared.pending.fetch_sub(1, SeqCst);
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

/// The half-open range of `0..n` that thread `tid` of `nth` owns, in
/// contiguous chunks rounded to `align` items.
pub fn split_range(n: usize, tid: usize, nth: usize, align: usize) -> std::ops::Range<usize> {
    let align = align.max(1);
    let units = n.div_ceil(align);
    let per = units.div_ceil(nth.max(1));
    let start = (tid * per * align).min(n);
    let end = ((tid + 1) * per * align).min(n);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn every_thread_runs_every_job() {
        let pool = ThreadPool::new(3);
        for _ in 0..200 {
            let hits = AtomicUsize::new(0);
            pool.run(|tid, n| {
                assert_eq!(n, 3);
                hits.fetch_add(1 << (tid * 8), Ordering::Relaxed);
            });
            assert_eq!(hits.load(Ordering::Relaxed), 1 | 1 << 8 | 1 << 16);
        }
    }

    #[test]
    fn ranges_partition() {
        for n in [0, 1, 7, 64, 1000] {
            for nth in 1..5 {
                let mut covered = 0;
                for t in 0..nth {
                    let r = split_range(n, t, nth, 4);
                    assert_eq!(r.start, covered.min(n));
                    covered = r.end.max(covered);
                }
                assert_eq!(covered, n);
            }
        }
    }

    #[test]
    fn worker_panic_is_reported() {
        let pool = ThreadPool::new(2);
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.run(|tid, _| {
                if tid == 1 {
                    panic!("boom");
                }
            })
        }));
        assert!(r.is_err());
        // The pool still works afterwards.
        let hits = AtomicUsize::new(0);
        pool.run(|_, _| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 2);
    }
}
