//! A small persistent fork-join pool for the forward pass.
//!
//! Decode runs ~200 matmuls per token, each a few microseconds of work per
//! thread, so spawning threads per op (or waking them through the OS every
//! time) would cost more than the math. Workers here spin briefly on an
//! atomic generation counter before parking, and the calling thread takes
//! part as worker 0.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A job as the workers see it: a borrowed closure whose lifetime has been
/// erased (see the SAFETY argument in [`ThreadPool::run`]).
type Job = &'static (dyn Fn(usize, usize) + Sync);

struct Shared {
    /// Bumped once per job; workers run the job when they see a new value.
    generation: AtomicUsize,
    /// Workers still running the current job.
    pending: AtomicUsize,
    job: Mutex<Option<Job>>,
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
const SPIN: Duration = Duration::from_micros(200);

impl ThreadPool {
    /// A pool of `n_threads` (≥ 1) threads, counting the caller.
    pub fn new(n_threads: usize) -> ThreadPool {
        let n_threads = n_threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            job: Mutex::new(None),
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
        // SAFETY: the erased reference is only used by workers between the
        // generation bump below and the moment `pending` reaches zero, and
        // this function does not return (even when `f` panics on this thread,
        // thanks to catch_unwind) before `pending` is zero and the slot is
        // cleared. So `f` outlives every use.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize, usize) + Sync), Job>(job) };
        *self.shared.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
        self.shared.pending.store(n - 1, Ordering::Release);
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        {
            // Wake parked workers; spinning ones see the generation change.
            let _g = self.shared.job.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        let mine = panic::catch_unwind(AssertUnwindSafe(|| f(0, n)));
        while self.shared.pending.load(Ordering::Acquire) != 0 {
            std::hint::spin_loop();
        }
        *self.shared.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Err(p) = mine {
            panic::resume_unwind(p);
        }
        if self.shared.panicked.swap(false, Ordering::AcqRel) {
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
        loop {
            if shared.shutdown.load(Ordering::Acquire) {
                return;
            }
            if shared.generation.load(Ordering::Acquire) != seen {
                break;
            }
            spins += 1;
            if spins % 64 == 0 && start.elapsed() > SPIN {
                let guard = shared.job.lock().unwrap_or_else(|e| e.into_inner());
                if shared.generation.load(Ordering::Acquire) == seen
                    && !shared.shutdown.load(Ordering::Acquire)
                {
                    drop(shared.wake.wait_timeout(guard, Duration::from_millis(100)));
                }
            } else {
                std::hint::spin_loop();
            }
        }
        seen = shared.generation.load(Ordering::Acquire);
        let job = *shared.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = job {
            if panic::catch_unwind(AssertUnwindSafe(|| job(tid, shared.n_threads))).is_err() {
                shared.panicked.store(true, Ordering::Release);
            }
        }
        shared.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        {
            let _g = self.shared.job.lock().unwrap_or_else(|e| e.into_inner());
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
