//! The host's models: each file memory-mapped once and shared (as an
//! `Arc<Model>`) by every execution context of every store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgewasm_llm::{Batcher, Model};

use crate::error::{NnError, NnResult};
use crate::prefix::PrefixCache;

/// Name under which the default model is preloaded.
pub const DEFAULT_NAME: &str = "default";

/// A model preload request: `--model NAME=PATH` or WasmEdge's
/// `--nn-preload NAME:GGML:AUTO:PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preload {
    pub name: String,
    pub path: PathBuf,
}

impl Preload {
    /// Parses `NAME=PATH`.
    pub fn parse_model_flag(s: &str) -> Result<Preload, String> {
        let (name, path) = s.split_once('=').ok_or_else(|| format!("expected NAME=PATH, got `{s}`"))?;
        Preload::new(name, path)
    }

    /// Parses WasmEdge's `NAME:ENCODING:TARGET:PATH` (encoding `GGML`,
    /// target `AUTO`/`CPU`).
    pub fn parse_nn_preload(s: &str) -> Result<Preload, String> {
        let mut it = s.splitn(4, ':');
        let (Some(name), Some(enc), Some(target), Some(path)) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(format!("expected NAME:GGML:AUTO:PATH, got `{s}`"));
        };
        if !enc.eq_ignore_ascii_case("ggml") && !enc.eq_ignore_ascii_case("autodetect") {
            return Err(format!("unsupported encoding `{enc}` in `{s}` (edgewasm serves GGML/GGUF models)"));
        }
        if !["auto", "cpu"].iter().any(|t| target.eq_ignore_ascii_case(t)) {
            return Err(format!("unsupported execution target `{target}` in `{s}` (AUTO or CPU)"));
        }
        Preload::new(name, path)
    }

    fn new(name: &str, path: &str) -> Result<Preload, String> {
        if name.is_empty() || path.is_empty() {
            return Err("model name and path must be non-empty".into());
        }
        Ok(Preload { name: name.to_string(), path: PathBuf::from(path) })
    }
}

/// Named, loaded models.
#[derive(Clone, Debug, Default)]
pub struct ModelSet {
    models: BTreeMap<String, Arc<Model>>,
    /// `--nn-preload` names whose file did not exist at start: loading them
    /// fails with "model not found", as in WasmEdge, instead of the start.
    missing: BTreeMap<String, PathBuf>,
    /// Continuous batching, one queue per distinct model, when enabled
    /// ([`ModelSet::enable_batching`]).
    batchers: Vec<(Arc<Model>, Arc<Batcher>)>,
    /// Finished requests' contexts kept for their prefixes, when enabled
    /// ([`ModelSet::enable_prefix_cache`]).
    prefix_cache: Option<Arc<PrefixCache>>,
}

impl ModelSet {
    pub fn new() -> ModelSet {
        ModelSet::default()
    }

    /// Loads every preload; a file named twice is mapped once.
    pub fn load(preloads: &[Preload]) -> Result<ModelSet, String> {
        let mut set = ModelSet::new();
        let mut by_path: Vec<(PathBuf, Arc<Model>)> = Vec::new();
        for p in preloads {
            let canon = p.path.canonicalize().unwrap_or_else(|_| p.path.clone());
            let model = match by_path.iter().find(|(q, _)| *q == canon) {
                Some((_, m)) => Arc::clone(m),
                None => {
                    let m = Arc::new(
                        Model::open(&p.path).map_err(|e| format!("loading model `{}` from {}: {e}", p.name, p.path.display()))?,
                    );
                    by_path.push((canon, Arc::clone(&m)));
                    m
                }
            };
            set.insert(&p.name, model);
        }
        Ok(set)
    }

    pub fn insert(&mut self, name: &str, model: Arc<Model>) {
        self.models.insert(name.to_string(), model);
    }

    /// Records that `name` was to be preloaded from `path`, which does not
    /// exist.
    pub fn mark_missing(&mut self, name: &str, path: &Path) {
        self.missing.insert(name.to_string(), path.to_path_buf());
    }

    pub fn get(&self, name: &str) -> NnResult<&Arc<Model>> {
        if let (None, Some(path)) = (self.models.get(name), self.missing.get(name)) {
            return Err(NnError::not_found(format!("model `{name}` was to be preloaded from {}, which does not exist", path.display())));
        }
        self.models.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.models.keys().map(String::as_str).collect();
            NnError::not_found(format!("no model named `{name}` (preloaded: {})", known.join(", ")))
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Model>)> {
        self.models.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Lets contexts of the preloaded models that decode at the same time
    /// (concurrent requests of `edgewasm serve`) share forward passes.
    pub fn enable_batching(&mut self) {
        for m in self.models.values() {
            if !self.batchers.iter().any(|(b, _)| Arc::ptr_eq(b, m)) {
                self.batchers.push((Arc::clone(m), Arc::new(Batcher::new())));
            }
        }
    }

    /// Keeps finished sessions' KV caches, within `budget` bytes, for
    /// later requests that start with the same tokens.
    pub fn enable_prefix_cache(&mut self, budget: usize) {
        self.prefix_cache = (budget > 0).then(|| Arc::new(PrefixCache::new(budget)));
    }

    pub fn prefix_cache(&self) -> Option<&Arc<PrefixCache>> {
        self.prefix_cache.as_ref()
    }

    /// Whether `model` is one of the preloaded models (not one a guest
    /// loaded from its own bytes).
    pub fn is_preloaded(&self, model: &Arc<Model>) -> bool {
        self.models.values().any(|m| Arc::ptr_eq(m, model))
    }

    /// The batching queue of `model`, if batching is enabled and it is a
    /// preloaded model.
    pub fn batcher_for(&self, model: &Arc<Model>) -> Option<Arc<Batcher>> {
        self.batchers.iter().find(|(m, _)| Arc::ptr_eq(m, model)).map(|(_, b)| Arc::clone(b))
    }
}

/// Whether `path` exists as a file (for CLI validation messages).
pub fn is_model_file(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_flags() {
        assert_eq!(
            Preload::parse_model_flag("smol=models/a.gguf").unwrap(),
            Preload { name: "smol".into(), path: "models/a.gguf".into() }
        );
        assert!(Preload::parse_model_flag("nameonly").is_err());
        assert!(Preload::parse_model_flag("=x").is_err());
        let p = Preload::parse_nn_preload("default:GGML:AUTO:/m/x.gguf").unwrap();
        assert_eq!((p.name.as_str(), p.path.to_str().unwrap()), ("default", "/m/x.gguf"));
        assert!(Preload::parse_nn_preload("d:ggml:cpu:C:/x.gguf").is_ok());
        assert!(Preload::parse_nn_preload("d:ONNX:AUTO:x").is_err());
        assert!(Preload::parse_nn_preload("d:GGML:GPU:x").is_err());
        assert!(Preload::parse_nn_preload("d:GGML").is_err());
    }

    #[test]
    fn unknown_name_is_not_found() {
        let e = ModelSet::new().get("x").unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::NotFound);
    }
}
