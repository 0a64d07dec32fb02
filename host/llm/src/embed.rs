//! Embeddings: one vector per text, computed as llama.cpp's
//! `llama-embedding` computes them.
//!
//! Each text is tokenized with the model's special tokens (BERT: `[CLS]
//! … [SEP]`), and its tokens' final hidden states (after the final norm of
//! a decoder; an encoder's last layer) are pooled into one vector
//! ([`Pooling`]), then L2-normalised unless asked not to.
//!
//! Batching: texts are packed back to back into one batch and evaluated
//! together, up to [`EmbedOptions::n_batch`] tokens per forward pass, each
//! text its own sequence: its rows get their own positions from 0 and
//! attend only to its own keys ([`Rows::Packed`]), so nothing leaks between
//! texts, and the weights are read once per pass, not once per text. Each
//! text's keys start at a cache slot that is a multiple of attention's
//! tile, so its vector has the same bits as when it runs alone. An
//! encoder's text must be whole in one pass (it attends both ways), so its
//! pass grows to the longest text; a decoder's long text is evaluated in
//! chunks. Models with recurrent layers (LFM2, Qwen 3.5) carry state along
//! the batch, so they get one text per pass and a fresh state for each.

use std::ops::Range;
use std::str::FromStr;
use std::time::Instant;

use crate::alloc::try_zeroed;
use crate::kv_cache::{KvCache, KvTypes};
use crate::model::attention::TILE;
use crate::model::{ForwardEnv, Model, ModelConfig, Rows, Scratch};
use crate::recurrent::RecurrentState;
use crate::threadpool::ThreadPool;
use crate::ModelError;

/// How a text's token vectors become one vector (llama.cpp's
/// `llama_pooling_type`, without `none`, one vector per token, and
/// `rank`, a reranker's classifier head).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pooling {
    /// The average of every token's vector.
    Mean,
    /// The first token's (BERT's `[CLS]`).
    Cls,
    /// The last token's.
    Last,
}

impl Pooling {
    pub const ALL: [Pooling; 3] = [Pooling::Mean, Pooling::Cls, Pooling::Last];
    /// Names as llama.cpp's `--pooling` spells them.
    pub const NAMES: &'static str = "mean, cls, last";

    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Last => "last",
        }
    }

    /// The model's own pooling (`{arch}.pooling_type`: BERT converters
    /// write it, mean or cls), else mean. llama.cpp treats a file without
    /// the key (decoders) as `none` and returns a vector per token; one
    /// vector per text needs a choice, and mean is what sentence
    /// embedding models built from decoders mostly use. `none` in the
    /// file is read the same way; `rank` and unknown values are refused.
    pub fn for_model(c: &ModelConfig) -> Result<Pooling, ModelError> {
        match c.pooling_type {
            None | Some(-1) | Some(0) | Some(1) => Ok(Pooling::Mean),
            Some(2) => Ok(Pooling::Cls),
            Some(3) => Ok(Pooling::Last),
            Some(v) => {
                let name = if v == 4 { "rank".to_string() } else { v.to_string() };
                Err(ModelError::Unsupported { what: "pooling type", name: format!("{name} (`{}.pooling_type`)", c.arch), supported: Pooling::NAMES })
            }
        }
    }
}

impl std::fmt::Display for Pooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Pooling {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Pooling, ModelError> {
        Pooling::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(s)).ok_or_else(|| ModelError::Unsupported {
            what: "pooling type",
            name: s.to_string(),
            supported: Pooling::NAMES,
        })
    }
}

/// What [`embed`] does beyond the model's own settings.
#[derive(Clone, Debug)]
pub struct EmbedOptions {
    /// `None`: [`Pooling::for_model`].
    pub pooling: Option<Pooling>,
    /// Divide each vector by its L2 norm (llama-embedding's default,
    /// `--embd-normalize 2`), so cosine similarity is a dot product.
    pub normalize: bool,
    /// Most tokens one text may have; 0: the model's trained context,
    /// which is also the most allowed (BERT has no position beyond it).
    pub n_ctx: usize,
    /// Tokens evaluated per forward pass (texts are packed up to it).
    pub n_batch: usize,
    /// How keys and values are stored while a batch runs: f16 as
    /// llama.cpp's cache and its flash attention (which casts an
    /// encoder's f32 keys and values to f16) store them.
    pub kv_types: KvTypes,
    /// Fail with [`ModelError::DeadlineExceeded`] once this has passed
    /// (checked before each forward pass).
    pub deadline: Option<Instant>,
}

impl Default for EmbedOptions {
    fn default() -> EmbedOptions {
        EmbedOptions { pooling: None, normalize: true, n_ctx: 0, n_batch: crate::context::MAX_BATCH, kv_types: KvTypes::default(), deadline: None }
    }
}

