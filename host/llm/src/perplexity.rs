//! Perplexity as `llama-perplexity` computes it, so numbers are comparable:
//! the text (BOS per model) is cut into `floor(n / n_ctx)` chunks; each
//! chunk starts from an empty cache with its first token replaced by BOS
//! when the model adds one; predictions at positions `n_ctx/2 .. n_ctx-1`
//! are scored.

use std::sync::Arc;

use crate::context::Context;
use crate::kv_cache::KvTypes;
use crate::model::Model;
use crate::threadpool::ThreadPool;
use crate::ModelError;

/// The result of [`perplexity`].
#[derive(Clone, Debug)]
pub struct Perplexity {
    pub ppl: f64,
    /// Standard error of the estimate, as llama-perplexity prints it.
    pub stderr: f64,
    pub chunks: usize,
    pub n_tokens: usize,
    /// Scored predictions.
    pub count: usize,
}

/// Negative log-likelihood of `target` under `logits` (computed in f64).
pub fn nll(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    -((logits[target as usize] as f64 - max) - sum.ln())
}

/// Scores `text` with keys and values stored as `kv_types`;
/// `progress(chunk, n_chunks, running_ppl)` after each chunk.
pub fn perplexity(
    model: &Arc<Model>,
    pool: Arc<ThreadPool>,
    text: &str,
    n_ctx: usize,
    kv_types: KvTypes,
    mut progress: impl FnMut(usize, usize, f64),
) -> Result<Perplexity, ModelError> {
    if n_ctx < 4 {
        return Err(ModelError::ContextTooLarge { requested: n_ctx });
    }
    let tok = model.tokenizer();
    let tokens = tok.encode(text, true, true);
    let chunks = tokens.len() / n_ctx;
    if chunks == 0 {
        return Err(ModelError::ContextFull { n_ctx, needed: tokens.len() });
    }
    let bos = if tok.add_bos() { tok.bos() } else { None };
    let n_vocab = model.config().n_vocab;
    let mut ctx = Context::with_kv_types(Arc::clone(model), pool, n_ctx, kv_types)?;
    // Every chunk starts from the empty context: nothing to rewind to.
    ctx.drop_checkpoints();
    let first = n_ctx / 2;
    let (mut sum, mut sum2, mut count) = (0f64, 0f64, 0usize);
    for c in 0..chunks {
        let mut chunk = tokens[c * n_ctx..(c + 1) * n_ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        ctx.clear();
        let logits = ctx.eval(&chunk, true)?;
        for p in first..n_ctx - 1 {
            let v = nll(&logits[p * n_vocab..(p + 1) * n_vocab], chunk[p + 1]);
            sum += v;
            sum2 += v * v;
            count += 1;
        }
        progress(c, chunks, (sum / count as f64).exp());
    }
    let mean = sum / count as f64;
    let ppl = mean.exp();
    let var = sum2 / count as f64 - mean * mean;
    let stderr = if var > 0.0 && count > 1 { (var / (count - 1) as f64).sqrt() * ppl } else { 0.0 };
    Ok(Perplexity { ppl, stderr, chunks, n_tokens: tokens.len(), count })
}
