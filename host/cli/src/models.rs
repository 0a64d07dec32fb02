//! Finding model files: a path, or a name in the models directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use edgewasm_llm::Model;

/// File name of the default model (fetched by `just models`).
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct-q4_1.gguf";

/// The models directory: `$EDGEWASM_MODELS_DIR`, else the nearest `models/`
/// above the current directory or above the executable (so a binary in
/// `target/release/` finds the repo's `models/`).
pub fn models_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("EDGEWASM_MODELS_DIR") {
        return Some(PathBuf::from(d));
    }
    let starts = [std::env::current_dir().ok(), std::env::current_exe().ok()];
    for start in starts.into_iter().flatten() {
        for dir in start.ancestors() {
            let m = dir.join("models");
            if m.join(DEFAULT_MODEL).is_file() {
                return Some(m);
            }
        }
    }
    None
}

/// Resolves `--model`: an existing path, or a name (with or without
/// `.gguf`) in the models directory; `None` means the default model.
pub fn resolve(arg: Option<&str>) -> Result<PathBuf> {
    let name = arg.unwrap_or(DEFAULT_MODEL);
    let p = Path::new(name);
    if arg.is_some() && p.is_file() {
        return Ok(p.to_path_buf());
    }
    let dir = models_dir();
    if let Some(dir) = &dir {
        for cand in [dir.join(name), dir.join(format!("{name}.gguf"))] {
            if cand.is_file() {
                return Ok(cand);
            }
        }
    }
    let mut available = Vec::new();
    if let Some(dir) = &dir {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".gguf") {
                    available.push(n);
                }
            }
        }
    }
    available.sort();
    match (arg, dir) {
        (None, _) => bail!("the default model {DEFAULT_MODEL} is not in the models directory; fetch it with `just models`"),
        (Some(_), None) => bail!("model `{name}`: no such file, and no models directory found (set EDGEWASM_MODELS_DIR)"),
        (Some(_), Some(d)) => bail!(
            "model `{name}`: no such file or model in {} (available: {})",
            d.display(),
            if available.is_empty() { "none".to_string() } else { available.join(", ") }
        ),
    }
}

/// Resolves and loads a model.
pub fn load(arg: Option<&str>) -> Result<Arc<Model>> {
    let path = resolve(arg)?;
    let model = Model::open(&path).with_context(|| format!("loading {}", path.display()))?;
    Ok(Arc::new(model))
}

/// Default thread count: the cores we may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
