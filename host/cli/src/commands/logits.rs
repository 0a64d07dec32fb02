//! `edgewasm logits`: teacher-forced evaluation, the debugging tool the
//! reference tests are built on.

use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use edgewasm_llm::Context;

use super::args::{ModelArgs, ThreadsArgs};

/// Evaluate a token sequence and print the top-K logits.
#[derive(Parser, Debug)]
pub struct LogitsCommand {
    #[command(flatten)]
    model: ModelArgs,
    /// Comma-separated token ids to feed.
    #[arg(long, value_delimiter = ',', conflicts_with = "prompt", required_unless_present = "prompt")]
    ids: Vec<u32>,
    /// Text to tokenize (BOS per the model, special tokens parsed) and feed.
    #[arg(long, short)]
    prompt: Option<String>,
    /// How many of the highest logits to print.
    #[arg(long, value_parser = super::args::positive, default_value_t = 10)]
    top: usize,
    /// Print every position, not only the last.
    #[arg(long)]
    all_positions: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Print one FNV-1a 64 digest of the exact bits of every printed
    /// logit (all of the vocabulary, not only the top-K) instead of the
    /// table: two machines agree bit for bit iff their digests match.
    #[arg(long, conflicts_with = "json")]
    digest: bool,
    #[command(flatten)]
    kv: super::args::KvCacheArgs,
    #[command(flatten)]
    threads: ThreadsArgs,
}

/// FNV-1a 64 over the little-endian bytes of each value's bit pattern.
pub fn logits_digest(logits: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in logits {
        for b in v.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The `k` largest logits as (id, logit), highest first; ties by lower id.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(idx.len());
    let cmp = |a: &u32, b: &u32| {
        logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b))
    };
    if k > 0 && k < idx.len() {
        idx.select_nth_unstable_by(k - 1, cmp);
    }
    idx.truncate(k);
    idx.sort_by(cmp);
    idx.into_iter().map(|i| (i, logits[i as usize])).collect()
}

impl LogitsCommand {
    pub fn execute(self) -> Result<()> {
        let model = self.model.load()?;
        let ids = match &self.prompt {
            Some(p) => model.tokenizer().encode(p, true, true),
            None => self.ids.clone(),
        };
        if ids.is_empty() {
            bail!("nothing to evaluate: the input has no tokens");
        }
        let n_vocab = model.config().n_vocab;
        let pool = self.threads.pool();
        let mut ctx = Context::with_kv_types(Arc::clone(&model), pool, ids.len(), self.kv.types())?;
        // One evaluation, never rewound.
        ctx.drop_checkpoints();
        let logits = ctx.eval(&ids, self.all_positions).context("evaluating")?;
        let first = if self.all_positions { 0 } else { ids.len() - 1 };
        if self.digest {
            let rows = ids.len() - first;
            println!("digest {:016x} positions {rows} vocab {n_vocab}", logits_digest(&logits[..rows * n_vocab]));
            return Ok(());
        }
        for (row, pos) in (first..ids.len()).enumerate() {
            let top = top_k(&logits[row * n_vocab..(row + 1) * n_vocab], self.top);
            if self.json {
                let line = serde_json::json!({
                    "pos": pos,
                    "token": ids[pos],
                    "top_ids": top.iter().map(|t| t.0).collect::<Vec<_>>(),
                    "top_logits": top.iter().map(|t| t.1).collect::<Vec<_>>(),
                });
                println!("{line}");
            } else {
                println!("pos {pos} (token {}):", ids[pos]);
                for (id, l) in top {
                    let piece = model.tokenizer().token_text(id).unwrap_or("");
                    println!("  {id:>7} {l:>10.4}  {piece:?}");
                }
            }
        }
        Ok(())
    }
}
