//! The sandbox a guest runs in, as `run` and `serve` share it: preloaded
//! models, directories, environment, and the operator's limits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use edgewasm_llm::ThreadPool;
use edgewasm_nn::{Limits, ModelSet, Preload, DEFAULT_NAME};
use edgewasm_runtime::RunConfig;

use super::args::ThreadsArgs;
use super::run::{parse_dir, parse_duration, parse_size};
use crate::models;

/// `--max-handles`: at least 1, at most the slots a core module's handle
/// table can address.
fn max_handles(s: &str) -> Result<usize, String> {
    let n = super::args::positive(s)?;
    let max = edgewasm_nn::handles::MAX_SLOTS;
    if n > max {
        return Err(format!("at most {max}"));
    }
    Ok(n)
}

/// Models, directories, environment and limits of a guest.
#[derive(Args, Debug)]
pub struct SandboxArgs {
    /// Give the guest a host directory, as GUEST inside (default: the same
    /// path); WasmEdge's GUEST:HOST form (`--dir .:.`) works too. Nothing
    /// else of the host filesystem is visible.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,
    /// Set an environment variable for the guest (NAME alone: the host's value).
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    envs: Vec<String>,
    /// Preload a model for wasi:nn `load-by-name` and edgewasm:llm (repeatable).
    /// PATH may be a file or a name in models/. Without any --model or
    /// --nn-preload the default model is preloaded as `default`.
    #[arg(long = "model", value_name = "NAME=PATH")]
    models: Vec<String>,
    /// WasmEdge-style preload: NAME:GGML:AUTO:PATH (repeatable).
    #[arg(long = "nn-preload", value_name = "NAME:GGML:AUTO:PATH")]
    nn_preload: Vec<String>,
    #[command(flatten)]
    threads: ThreadsArgs,
    #[command(flatten)]
    kv: super::args::KvCacheArgs,
    /// Most linear memory per guest memory (e.g. 256MiB, 1G, bytes).
    #[arg(long, value_name = "SIZE", default_value = "2GiB")]
    max_memory: String,
    /// Wall-clock limit, wasm and host inference (e.g. 30s, 500ms, 2m): of
    /// the whole run for `run`, of each request for `serve`.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Ceiling on tokens generated per request.
    #[arg(long, default_value_t = 4096)]
    max_tokens: usize,
    /// Largest context (KV cache positions) a guest may create.
    #[arg(long, value_parser = super::args::positive, default_value_t = 8192)]
    max_ctx: usize,
    /// Most live inference contexts per guest.
    #[arg(long, value_parser = super::args::positive, default_value_t = 8)]
    max_contexts: usize,
    /// Most bytes of models a guest may load from its own bytes (wasi:nn
    /// `load`), summed over those alive.
    #[arg(long, value_name = "SIZE", default_value = "512MiB")]
    max_load_size: String,
    /// Most context memory per guest (KV cache in its --cache-type-k/-v
    /// types, activation buffers, logits), summed over its live contexts,
    /// each counted at its full ctx-size.
    #[arg(long, value_name = "SIZE", default_value = "512MiB")]
    max_kv_memory: String,
    /// Most bytes of one prompt (or wasi:nn input tensor, or text to
    /// tokenize).
    #[arg(long, value_name = "SIZE", default_value = "1MiB")]
    max_prompt_size: String,
    /// Most bytes of wasi:nn tensors a guest may hold at once.
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    max_tensor_memory: String,
    /// Most wasi:nn / edgewasm:llm resources (components) or
    /// wasi_ephemeral_nn handles (core modules) a guest may hold at once.
    #[arg(long, value_name = "N", value_parser = max_handles, default_value_t = edgewasm_nn::handles::DEFAULT_MAX_HANDLES)]
    max_handles: usize,
    /// Do not use the compiled-component cache.
    #[arg(long)]
    no_cache: bool,
    /// Print load/instantiate/run timings to stderr.
    #[arg(long, short)]
    verbose: bool,
}

