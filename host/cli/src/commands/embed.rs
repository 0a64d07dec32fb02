//! `edgewasm embed`: embedding vectors of texts, as JSON.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use edgewasm_llm::embed::{embed_tokens, tokenize, EmbedOptions, Pooling};

use super::args::{positive, ModelArgs, ThreadsArgs};

/// Print an embedding vector for each TEXT (or each line of --file), as
/// llama.cpp's llama-embedding computes it: one JSON object per line,
/// `{"index", "tokens", "embedding"}`, or with --array one JSON array of
/// vectors.
#[derive(Parser, Debug)]
pub struct EmbedCommand {
    #[command(flatten)]
    model: ModelArgs,
    /// How a text's token vectors become one: mean, cls (the first
    /// token's) or last [default: the model's `pooling_type`, else mean].
    #[arg(long, value_parser = pooling)]
    pooling: Option<Pooling>,
    /// Print the vectors as they are, not divided by their L2 norm.
    #[arg(long)]
    no_normalize: bool,
    /// Read the texts from this file (`-`: standard input), one per line.
    #[arg(long, value_name = "PATH", conflicts_with = "texts")]
    file: Option<PathBuf>,
    /// Print one JSON array of vectors instead of one object per line.
    #[arg(long)]
    array: bool,
    /// Most tokens one text may have [default: the model's trained
    /// context].
    #[arg(long, value_parser = positive)]
    ctx: Option<usize>,
    /// Tokens evaluated per forward pass; texts are packed up to it.
    #[arg(long, short = 'b', value_parser = positive, default_value_t = 512)]
    batch: usize,
    #[command(flatten)]
    threads: ThreadsArgs,
    /// Print the time taken and texts per second on standard error.
    #[arg(long, short)]
    verbose: bool,
    /// The texts.
    #[arg(required_unless_present = "file")]
    texts: Vec<String>,
}

fn pooling(s: &str) -> Result<Pooling, String> {
    s.trim().parse::<Pooling>().map_err(|e| e.to_string())
}

impl EmbedCommand {
    pub fn execute(self) -> Result<()> {
        let texts = self.read_texts()?;
        let model = self.model.load()?;
        let pool = self.threads.pool();
        let opts =
            EmbedOptions { pooling: self.pooling, normalize: !self.no_normalize, n_ctx: self.ctx.unwrap_or(0), n_batch: self.batch, ..EmbedOptions::default() };
        let start = Instant::now();
        let seqs: Vec<Vec<u32>> = texts.iter().map(|t| tokenize(&model, t)).collect();
        for (i, s) in seqs.iter().enumerate() {
            let n_ctx = if opts.n_ctx == 0 { model.config().n_ctx_train } else { opts.n_ctx };
            if s.len() > n_ctx {
                bail!("text {} has {} tokens, more than the {n_ctx} a text may have (--ctx)", i + 1, s.len());
            }
        }
        let vectors = embed_tokens(&model, &pool, &seqs, &opts).context("computing embeddings")?;
        let secs = start.elapsed().as_secs_f64();
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        if self.array {
            serde_json::to_writer(&mut out, &vectors)?;
            writeln!(out)?;
        } else {
            for (i, (v, s)) in vectors.iter().zip(&seqs).enumerate() {
                serde_json::to_writer(&mut out, &serde_json::json!({"index": i, "tokens": s.len(), "embedding": v}))?;
                writeln!(out)?;
            }
        }
        out.flush()?;
        if self.verbose {
            let n_tokens: usize = seqs.iter().map(Vec::len).sum();
            eprintln!(
                "embedded {} texts ({n_tokens} tokens, {} values each) in {:.1} ms: {:.1} texts/s, {:.1} tokens/s",
                vectors.len(),
                model.config().n_embd,
                secs * 1e3,
                vectors.len() as f64 / secs,
                n_tokens as f64 / secs
            );
        }
        Ok(())
    }

    /// The texts: the arguments, or the file's lines (a last newline ends
    /// the last line, it does not start an empty one). An empty text has
    /// no embedding: it is an error, naming its line, rather than a
    /// vector missing from the output's numbering.
    fn read_texts(&self) -> Result<Vec<String>> {
        let texts: Vec<String> = match &self.file {
            None => self.texts.clone(),
            Some(p) => {
                let content = if p.as_os_str() == "-" {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s).context("reading the texts from standard input")?;
                    s
                } else {
                    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
                };
                match content.strip_suffix('\n').unwrap_or(&content) {
                    "" if content.is_empty() => Vec::new(),
                    body => body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l).to_string()).collect(),
                }
            }
        };
        let what = if self.file.is_some() { "line" } else { "text" };
        if let Some(i) = texts.iter().position(|t| t.is_empty()) {
            bail!("{what} {} is empty: an empty text has no embedding", i + 1);
        }
        if texts.is_empty() {
            bail!("no texts to embed");
        }
        Ok(texts)
    }
}
