//! `edgewasm bench`: prompt-processing (pp) and text-generation (tg)
//! throughput, measured like llama-bench: one warm-up run, then `-r`
//! repetitions, reported as mean ± stddev tokens/s. With `--bandwidth`, also
//! the machine's memory read bandwidth per thread count and the decode speed
//! it allows (decode reads every weight once per token). With `--like
//! NAME[:TYPE]`, the model is a random-weight one with the exact shapes of
//! a named real model (`edgewasm_llm::synth`), made on the spot. With
//! `-d`, each test runs after that many tokens already in the context, as
//! llama-bench's `-d` does.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Parser;
use edgewasm_gguf::GgufFile;
use edgewasm_kernels::gemm::WeightArena;
use edgewasm_llm::quantize::Ftype;
use edgewasm_llm::{synth, Context, Model, ThreadPool};

use super::args::ModelArgs;

/// Measure prefill and decode speed.
#[derive(Parser, Debug)]
pub struct BenchCommand {
    #[command(flatten)]
    model: ModelArgs,
    /// Thread counts to test, comma-separated.
    #[arg(long, short, value_parser = super::args::positive, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Prompt lengths for the pp test (0 skips it).
    #[arg(short = 'p', long = "n-prompt", value_delimiter = ',', default_value = "128")]
    n_prompt: Vec<usize>,
    /// Tokens to generate for the tg test (0 skips it).
    #[arg(short = 'n', long = "n-gen", value_delimiter = ',', default_value = "64")]
    n_gen: Vec<usize>,
    /// Context depths to measure at, comma-separated, as llama-bench's
    /// `-d`: that many tokens are evaluated once into the context, and each
    /// run starts from them (rewinding to the depth).
    #[arg(short = 'd', long = "n-depth", value_delimiter = ',', default_value = "0")]
    n_depth: Vec<usize>,
    #[command(flatten)]
    kv: super::args::KvCacheArgs,
    /// Repetitions after the warm-up run.
    #[arg(short = 'r', long, value_parser = super::args::positive, default_value_t = 5)]
    repetitions: usize,
    /// JSON lines instead of a markdown table.
    #[arg(long)]
    json: bool,
    /// Also measure memory read bandwidth with each thread count, and the
    /// decode ceiling it sets: weight bytes per token / bandwidth.
    #[arg(long)]
    bandwidth: bool,
    /// Bench a random-weight model with the exact shapes and vocabulary
    /// size of a named real model, in a llama-quantize file type (default
    /// q4_k_m): `llama-3.2-1b`, `qwen3.5-0.8b:q8_0`... Values don't change
    /// speed; `--like list` names them all.
    #[arg(long, value_name = "NAME[:TYPE]", conflicts_with = "model")]
    like: Option<String>,
    /// With --like: also write the model to PATH (to run llama-bench on the
    /// same bytes).
    #[arg(long, value_name = "PATH", requires = "like")]
    write: Option<PathBuf>,
}

/// The `--like` model, written to `write` if given: its display name and
/// file size, and the model.
fn like_model(spec: &str, write: Option<&PathBuf>) -> Result<(String, u64, Arc<Model>)> {
    if spec == "list" {
        for l in synth::LIKE {
            println!("{:<14} {:<10} {}", l.name, l.arch, l.source);
        }
        std::process::exit(0);
    }
    let (name, ty) = spec.split_once(':').unwrap_or((spec, "q4_k_m"));
    let like = synth::find(name).ok_or_else(|| anyhow::anyhow!("--like: no model named {name:?}; known: {}", synth::names()))?;
    let ftype = Ftype::from_name(ty).ok_or_else(|| {
        let known: Vec<String> = Ftype::ALL.iter().map(|f| f.name().to_ascii_lowercase()).collect();
        anyhow::anyhow!("--like: unknown file type {ty:?}; known: {}", known.join(", "))
    })?;
    // Written to a file and mapped, never held in memory twice: a model
    // like Gemma 4 E4B is gigabytes.
    let writer = like.build(ftype).with_context(|| format!("making a model like {name}"))?;
    let path = match write {
        Some(path) => path.clone(),
        None => std::env::temp_dir().join(format!("edgewasm-like-{}-{}.gguf", std::process::id(), like.name)),
    };
    writer.write_file(&path).with_context(|| format!("writing {}", path.display()))?;
    drop(writer);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let file = GgufFile::open(&path).with_context(|| format!("reading back {}", path.display()));
    if write.is_none() {
        // The mapping keeps the data; the name goes now.
        let _ = std::fs::remove_file(&path);
    }
    let file = file?;
    let model = Model::from_gguf(Arc::new(file)).with_context(|| format!("loading the model like {name}"))?;
    Ok((format!("like-{}-{}", like.name, ty.to_ascii_lowercase()), size, Arc::new(model)))
}