impl SandboxArgs {
    /// The models to preload, and the `--nn-preload` ones whose file does
    /// not exist: as in WasmEdge, those are a warning now and "model not
    /// found" (103) when the guest loads them, not a failed start.
    fn preloads(&self) -> Result<(Vec<Preload>, Vec<Preload>)> {
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for m in &self.models {
            let mut p = Preload::parse_model_flag(m).map_err(anyhow::Error::msg).context("--model")?;
            p.path = models::resolve(Some(&p.path.to_string_lossy())).with_context(|| format!("--model {m}"))?;
            out.push(p);
        }
        for m in &self.nn_preload {
            let p = Preload::parse_nn_preload(m).map_err(anyhow::Error::msg).context("--nn-preload")?;
            if p.path.exists() {
                out.push(p);
            } else {
                eprintln!("[edgewasm] warning: --nn-preload {m}: {} does not exist", p.path.display());
                missing.push(p);
            }
        }
        if out.is_empty() && missing.is_empty() {
            match models::resolve(None) {
                Ok(path) => out.push(Preload { name: DEFAULT_NAME.to_string(), path }),
                Err(e) => {
                    if self.verbose {
                        eprintln!("[edgewasm] no default model preloaded: {e:#}");
                    }
                }
            }
        }
        Ok((out, missing))
    }

    /// Maps the preloaded models and starts the inference threads;
    /// `batching`: concurrent decodes of a model share forward passes;
    /// `prefix_cache`: bytes of finished sessions' KV caches kept for later
    /// requests with the same prefix (0: none).
    pub fn load_models(&self, batching: bool, prefix_cache: usize) -> Result<(Arc<ModelSet>, Arc<ThreadPool>)> {
        let t0 = Instant::now();
        let (preloads, missing) = self.preloads()?;
        let mut set = ModelSet::load(&preloads).map_err(anyhow::Error::msg)?;
        for p in &missing {
            set.mark_missing(&p.name, &p.path);
        }
        if batching {
            set.enable_batching();
        }
        set.enable_prefix_cache(prefix_cache);
        if self.verbose {
            let names: Vec<&str> = set.names().collect();
            eprintln!("[edgewasm] models [{}] mapped in {:.1} ms", names.join(", "), t0.elapsed().as_secs_f64() * 1e3);
        }
        Ok(edgewasm_runtime::host_models(set, self.threads.count()))
    }

    /// The run configuration of `component`, whose guest sees `args`.
    pub fn run_config(&self, component: PathBuf, args: Vec<String>) -> Result<RunConfig> {
        let mut dirs = Vec::new();
        for d in &self.dirs {
            let (host, guest) = parse_dir(d);
            if !std::path::Path::new(&host).is_dir() {
                bail!("--dir {d}: {host} is not a directory");
            }
            dirs.push((PathBuf::from(host), guest));
        }
        let mut env = Vec::new();
        for e in &self.envs {
            match e.split_once('=') {
                Some((k, v)) => env.push((k.to_string(), v.to_string())),
                None => {
                    if let Ok(v) = std::env::var(e) {
                        env.push((e.clone(), v));
                    }
                }
            }
        }
        let limits = Limits {
            max_tokens: self.max_tokens,
            max_ctx: self.max_ctx,
            max_contexts: self.max_contexts,
            max_load_bytes: parse_size(&self.max_load_size).context("--max-load-size")?,
            max_kv_bytes: parse_size(&self.max_kv_memory).context("--max-kv-memory")?,
            max_prompt_bytes: parse_size(&self.max_prompt_size).context("--max-prompt-size")?,
            max_tensor_bytes: parse_size(&self.max_tensor_memory).context("--max-tensor-memory")?,
            max_handles: self.max_handles,
            kv_types: self.kv.types(),
            ..Limits::default()
        };
        Ok(RunConfig {
            component,
            args,
            dirs,
            env,
            max_memory: parse_size(&self.max_memory).context("--max-memory")?,
            timeout: self.timeout.as_deref().map(parse_duration).transpose().context("--timeout")?,
            limits,
            cache: !self.no_cache,
            verbose: self.verbose,
            stdout: None,
        })
    }
}
