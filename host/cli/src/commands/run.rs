//! `edgewasm run`: run a WASI 0.2 component with wasi:nn and edgewasm:llm,
//! or a WASI preview 1 core module with WasmEdge's `wasi_ephemeral_nn`
//! (apps written for WasmEdge), backed by the native engine, in a sandbox.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use edgewasm_runtime::Outcome;

use super::sandbox::SandboxArgs;

/// Exit code when --timeout ends the run (as timeout(1)).
pub const EXIT_TIMEOUT: i32 = 124;

/// Run a WebAssembly component, or a core module written for WasmEdge
/// (`edgewasm APP.wasm` is short for this).
#[derive(Parser, Debug)]
// The shared --threads, with the help text this command has always shown.
#[command(mut_arg("threads", |a| a.help("Inference threads")))]
pub struct RunCommand {
    #[command(flatten)]
    sandbox: SandboxArgs,
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
    pub fn execute(self) -> Result<()> {
        let component = PathBuf::from(&self.component_and_args[0]);
        let name = component
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app.wasm".into());
        let mut args = vec![name];
        args.extend(self.component_and_args[1..].iter().cloned());
        let (models, pool) = self.sandbox.load_models(false, 0)?;
        let cfg = self.sandbox.run_config(component.clone(), args)?;
        let verbose = cfg.verbose;
        let outcome = edgewasm_runtime::run(&cfg, models, pool)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("running {}", component.display()))?;
        let _ = std::io::stdout().flush();
        match outcome {
            Outcome::Exited(0) => Ok(()),
            Outcome::Exited(code) => std::process::exit(code),
            Outcome::TimedOut { limit, detail } => {
                eprintln!("error: {} exceeded the time limit of {:?} (--timeout)", component.display(), limit);
                if verbose {
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
