//! `edgewasm run`: run a WASI 0.2 component with wasi:nn and edgewasm:llm,
//! or a WASI preview 1 core module with WasmEdge's `wasi_ephemeral_nn`
//! (apps written for WasmEdge), backed by the native engine, in a sandbox.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use edgewasm_nn::{Limits, ModelSet, Preload, DEFAULT_NAME};
use edgewasm_runtime::{Outcome, RunConfig};

use super::args::ThreadsArgs;
use crate::models;

/// Exit code when --timeout ends the run (as timeout(1)).
pub const EXIT_TIMEOUT: i32 = 124;

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

/// Run a WebAssembly component, or a core module written for WasmEdge
/// (`edgewasm APP.wasm` is short for this).
#[derive(Parser, Debug)]
// The shared --threads, with the help text this command has always shown.
#[command(mut_arg("threads", |a| a.help("Inference threads")))]
pub struct RunCommand {
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
    /// Wall-clock limit for the whole run, wasm and host inference (e.g. 30s, 500ms, 2m).
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
    /// The component or core module (.wasm, compiled and cached, or .cwasm
    /// from `edgewasm compile`), then the arguments passed to the guest. Everything after
    /// the component goes to the guest, flags included.
    #[arg(value_name = "APP.wasm [ARGS]...", trailing_var_arg = true, required = true, num_args = 1..)]
    component_and_args: Vec<String>,
}

/// Parses sizes like `512MiB`, `1G`, `65536`.
pub fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().with_context(|| format!("bad size `{s}`"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        u => bail!("bad size unit `{u}` in `{s}` (use B, KiB, MiB, GiB)"),
    };
    Ok((n * mult) as usize)
}

/// Splits a `--dir` value into (host, guest): `HOST::GUEST` (ours), a
/// plain directory, or else WasmEdge's `GUEST:HOST`.
pub fn parse_dir(d: &str) -> (String, String) {
    if let Some((h, g)) = d.split_once("::") {
        return (h.to_string(), g.to_string());
    }
    match d.split_once(':') {
        Some((g, h)) if !std::path::Path::new(d).is_dir() => (h.to_string(), g.to_string()),
        _ => (d.to_string(), d.to_string()),
    }
}

/// Parses durations like `30s`, `500ms`, `2m`, `10` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().with_context(|| format!("bad duration `{s}`"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => bail!("bad duration unit `{u}` in `{s}` (use ms, s, m, h)"),
    };
    if !secs.is_finite() || secs <= 0.0 {
        bail!("the timeout must be positive");
    }
    Ok(Duration::from_secs_f64(secs))
}

impl RunCommand {
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

    pub fn execute(self) -> Result<()> {
        let t0 = Instant::now();
        let (preloads, missing) = self.preloads()?;
        let mut set = ModelSet::load(&preloads).map_err(anyhow::Error::msg)?;
        for p in &missing {
            set.mark_missing(&p.name, &p.path);
        }
        if self.verbose {
            let names: Vec<&str> = set.names().collect();
            eprintln!("[edgewasm] models [{}] mapped in {:.1} ms", names.join(", "), t0.elapsed().as_secs_f64() * 1e3);
        }
        let threads = self.threads.count();
        let (models_arc, pool) = edgewasm_runtime::host_models(set, threads);

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
        let component = PathBuf::from(&self.component_and_args[0]);
        let name = component
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app.wasm".into());
        let mut args = vec![name];
        args.extend(self.component_and_args[1..].iter().cloned());
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
        let cfg = RunConfig {
            component: component.clone(),
            args,
            dirs,
            env,
            max_memory: parse_size(&self.max_memory).context("--max-memory")?,
            timeout: self.timeout.as_deref().map(parse_duration).transpose().context("--timeout")?,
            limits,
            cache: !self.no_cache,
            verbose: self.verbose,
            stdout: None,
        };
        let outcome = edgewasm_runtime::run(&cfg, models_arc, pool)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("running {}", component.display()))?;
        let _ = std::io::stdout().flush();
        match outcome {
            Outcome::Exited(0) => Ok(()),
            Outcome::Exited(code) => std::process::exit(code),
            Outcome::TimedOut { limit, detail } => {
                eprintln!("error: {} exceeded the time limit of {:?} (--timeout)", component.display(), limit);
                if self.verbose {
                    eprintln!("{detail}");
                }
                std::process::exit(EXIT_TIMEOUT)
            }
        }
    }
}

/// `edgewasm APP.wasm ARGS...` means `edgewasm run APP.wasm ARGS...`.
pub fn implicit_run(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = args.into_iter().collect();
    if let Some(first) = v.get(1) {
        let s = first.to_string_lossy();
        if s.ends_with(".wasm") || s.ends_with(".cwasm") {
            v.insert(1, "run".into());
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("1X").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("0").is_err());
    }

    #[test]
    fn dir_forms() {
        let p = |d: &str| parse_dir(d);
        assert_eq!(p("/data::/in"), ("/data".into(), "/in".into()));
        assert_eq!(p("."), (".".into(), ".".into()));
        // WasmEdge: GUEST:HOST.
        assert_eq!(p(".:."), (".".into(), ".".into()));
        assert_eq!(p("/guest:/host/dir"), ("/host/dir".into(), "/guest".into()));
    }

    #[test]
    fn wasm_file_first_means_run() {
        let v = |a: &[&str]| implicit_run(a.iter().map(std::ffi::OsString::from));
        assert_eq!(v(&["edgewasm", "app.wasm", "x"]), v(&["edgewasm", "run", "app.wasm", "x"])[..]);
        assert_eq!(v(&["edgewasm", "a.cwasm"])[1], "run");
        assert_eq!(v(&["edgewasm", "generate", "x.wasm"])[1], "generate");
    }
}
