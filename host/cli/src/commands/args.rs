//! What the subcommands share: option groups flattened into each command
//! (`#[command(flatten)]`, as wasmtime's CLI shares its option structs), and
//! value parsers: numbers that must be positive or finite are refused by
//! clap with a message naming the flag (exit 2), instead of being clamped or
//! reaching the engine.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use edgewasm_llm::{KvType, KvTypes, Model, ThreadPool};

use crate::models;

/// `--model`, for the commands that load one model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model file or name in models/.
    #[arg(long, short)]
    model: Option<String>,
}

impl ModelArgs {
    /// The model file: the given path or name, else the default model.
    pub fn resolve(&self) -> Result<PathBuf> {
        models::resolve(self.model.as_deref())
    }

    pub fn load(&self) -> Result<Arc<Model>> {
        models::load(self.model.as_deref())
    }
}

/// `--threads`, for the commands that run a model on one thread pool.
#[derive(Args, Debug, Clone)]
pub struct ThreadsArgs {
    /// Worker threads.
    #[arg(long, short, value_parser = positive)]
    threads: Option<usize>,
}

impl ThreadsArgs {
    /// The given count, else the cores we may use.
    pub fn count(&self) -> usize {
        self.threads.unwrap_or_else(models::default_threads)
    }

    pub fn pool(&self) -> Arc<ThreadPool> {
        Arc::new(ThreadPool::new(self.count()))
    }
}

/// `--cache-type-k/-v`, for the commands that create contexts.
#[derive(Args, Debug, Clone, Copy)]
pub struct KvCacheArgs {
    /// How keys are stored in the KV cache: f32, f16 or q8_0 (q8_0 needs
    /// head widths that are multiples of 32).
    #[arg(long = "cache-type-k", visible_alias = "ctk", default_value = "f16", value_parser = kv_type)]
    pub k: KvType,
    /// How values are stored in the KV cache: f32, f16 or q8_0.
    #[arg(long = "cache-type-v", visible_alias = "ctv", default_value = "f16", value_parser = kv_type)]
    pub v: KvType,
}

impl KvCacheArgs {
    pub fn types(&self) -> KvTypes {
        KvTypes { k: self.k, v: self.v }
    }
}

/// A KV cache type name.
pub fn kv_type(s: &str) -> Result<KvType, String> {
    s.trim().parse::<KvType>().map_err(|e| e.to_string())
}

/// A count of at least 1 (threads, context positions, repetitions, ...).
pub fn positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a positive integer ({e})")),
    }
}

/// A finite number ≥ 0 (temperature, top-p, min-p, repeat penalty).
pub fn non_negative(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number ≥ 0, got {v}")),
        Err(e) => Err(format!("not a number ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(positive("4"), Ok(4));
        assert!(positive("0").is_err() && positive("-1").is_err() && positive("x").is_err());
        assert_eq!(non_negative("0"), Ok(0.0));
        assert_eq!(kv_type("Q8_0"), Ok(KvType::Q8_0));
        assert!(kv_type("q4_0").unwrap_err().contains("f32, f16, q8_0"));
        for bad in ["nan", "inf", "-0.5", "x"] {
            assert!(non_negative(bad).is_err(), "{bad}");
        }
    }
}