/// The tokens of `text` as llama-embedding makes them: with the model's
/// special tokens (BOS/`[CLS]`, EOS/`[SEP]` where it adds them), special
/// token text parsed.
pub fn tokenize(model: &Model, text: &str) -> Vec<u32> {
    model.tokenizer().encode(text, true, true)
}

/// One vector of `n_embd` values per text, in order. Errors: an empty text
/// ([`ModelError::EmptyInput`]), one longer than the context
/// ([`ModelError::ContextFull`]), an unsupported pooling, a deadline, an
/// allocation that fails.
pub fn embed<S: AsRef<str>>(model: &Model, pool: &ThreadPool, texts: &[S], opts: &EmbedOptions) -> Result<Vec<Vec<f32>>, ModelError> {
    let seqs = texts
        .iter()
        .map(|t| match t.as_ref() {
            "" => Err(ModelError::EmptyInput),
            t => Ok(tokenize(model, t)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    embed_tokens(model, pool, &seqs, opts)
}

/// [`embed`] for texts already tokenized.
pub fn embed_tokens<T: AsRef<[u32]>>(model: &Model, pool: &ThreadPool, seqs: &[T], opts: &EmbedOptions) -> Result<Vec<Vec<f32>>, ModelError> {
    let c = model.config();
    let pooling = match opts.pooling {
        Some(p) => p,
        None => Pooling::for_model(c)?,
    };
    let n_ctx = context_limit(c, opts)?;
    for s in seqs {
        let s = s.as_ref();
        if s.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        if s.len() > n_ctx {
            return Err(ModelError::ContextFull { n_ctx, needed: s.len() });
        }
        if let Some(&bad) = s.iter().find(|&&t| t as usize >= c.n_vocab) {
            return Err(ModelError::TokenOutOfRange { token: bad, n_vocab: c.n_vocab });
        }
    }
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let lens: Vec<usize> = seqs.iter().map(|s| s.as_ref().len()).collect();
    let plan = Plan::new(c, &lens, opts.n_batch);
    let d = c.n_embd;
    let mut kv = KvCache::new(&c.kv_layout(), c.n_head_kv, plan.kv_len, opts.kv_types)?;
    let mut rs = RecurrentState::new(&c.state_sizes())?;
    let mut scratch = Scratch::new(c, plan.n_max)?;
    let mut hidden = try_zeroed::<f32>("embedding rows", plan.n_max.saturating_mul(d))?;
    let mut out = Vec::with_capacity(seqs.len());
    let mut g = Group::default();
    for group in &plan.groups {
        g.lay_out(&seqs[group.clone()], c.causal);
        let mut acc = vec![vec![0f64; d]; group.len()];
        // Every key a row sees was written by this group: nothing to clear
        // in the cache, only the recurrent state.
        rs.reset();
        let mut seq = 0;
        for a in (0..g.tokens.len()).step_by(plan.n_max) {
            if opts.deadline.is_some_and(|t| Instant::now() >= t) {
                return Err(ModelError::DeadlineExceeded);
            }
            let b = (a + plan.n_max).min(g.tokens.len());
            let mut env = ForwardEnv { file: model.file(), config: c, pool, kv: &mut kv, rs: &mut rs, scratch: &mut scratch };
            let rows = Rows::Packed { pos: &g.pos[a..b], slots: &g.slots[a..b], keys: &g.keys[a..b], n_ctx };
            model.arch().hidden(&mut env, &g.tokens[a..b], rows, &mut hidden);
            for r in a..b {
                while r >= g.ends[seq] {
                    seq += 1;
                }
                let keep = match pooling {
                    Pooling::Mean => true,
                    Pooling::Cls => g.pos[r] == 0,
                    Pooling::Last => r + 1 == g.ends[seq],
                };
                if keep {
                    acc[seq].iter_mut().zip(&hidden[(r - a) * d..(r - a + 1) * d]).for_each(|(s, &v)| *s += f64::from(v));
                }
            }
        }
        for (v, len) in acc.into_iter().zip(&lens[group.clone()]) {
            let div = if pooling == Pooling::Mean { *len as f64 } else { 1.0 };
            let mut e: Vec<f32> = v.into_iter().map(|x| (x / div) as f32).collect();
            if opts.normalize {
                l2_normalize(&mut e);
            }
            out.push(e);
        }
    }
    Ok(out)
}

/// The rows of one group of texts: their tokens back to back, each text's
/// keys from a cache slot that starts a tile of attention.
#[derive(Debug, Default)]
struct Group {
    tokens: Vec<u32>,
    /// Each row's position in its text, cache slot, and the slots of the
    /// keys it sees.
    pos: Vec<u32>,
    slots: Vec<u32>,
    keys: Vec<(u32, u32)>,
    /// The row after each text's last.
    ends: Vec<usize>,
}

impl Group {
    fn lay_out<T: AsRef<[u32]>>(&mut self, seqs: &[T], causal: bool) {
        let Group { tokens, pos, slots, keys, ends } = self;
        tokens.clear();
        pos.clear();
        slots.clear();
        keys.clear();
        ends.clear();
        let mut slot = 0;
        for s in seqs {
            let s = s.as_ref();
            let (start, end) = (slot as u32, (slot + s.len()) as u32);
            tokens.extend_from_slice(s);
            pos.extend(0..s.len() as u32);
            slots.extend(start..end);
            keys.extend((start..end).map(|k| (start, if causal { k + 1 } else { end })));
            ends.push(tokens.len());
            slot = (slot + s.len()).next_multiple_of(TILE);
        }
    }
}

/// Bytes [`embed_tokens`] allocates for texts of `lens` tokens (KV cache,
/// recurrent state, activation buffers, the rows' hidden states) beyond
/// its small per-text bookkeeping, for checking a memory limit first;
/// `None` on overflow.
pub fn bytes_for(c: &ModelConfig, lens: &[usize], opts: &EmbedOptions) -> Option<usize> {
    let plan = Plan::new(c, lens, opts.n_batch);
    KvCache::bytes_for(&c.kv_layout(), c.n_head_kv, plan.kv_len, opts.kv_types)?
        .checked_add(RecurrentState::bytes_for(&c.state_sizes())?)?
        .checked_add(Scratch::bytes_for(c, plan.n_max)?)?
        .checked_add(plan.n_max.checked_mul(c.n_embd)?.checked_mul(size_of::<f32>())?)
}

/// The most tokens a text may have under `opts`.
fn context_limit(c: &ModelConfig, opts: &EmbedOptions) -> Result<usize, ModelError> {
    match opts.n_ctx {
        0 => Ok(c.n_ctx_train),
        n if n <= c.n_ctx_train => Ok(n),
        n => Err(ModelError::ContextTooLarge { requested: n }),
    }
}

/// Which texts run together, and the buffers that takes.
#[derive(Debug)]
struct Plan {
    /// Consecutive texts evaluated from an empty cache together.
    groups: Vec<Range<usize>>,
    /// Rows per forward pass.
    n_max: usize,
    /// Cache positions: the largest group's, its texts starting at
    /// multiples of [`TILE`].
    kv_len: usize,
}

impl Plan {
    fn new(c: &ModelConfig, lens: &[usize], n_batch: usize) -> Plan {
        let longest = lens.iter().copied().max().unwrap_or(0);
        // An encoder's text cannot be split across passes.
        let budget = if c.causal { n_batch.max(1) } else { n_batch.max(longest) };
        let one_per_group = c.state_sizes().iter().any(|&s| s > 0);
        let mut groups: Vec<Range<usize>> = Vec::new();
        // Tokens and cache slots of the group being filled; the most rows
        // and slots of any.
        let (mut total, mut slots) = (0usize, 0usize);
        let (mut rows, mut kv_len) = (0usize, 0usize);
        for (i, &len) in lens.iter().enumerate() {
            match groups.last_mut() {
                Some(g) if !one_per_group && total + len <= budget => {
                    g.end = i + 1;
                    total += len;
                    slots = slots.next_multiple_of(TILE) + len;
                }
                _ => {
                    groups.push(i..i + 1);
                    (total, slots) = (len, len);
                }
            }
            rows = rows.max(total);
            kv_len = kv_len.max(slots);
        }
        Plan { groups, n_max: budget.min(rows).max(1), kv_len: kv_len.max(1) }
    }
}

/// `v / |v|` as llama.cpp's `common_embd_normalize` (norm 2): the sum of
/// squares in f64; a zero vector stays zero.
pub fn l2_normalize(v: &mut [f32]) {
    let sum: f64 = v.iter().map(|&x| f64::from(x * x)).sum::<f64>().sqrt();
    let inv = if sum > 0.0 { (1.0 / sum) as f32 } else { 0.0 };
    v.iter_mut().for_each(|x| *x *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_names_round_trip() {
        for p in Pooling::ALL {
            assert_eq!(p.name().parse::<Pooling>().unwrap(), p);
        }
        assert!(matches!("rank".parse::<Pooling>(), Err(ModelError::Unsupported { .. })));
    }

    #[test]
    fn l2_normalize_matches_llama_cpp() {
        let mut v = vec![3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut z = vec![0.0; 3];
        l2_normalize(&mut z);
        assert_eq!(z, [0.0; 3]);
    }
}
