//! Embeddings for guests: texts to vectors under the guest's limits (the
//! texts' bytes, its context memory, its deadline), for the WasmEdge
//! `embedding` config key and `edgewasm:llm`'s `model.embed`.

use std::sync::Arc;

use edgewasm_llm::embed::{bytes_for, embed_tokens, EmbedOptions};
use edgewasm_llm::Model;

use crate::engine::GuestEnv;
use crate::error::{NnError, NnResult};

/// Most texts in one request: each becomes a vector the host returns in one
/// piece, so a guest cannot make the host hold millions of them.
pub const MAX_TEXTS: usize = 4096;

/// L2-normalised embeddings of `texts` with the model's pooling, each text
/// at most the guest's context size (`ctx_size`, else its default) in
/// tokens. The memory the batch needs is counted against
/// `--max-kv-memory` while it runs.
pub fn embed(env: &Arc<GuestEnv>, model: &Model, texts: &[String], ctx_size: Option<usize>) -> NnResult<Vec<Vec<f32>>> {
    let limits = &env.limits;
    if texts.len() > MAX_TEXTS {
        return Err(NnError::too_large(format!("{} texts in one request (limit {MAX_TEXTS})", texts.len())));
    }
    let total = texts.iter().try_fold(0usize, |a, t| a.checked_add(t.len())).unwrap_or(usize::MAX);
    limits.check_prompt_bytes("the texts", total)?;
    limits.check_deadline()?;
    let past_deadline = || limits.check_deadline().is_err();
    let mut seqs = Vec::with_capacity(texts.len());
    for t in texts {
        let ids = model.tokenizer().encode_checked(t, true, true, &past_deadline).map_err(|_| NnError::timeout())?;
        seqs.push(ids);
    }
    embed_ids(env, model, &seqs, ctx_size)
}

/// [`embed`] for texts already tokenized (with the model's special tokens).
pub fn embed_ids(env: &Arc<GuestEnv>, model: &Model, seqs: &[Vec<u32>], ctx_size: Option<usize>) -> NnResult<Vec<Vec<f32>>> {
    let limits = &env.limits;
    let n_ctx = limits.context_size(ctx_size, model.config().n_ctx_train)?;
    let opts = EmbedOptions { n_ctx, kv_types: limits.kv_types, deadline: limits.deadline, ..EmbedOptions::default() };
    let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
    let bytes = bytes_for(model.config(), &lens, &opts).ok_or_else(|| NnError::too_large("the memory to embed these texts overflows"))?;
    // Held while the batch runs, like a context's KV cache.
    let _permit = env.slots.acquire(bytes)?;
    embed_tokens(model, &env.pool, seqs, &opts).map_err(NnError::from)
}
