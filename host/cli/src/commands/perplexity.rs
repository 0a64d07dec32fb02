//! `edgewasm perplexity`: llama-perplexity's protocol on a text file.

use anyhow::{Context as _, Result};
use clap::Parser;
use edgewasm_llm::perplexity::perplexity;

use super::args::{ModelArgs, ThreadsArgs};

/// Perplexity of a text file, scored as llama-perplexity does.
#[derive(Parser, Debug)]
pub struct PerplexityCommand {
    #[command(flatten)]
    model: ModelArgs,
    /// The text file.
    #[arg(long, short)]
    file: std::path::PathBuf,
    /// Chunk length in tokens.
    #[arg(long, value_parser = super::args::positive, default_value_t = 512)]
    ctx: usize,
    #[command(flatten)]
    kv: super::args::KvCacheArgs,
    #[command(flatten)]
    threads: ThreadsArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

impl PerplexityCommand {
    pub fn execute(self) -> Result<()> {
        let model = self.model.load()?;
        let text = std::fs::read_to_string(&self.file)
            .with_context(|| format!("reading {}", self.file.display()))?;
        let pool = self.threads.pool();
        let start = std::time::Instant::now();
        let r = perplexity(&model, pool, &text, self.ctx, self.kv.types(), |i, n, ppl| {
            if !self.json {
                eprintln!("[{}/{}] running ppl {:.4}", i + 1, n, ppl);
            }
        })?;
        let secs = start.elapsed().as_secs_f64();
        if self.json {
            println!(
                "{}",
                serde_json::json!({"ppl": r.ppl, "ppl_stderr": r.stderr, "chunks": r.chunks, "n_ctx": self.ctx, "cache_type_k": self.kv.k.name(), "cache_type_v": self.kv.v.name(), "tokens": r.n_tokens, "seconds": secs})
            );
        } else {
            println!("perplexity: {:.4} +/- {:.5} ({} chunks of {}, {:.1} s)", r.ppl, r.stderr, r.chunks, self.ctx, secs);
        }
        Ok(())
    }
}