struct Sample {
    test: String,
    threads: usize,
    tps: Vec<f64>,
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// Deterministic token ids spread over the vocabulary (as llama-bench
/// feeds random tokens: the content does not change the cost).
fn tokens(n: usize, n_vocab: usize) -> Vec<u32> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n_vocab as u64) as u32
        })
        .collect()
}

/// Prefill of `n` tokens after the first `depth` cached ones.
fn run_pp(ctx: &mut Context, depth: usize, n: usize) -> Result<f64> {
    ctx.rewind(depth)?;
    let t = tokens(n, ctx.model().config().n_vocab);
    let start = Instant::now();
    ctx.eval(&t, false)?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Decode of `n` tokens, one at a time, after the first `depth` cached ones.
fn run_tg(ctx: &mut Context, depth: usize, n: usize) -> Result<f64> {
    ctx.rewind(depth)?;
    let t = tokens(n, ctx.model().config().n_vocab);
    let start = Instant::now();
    for &tok in &t {
        ctx.eval(&[tok], false)?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Bytes of weights a decode step reads: every tensor once, except the
/// lookup tables, of which only a token's row is read: the token embedding
/// when a separate output matrix exists (when tied, it *is* the output
/// matrix), and Gemma 4's per-layer embeddings.
fn weight_bytes_per_token(model: &Model) -> u64 {
    let file = model.file();
    let untied = file.tensor("output.weight").is_some();
    let lookup = |name: &str| (untied && name == "token_embd.weight") || name == "per_layer_token_embd.weight";
    file.tensors().iter().filter(|t| !lookup(&t.name)).map(|t| t.size_bytes).sum()
}

/// The rate (GB/s) at which `pool` reads a 256 MiB buffer, best of 5: the
/// ceiling for a bandwidth-bound decode. The buffer lives in a huge-page
/// arena like the model's interleaved weights, so both see the same TLB.
fn read_bandwidth(pool: &ThreadPool) -> Result<f64> {
    const BYTES: usize = 256 << 20;
    let mut buf = WeightArena::new(BYTES)
        .and_then(|arena| arena.alloc(BYTES))
        .ok_or_else(|| anyhow::anyhow!("cannot map {BYTES} bytes for the bandwidth probe"))?;
    buf.fill(1); // every page resident
    let buf: &[u8] = &buf;
    let words = BYTES / 8;
    let chunk = pool.chunk_size(words, 2, 1);
    let mut best = 0.0f64;
    for _ in 0..5 {
        let total = AtomicU64::new(0);
        let start = Instant::now();
        pool.for_each_chunk(words, chunk, |r| {
            let bytes = &buf[r.start * 8..r.end * 8];
            let sum = bytes.chunks_exact(8).fold(0u64, |a, w| a.wrapping_add(u64::from_ne_bytes(w.try_into().unwrap())));
            total.fetch_add(sum, Relaxed);
        });
        let secs = start.elapsed().as_secs_f64();
        // Checking the sum keeps the reads from being optimised away.
        anyhow::ensure!(total.load(Relaxed) == (words as u64).wrapping_mul(0x0101_0101_0101_0101), "bandwidth probe: wrong sum");
        best = best.max(BYTES as f64 / secs / 1e9);
    }
    Ok(best)
}

impl BenchCommand {
    pub fn execute(self) -> Result<()> {
        let (file_name, size, model) = match &self.like {
            Some(spec) => like_model(spec, self.write.as_ref())?,
            None => {
                let path = self.model.resolve()?;
                let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                (name, std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0), self.model.load()?)
            }
        };
        let size_mib = size as f64 / 1048576.0;
        let commit = env!("EDGEWASM_GIT_COMMIT");
        let path_name = edgewasm_kernels::active_path().name();
        let features = edgewasm_kernels::cpu_features().join(",");
        let mut samples = Vec::new();
        let mut ceilings = Vec::new();
        let per_token = weight_bytes_per_token(&model);
        for &threads in &self.threads {
            let pool = Arc::new(ThreadPool::new(threads));
            if self.bandwidth {
                let gbs = read_bandwidth(&pool)?;
                let ceiling = gbs * 1e9 / per_token as f64;
                if self.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "test": "mem-read", "threads": threads, "gb_per_s": gbs,
                            "weight_bytes_per_token": per_token, "tg_ceiling_tokens_per_s": ceiling,
                        })
                    );
                }
                ceilings.push((threads, gbs, ceiling));
            }
            for &depth in &self.n_depth {
                let longest = self.n_prompt.iter().chain(&self.n_gen).copied().max().unwrap_or(0);
                let mut ctx = Context::with_kv_types(Arc::clone(&model), Arc::clone(&pool), depth + longest + 1, self.kv.types())
                    .context("creating the benchmark context")?;
                if depth == 0 {
                    // Runs restart from the empty context, so turn
                    // checkpoints of a recurrent state would be copies kept
                    // for nothing (llama-bench keeps none either).
                    ctx.drop_checkpoints();
                } else {
                    // Filled once; each run rewinds to it (for recurrent
                    // layers, to the checkpoint this prompt leaves).
                    ctx.eval(&tokens(depth, model.config().n_vocab), false).context("filling the context to the depth")?;
                }
                let at = if depth > 0 { format!(" @ d{depth}") } else { String::new() };
                let tests = self.n_prompt.iter().filter(|&&n| n > 0).map(|&n| (format!("pp{n}{at}"), n, true))
                    .chain(self.n_gen.iter().filter(|&&n| n > 0).map(|&n| (format!("tg{n}{at}"), n, false)));
                for (name, n, is_pp) in tests {
                    let mut run = |_: usize| if is_pp { run_pp(&mut ctx, depth, n) } else { run_tg(&mut ctx, depth, n) };
                    run(0)?; // warm-up: page in the weights, settle the thread pool
                    let tps = (0..self.repetitions.max(1)).map(&mut run).collect::<Result<Vec<_>>>()?;
                    let s = Sample { test: name, threads, tps };
                    if self.json {
                        let (m, sd) = mean_std(&s.tps);
                        println!(
                            "{}",
                            serde_json::json!({
                                "model": file_name, "model_size_mib": size_mib, "test": s.test, "threads": s.threads,
                                "n_depth": depth, "cache_type_k": self.kv.k.name(), "cache_type_v": self.kv.v.name(),
                                "tokens_per_s_mean": m, "tokens_per_s_stddev": sd, "samples": s.tps,
                                "commit": commit, "kernel_path": path_name, "cpu_features": features,
                                "arch": std::env::consts::ARCH,
                            })
                        );
                    }
                    samples.push(s);
                }
            }
        }
        if !self.json {
            let kv = format!("{}/{}", self.kv.k, self.kv.v);
            println!("| model | size | threads | kernel | kv | test | t/s |");
            println!("| --- | ---: | ---: | --- | --- | --- | ---: |");
            for s in &samples {
                let (m, sd) = mean_std(&s.tps);
                println!("| {file_name} | {size_mib:.1} MiB | {} | {path_name} | {kv} | {} | {m:.2} ± {sd:.2} |", s.threads, s.test);
            }
            for (threads, gbs, ceiling) in &ceilings {
                let reached = samples
                    .iter()
                    .filter(|s| s.threads == *threads && s.test.starts_with("tg"))
                    .map(|s| format!("; {} reached {:.0}%", s.test, 100.0 * mean_std(&s.tps).0 / ceiling))
                    .collect::<String>();
                println!(
                    "\nmemory read, {threads} thread(s): {gbs:.1} GB/s; decode reads {:.1} MB of weights per token, \
                     so tg <= {ceiling:.0} t/s{reached}",
                    per_token as f64 / 1e6
                );
            }
            println!("\nbuild: {commit}, {} cpu features: {features}", std::env::consts::ARCH);
        }
        Ok(())
    }
}
