//! `edgewasm perplexity`: llama-perplexity's protocol on a text file.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Parser;
use edgewasm_llm::perplexity::perplexity;
use edgewasm_llm::ThreadPool;

use crate::models;

/// Perplexity of a text file, scored as llama-perplexity does.
#[derive(Parser, Debug)]
pub struct PerplexityCommand {
    /// Model file or name in models/.
    #[arg(long, short)]
    model: Option<String>,
    /// The text file.
    #[arg(long, short)]
    file: std::path::PathBuf,
    /// Chunk length in tokens.
    #[arg(long, value_parser = super::args::positive, default_value_t = 512)]
    ctx: usize,
    /// Worker threads.
    #[arg(long, short, value_parser = super::args::positive)]
    threads: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

impl PerplexityCommand {
    pub fn execute(self) -> Result<()> {
        let model = models::load(self.model.as_deref())?;
        let text = std::fs::read_to_string(&self.file)
            .with_context(|| format!("reading {}", self.file.display()))?;
        let pool = Arc::new(ThreadPool::new(self.threads.unwrap_or_else(models::default_threads)));
        let start = std::time::Instant::now();
        let r = perplexity(&model, pool, &text, self.ctx, |i, n, ppl| {
            if !self.json {
                eprintln!("[{}/{}] running ppl {:.4}", i + 1, n, ppl);
            }
        })?;
        let secs = start.elapsed().as_secs_f64();
        if self.json {
            println!(
                "{}",
                serde_json::json!({"ppl": r.ppl, "ppl_stderr": r.stderr, "chunks": r.chunks, "n_ctx": self.ctx, "tokens": r.n_tokens, "seconds": secs})
            );
        } else {
            println!("perplexity: {:.4} +/- {:.5} ({} chunks of {}, {:.1} s)", r.ppl, r.stderr, r.chunks, self.ctx, secs);
        }
        Ok(())
    }
}
