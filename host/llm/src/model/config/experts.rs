//! The mixture-of-experts hyperparameters of each architecture.

use edgewasm_gguf::GgufFile;

use super::{check, required, Gating, MAX_EXPERTS, MAX_FF};
use crate::ModelError;

/// The mixture-of-experts hyperparameters (see the [`super::ModelConfig`] fields).
pub(super) struct Experts {
    pub(super) count: usize,
    pub(super) used: usize,
    pub(super) ff: usize,
    pub(super) ff_shared: usize,
    pub(super) gating: Gating,
    pub(super) dense_lead: usize,
}

impl Experts {
    /// Read as llama.cpp does: `expert_count` and `expert_used_count` for
    /// every architecture (checked as its loader asserts: count ≤ the
    /// limit, used ≤ count, used > 0 with experts), then the per-arch
    /// widths. Per-layer arrays are rejected (a typed metadata error).
    pub(super) fn from_gguf(g: &GgufFile, arch: &str, n_ff: usize) -> Result<Experts, ModelError> {
        let k = |s: &str| format!("{arch}.{s}");
        let count = match g.get_u64(&k("expert_count"))? {
            Some(v) => usize::try_from(v).unwrap_or(usize::MAX),
            None => 0,
        };
        if count > MAX_EXPERTS {
            return Err(ModelError::BadHyperparameter { key: k("expert_count"), value: count as u64 });
        }
        let used = match g.get_u64(&k("expert_used_count"))? {
            Some(v) => usize::try_from(v).unwrap_or(usize::MAX),
            None => 0,
        };
        if used > count || (count > 0 && used == 0) {
            return Err(ModelError::InconsistentHyperparameter {
                key: k("expert_used_count"),
                value: used as u64,
                reason: format!("{used} experts used per token of {count}"),
            });
        }
        let optional = |key: &str| -> Result<Option<usize>, ModelError> {
            match g.get_u64(&k(key))? {
                Some(v) => check(&k(key), usize::try_from(v).unwrap_or(usize::MAX), MAX_FF).map(Some),
                None => Ok(None),
            }
        };
        let none = Experts { count: 0, used: 0, ff: 0, ff_shared: 0, gating: Gating::Softmax, dense_lead: 0 };
        let softmax = |count, used, ff, ff_shared| Experts { count, used, ff, ff_shared, gating: Gating::Softmax, dense_lead: 0 };
        match arch {
            // Expert layers when the file has experts, dense ones otherwise.
            "llama" | "granite" | "granitemoe" if count == 0 => Ok(none),
            "llama" => Ok(softmax(count, used, n_ff, 0)),
            "granite" | "granitemoe" => {
                let ff_shared = optional("expert_shared_feed_forward_length")?.unwrap_or(0);
                Ok(softmax(count, used, n_ff, ff_shared))
            }
            "qwen2moe" | "qwen3moe" => {
                needs_experts(count, &k("expert_count"), arch)?;
                let ff = match optional("expert_feed_forward_length")? {
                    Some(ff) => ff,
                    None => check(&k("feed_forward_length"), n_ff / used, MAX_FF)?,
                };
                let ff_shared = match arch {
                    "qwen2moe" => optional("expert_shared_feed_forward_length")?.unwrap_or(n_ff),
                    _ => 0,
                };
                Ok(softmax(count, used, ff, ff_shared))
            }
            "qwen35moe" => {
                needs_experts(count, &k("expert_count"), arch)?;
                let ff_key = k("expert_feed_forward_length");
                let ff = check(&ff_key, scalar_or_first(g, &ff_key)?.unwrap_or(n_ff / used), MAX_FF)?;
                let ff_shared = optional("expert_shared_feed_forward_length")?.unwrap_or(n_ff);
                Ok(softmax(count, used, ff, ff_shared))
            }
            "lfm2moe" => {
                needs_experts(count, &k("expert_count"), arch)?;
                let ff_key = k("expert_feed_forward_length");
                let ff = check(&ff_key, scalar_or_first(g, &ff_key)?.ok_or_else(|| ModelError::MissingKey(ff_key.clone()))?, MAX_FF)?;
                let gating = match g.get_u64(&k("expert_gating_func"))? {
                    Some(1) => Gating::Softmax,
                    Some(2) => Gating::Sigmoid,
                    Some(v) => return Err(ModelError::BadHyperparameter { key: k("expert_gating_func"), value: v }),
                    None => return Err(ModelError::MissingKey(k("expert_gating_func"))),
                };
                let dense_lead = g.get_u64(&k("leading_dense_block_count"))?.unwrap_or(0) as usize;
                Ok(Experts { count, used, ff, ff_shared: 0, gating, dense_lead })
            }
            // Architectures without expert layers ignore the keys.
            _ => Ok(none),
        }
    }
}

/// Architectures whose every FFN is experts: a file without any is wrong.
fn needs_experts(count: usize, key: &str, arch: &str) -> Result<(), ModelError> {
    match count {
        0 => Err(ModelError::InconsistentHyperparameter { key: key.to_string(), value: 0, reason: format!("{arch} needs experts") }),
        _ => Ok(()),
    }
}

/// One width for every expert layer: `key` as one number, or layer 0's of
/// a per-layer array (llama.cpp's `get_key_or_arr`); `None` when absent.
fn scalar_or_first(g: &GgufFile, key: &str) -> Result<Option<usize>, ModelError> {
    let v = match g.get(key) {
        Some(edgewasm_gguf::Value::Array(_)) => g.get_u64_array(key)?.and_then(|a| a.first().copied()).unwrap_or(0),
        Some(_) => required(g, key)? as u64,
        None => return Ok(None),
    };
    Ok(Some(usize::try_from(v).unwrap_or(usize::MAX)))
}
