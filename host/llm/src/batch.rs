//! Continuous batching: contexts of one model that decode at the same time
//! (requests served concurrently, each on its own thread) share one
//! forward pass, as llama-server's parallel slots do. The weights are read
//! once per step for every sequence instead of once per sequence.
//!
//! There is no scheduler thread. A context that wants its next token joins
//! the queue; if no pass is being prepared, its thread becomes the leader:
//! it waits briefly for the other sequences of the previous pass to come
//! back (at most [`Batcher::max_wait`], and not at all when it ran alone),
//! takes the queue, runs the pass and hands each context its logits.
//! Threads that arrived meanwhile wait for the result, or lead the next
//! pass. Every row's logits have the bits of a lone decode (see
//! [`crate::model::Architecture::forward_rows`]), so batching never changes
//! an answer.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::ModelError;

/// Most sequences in one pass.
pub const MAX_ROWS: usize = 32;

/// How long a leader waits for the rest of the previous pass's sequences.
const MAX_WAIT: Duration = Duration::from_millis(3);

/// A queue of one-token decodes of one model (see the module docs).
#[derive(Debug)]
pub struct Batcher {
    state: Mutex<State>,
    /// A decode joined the queue (the leader may be waiting for it).
    arrived: Condvar,
    /// A pass finished (results are ready; someone may lead the next).
    finished: Condvar,
    max_wait: Duration,
    max_rows: usize,
    /// Sequences a leader waits for at least (1 in serving; tests ask for
    /// more to make passes of a known size).
    min_rows: usize,
    /// Every row's logits of a pass (used by the leader only).
    logits: Mutex<Vec<f32>>,
}

#[derive(Debug, Default)]
struct State {
    queue: Vec<Job>,
    leading: bool,
    /// Sequences in the previous pass: how many the leader waits for.
    last_rows: usize,
    next_id: u64,
    results: HashMap<u64, Result<(), ModelError>>,
    /// Passes run and rows decoded in them (for benchmarks and tests).
    passes: u64,
    rows: u64,
}

#[derive(Debug)]
struct Job {
    id: u64,
    ctx: CtxPtr,
    token: u32,
}

/// A context whose thread is parked in [`Batcher::decode`] until its job's
/// result is posted.
#[derive(Debug)]
struct CtxPtr(*mut Context);

// SAFETY: the pointer is only dereferenced by the leader while the owning
// thread is parked in `decode` (it posted the job and waits for its
// result), so exactly one thread uses the context at a time; `Context`
// itself is `Send`.
unsafe impl Send for CtxPtr {}

impl Default for Batcher {
    fn default() -> Batcher {
        Batcher::new()
    }
}

impl Batcher {
    pub fn new() -> Batcher {
        Batcher::with_limits(MAX_ROWS, 1, MAX_WAIT)
    }

    /// A batcher of at most `max_rows` sequences per pass, whose leader
    /// waits at most `max_wait` for the previous pass's sequences, or for
    /// `min_rows` when that is more.
    pub fn with_limits(max_rows: usize, min_rows: usize, max_wait: Duration) -> Batcher {
        Batcher {
            state: Mutex::new(State::default()),
            arrived: Condvar::new(),
            finished: Condvar::new(),
            max_wait,
            max_rows: max_rows.max(1),
            min_rows: min_rows.max(1),
            logits: Mutex::new(Vec::new()),
        }
    }

    /// How long a leader waits for the previous pass's sequences.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// Passes run, and sequences decoded in them, so far.
    pub fn counts(&self) -> (u64, u64) {
        let st = self.lock();
        (st.passes, st.rows)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decodes `token` after what `ctx` holds, in a pass with whichever
    /// other contexts of the model decode at the same time. On return,
    /// `ctx`'s logits are those of `token`.
    pub fn decode(&self, ctx: &mut Context, token: u32) -> Result<(), ModelError> {
        ctx.check_decode(token)?;
        let mut st = self.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.queue.push(Job { id, ctx: CtxPtr(ctx as *mut Context), token });
        self.arrived.notify_all();
        loop {
            if let Some(r) = st.results.remove(&id) {
                return r;
            }
            if st.leading {
                st = self.finished.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.leading = true;
            let until = Instant::now() + self.max_wait;
            while st.queue.len() < st.last_rows.max(self.min_rows).min(self.max_rows) {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                st = self.arrived.wait_timeout(st, until - now).unwrap_or_else(|e| e.into_inner()).0;
            }
            let take = st.queue.len().min(self.max_rows);
            let jobs: Vec<Job> = st.queue.drain(..take).collect();
            st.last_rows = jobs.len();
            drop(st);
            let results = {
                let mut logits = self.logits.lock().unwrap_or_else(|e| e.into_inner());
                run(jobs, &mut logits)
            };
            st = self.lock();
            st.passes += 1;
            st.rows += results.len() as u64;
            st.results.extend(results);
            st.leading = false;
            self.finished.notify_all();
        }
    }
}

/// Runs one pass over `jobs`; every job gets a result, even if the engine
/// panics (the owners are parked waiting for one).
fn run(jobs: Vec<Job>, logits: &mut Vec<f32>) -> Vec<(u64, Result<(), ModelError>)> {
    let ids: Vec<u64> = jobs.iter().map(|j| j.id).collect();
    let pass = catch_unwind(AssertUnwindSafe(|| {
        let mut ctxs: Vec<&mut Context> = Vec::with_capacity(jobs.len());
        let mut tokens = Vec::with_capacity(jobs.len());
        let mut out = Vec::with_capacity(jobs.len());
        let mut batched = Vec::with_capacity(jobs.len());
        for j in &jobs {
            // SAFETY: see `CtxPtr`: the owner is parked until this job's
            // result is posted, and each job has a distinct context (a
            // context's thread posts one job at a time).
            let ctx = unsafe { &mut *j.ctx.0 };
            // Checked again here: time passed while the job waited.
            match ctx.check_decode(j.token) {
                Ok(()) => {
                    ctxs.push(ctx);
                    tokens.push(j.token);
                    batched.push(j.id);
                }
                Err(e) => out.push((j.id, Err(e))),
            }
        }
        if !ctxs.is_empty() {
            Context::decode_together(&mut ctxs, &tokens, logits);
            out.extend(batched.into_iter().map(|id| (id, Ok(()))));
        }
        out
    }));
    match pass {
        Ok(out) => out,
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            ids.into_iter().map(|id| (id, Err(ModelError::BatchFailed(why.clone())))).collect()
        }
    }
}
