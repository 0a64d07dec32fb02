//! Which layers are what: attention or recurrent (per-layer KV head
//! counts, Qwen 3.5's attention interval), and the per-layer shapes of
//! Gemma 3n, Gemma 4 and Qwen 3.5's delta nets.

use edgewasm_gguf::GgufFile;

use super::{check, required, width, AltUpShape, DeltaNetShape, HYBRID, MAX_DELTA_HEAD, MAX_DIM, MAX_FF, MAX_LAYERS, MAX_TAPS};
use crate::ModelError;

/// `attention.head_count_kv`: one number, or one per layer (llama.cpp's
/// `get_key_or_arr`), where 0 marks a recurrent layer in the hybrid
/// architectures. Returns the KV head count of the attention layers, which
/// must be the same for all, and which layers attend.
pub(super) fn kv_heads(g: &GgufFile, arch: &str, n_layer: usize, n_head: usize) -> Result<(usize, Vec<bool>), ModelError> {
    let key = format!("{arch}.attention.head_count_kv");
    let per_layer = match g.get(&key) {
        None => return Ok((n_head, vec![true; n_layer])),
        Some(edgewasm_gguf::Value::Array(_)) => g.get_u64_array(&key)?.unwrap_or_default(),
        Some(_) => {
            let v = required(g, &key)?;
            vec![v as u64; n_layer]
        }
    };
    let bad = |value: u64, reason: String| ModelError::InconsistentHyperparameter { key: key.clone(), value, reason };
    if per_layer.len() != n_layer {
        return Err(bad(per_layer.len() as u64, format!("{} values for {n_layer} layers", per_layer.len())));
    }
    let hybrid = HYBRID.contains(&arch);
    let mut heads = None;
    for &v in &per_layer {
        if v == 0 && hybrid {
            continue;
        }
        let v = check(&key, usize::try_from(v).unwrap_or(usize::MAX), n_head)?;
        if n_head % v != 0 {
            return Err(ModelError::BadHyperparameter { key: key.clone(), value: v as u64 });
        }
        match heads {
            Some(h) if h != v => return Err(bad(v as u64, format!("layers with {h} and {v} KV heads (one count for all is supported)"))),
            _ => heads = Some(v),
        }
    }
    Ok((heads.unwrap_or(n_head), per_layer.iter().map(|&v| v != 0).collect()))
}

/// Gemma 4's per-layer shapes (llama.cpp `llama_model_gemma4::
/// load_arch_hparams` and the KV-reuse rule of `llama_model`).
pub(super) struct Gemma4Layers {
    pub(super) swa: Vec<bool>,
    /// `(key_length_swa, value_length_swa)`.
    pub(super) head_swa: (usize, usize),
    pub(super) rope_dims_swa: usize,
    pub(super) kv_from: Vec<usize>,
    pub(super) per_layer: usize,
}

impl Gemma4Layers {
    pub(super) fn from_gguf(g: &GgufFile, arch: &str, n_layer: usize, head: (usize, usize), rope_dims: usize, n_head: usize, n_head_kv: usize) -> Result<Gemma4Layers, ModelError> {
        let k = |s: &str| format!("{arch}.{s}");
        let pattern = k("attention.sliding_window_pattern");
        let swa: Vec<bool> = match g.get(&pattern) {
            Some(edgewasm_gguf::Value::Array(edgewasm_gguf::Array::Bool(v))) => v.clone(),
            Some(edgewasm_gguf::Value::Array(_)) => g.get_u64_array(&pattern)?.unwrap_or_default().iter().map(|&x| x != 0).collect(),
            Some(_) => return Err(ModelError::InconsistentHyperparameter { key: pattern, value: 0, reason: "one flag per layer is needed".into() }),
            None => return Err(ModelError::MissingKey(pattern)),
        };
        if swa.len() != n_layer {
            return Err(ModelError::InconsistentHyperparameter { key: pattern, value: swa.len() as u64, reason: format!("{} flags for {n_layer} layers", swa.len()) });
        }
        let kd = check(&k("attention.key_length_swa"), required(g, &k("attention.key_length_swa"))?, MAX_DIM)?;
        let vd = check(&k("attention.value_length_swa"), required(g, &k("attention.value_length_swa"))?, MAX_DIM)?;
        if kd != vd || head.0 != head.1 {
            return Err(ModelError::InconsistentHyperparameter { key: k("attention.value_length_swa"), value: vd as u64, reason: format!("key and value heads must be as wide ({kd} and {vd}; {} and {})", head.0, head.1) });
        }
        width(&k("attention.key_length_swa"), n_head, kd, "query")?;
        width(&k("attention.key_length_swa"), n_head_kv, kd, "key")?;
        let rope_dims_swa = match g.get_u64(&k("rope.dimension_count_swa"))? {
            Some(v) => check(&k("rope.dimension_count_swa"), v as usize, kd)?,
            None => check(&k("rope.dimension_count_swa"), rope_dims, kd)?,
        };
        if rope_dims_swa % 2 != 0 {
            return Err(ModelError::BadHyperparameter { key: k("rope.dimension_count_swa"), value: rope_dims_swa as u64 });
        }
        let shared = g.get_u64(&k("attention.shared_kv_layers"))?.unwrap_or(0);
        let kv_from = shared_kv_sources(&swa, shared, &k("attention.shared_kv_layers"))?;
        let per_layer = per_layer_width(g, arch, n_layer, None)?;
        Ok(Gemma4Layers { swa, head_swa: (kd, vd), rope_dims_swa, kv_from, per_layer })
    }
}

/// Which layer's keys and values each layer reads when the last `shared`
/// layers keep none of their own: a shared layer reads the last layer of
/// its kind before them (llama.cpp assumes that is layer F-2 for sliding,
/// F-1 for full, F being the first shared layer).
fn shared_kv_sources(swa: &[bool], shared: u64, key: &str) -> Result<Vec<usize>, ModelError> {
    let n_layer = swa.len();
    let from = usize::try_from(shared).ok().and_then(|s| n_layer.checked_sub(s)).filter(|&f| shared == 0 || f >= 2);
    let Some(first_shared) = from else {
        return Err(ModelError::InconsistentHyperparameter { key: key.to_string(), value: shared, reason: format!("{shared} of {n_layer} layers (two must keep their own)") });
    };
    let mut kv_from: Vec<usize> = (0..n_layer).collect();
    for l in first_shared..n_layer {
        let src = first_shared - if swa[l] { 2 } else { 1 };
        if swa[src] != swa[l] {
            return Err(ModelError::InconsistentHyperparameter {
                key: key.to_string(),
                value: shared,
                reason: format!("layer {l} would read layer {src}'s keys, of the other attention kind"),
            });
        }
        kv_from[l] = src;
    }
    Ok(kv_from)
}

/// `embedding_length_per_layer_input`, checked (`default` when absent, or
/// an error without one).
fn per_layer_width(g: &GgufFile, arch: &str, n_layer: usize, default: Option<usize>) -> Result<usize, ModelError> {
    let key = format!("{arch}.embedding_length_per_layer_input");
    let per_layer = match (g.get_u64(&key)?, default) {
        (Some(v), _) => usize::try_from(v).unwrap_or(usize::MAX),
        (None, Some(d)) => d,
        (None, None) => return Err(ModelError::MissingKey(key)),
    };
    if per_layer > MAX_DIM || per_layer.checked_mul(n_layer).is_none_or(|w| w > MAX_FF) {
        return Err(ModelError::BadHyperparameter { key, value: per_layer as u64 });
    }
    Ok(per_layer)
}

/// llama.cpp's fixed Gemma 3n settings, used when a file lacks the keys
/// (its converter writes them, with these values for E2B and E4B): the
/// first 20 layers keep keys and values, the first 10 FFNs keep the gate
/// values above the 95th percentile of a normal fit (`icdf(0.95)`), 256
/// per-layer values, 4 streams, a sliding-window period of 5.
const GEMMA3N_KV_LAYERS: usize = 20;
const GEMMA3N_SPARSE_LAYERS: usize = 10;
#[allow(clippy::excessive_precision)] // llama.cpp's literal, rounded to f32 the same way
const GEMMA3N_SPARSITY_STD_MUL: f32 = 1.644_853_353_500_366_2;
const GEMMA3N_PER_LAYER: usize = 256;
const GEMMA3N_STREAMS: u64 = 4;
const GEMMA3N_SWA_PERIOD: u64 = 5;
/// Most AltUp streams accepted.
const MAX_STREAMS: u64 = 16;

/// Gemma 3n's per-layer shapes and its AltUp/LAuReL settings (llama.cpp
/// `llama_model_gemma3n::load_arch_hparams`, the KV-reuse rule of
/// `llama_model`, and the constants of `models.h`).
pub(super) struct Gemma3nLayers {
    pub(super) swa: Vec<bool>,
    pub(super) kv_from: Vec<usize>,
    pub(super) per_layer: usize,
    pub(super) altup: AltUpShape,
}

impl Gemma3nLayers {
    pub(super) fn from_gguf(g: &GgufFile, arch: &str, n_layer: usize) -> Result<Gemma3nLayers, ModelError> {
        let k = |s: &str| format!("{arch}.{s}");
        let pattern = k("attention.sliding_window_pattern");
        let swa: Vec<bool> = match g.get(&pattern) {
            Some(edgewasm_gguf::Value::Array(edgewasm_gguf::Array::Bool(v))) => v.clone(),
            Some(edgewasm_gguf::Value::Array(_)) => g.get_u64_array(&pattern)?.unwrap_or_default().iter().map(|&x| x != 0).collect(),
            _ => {
                let p = g.get_u64(&pattern)?.unwrap_or(GEMMA3N_SWA_PERIOD);
                (0..n_layer as u64).map(|i| p == 0 || i % p < p - 1).collect()
            }
        };
        if swa.len() != n_layer {
            return Err(ModelError::InconsistentHyperparameter { key: pattern, value: swa.len() as u64, reason: format!("{} flags for {n_layer} layers", swa.len()) });
        }
        let shared_key = k("attention.shared_kv_layers");
        let shared = g.get_u64(&shared_key)?.unwrap_or(n_layer.saturating_sub(GEMMA3N_KV_LAYERS) as u64);
        let kv_from = shared_kv_sources(&swa, shared, &shared_key)?;
        let per_layer = per_layer_width(g, arch, n_layer, Some(GEMMA3N_PER_LAYER))?;

        let key = k("altup.num_inputs");
        let inputs = g.get_u64(&key)?.unwrap_or(GEMMA3N_STREAMS);
        if !(2..=MAX_STREAMS).contains(&inputs) {
            return Err(ModelError::BadHyperparameter { key, value: inputs });
        }
        let key = k("altup.active_idx");
        let active = g.get_u64(&key)?.unwrap_or(0);
        if active != 0 {
            return Err(ModelError::InconsistentHyperparameter { key, value: active, reason: "only stream 0 can be the active one (as in llama.cpp and every released model)".into() });
        }
        let laurel = "blk.0.laurel_l.weight";
        let t = g.tensor(laurel).ok_or_else(|| ModelError::MissingTensor(laurel.to_string()))?;
        let laurel_rank = match t.dims.get(1).map(|&r| usize::try_from(r).unwrap_or(usize::MAX)) {
            Some(r) if (1..=MAX_DIM).contains(&r) => r,
            _ => return Err(ModelError::TensorShape { tensor: laurel.to_string(), expected: vec![0, 0], found: t.dims.clone() }),
        };
        let key = k("activation_sparsity_scale");
        let sparsity = match g.get_f32_array(&key)? {
            // The converter writes icdf(p) per layer; p = 0 (a dense
            // layer) is −∞.
            Some(v) if v.len() == n_layer => {
                if let Some(&m) = v.iter().find(|&&m| !(m.is_finite() || m == f32::NEG_INFINITY)) {
                    return Err(ModelError::BadHyperparameter { key, value: m.to_bits() as u64 });
                }
                v.iter().map(|&m| Some(m).filter(|m| m.is_finite())).collect()
            }
            Some(v) => return Err(ModelError::InconsistentHyperparameter { key, value: v.len() as u64, reason: format!("{} values for {n_layer} layers", v.len()) }),
            None => (0..n_layer).map(|l| (l < GEMMA3N_SPARSE_LAYERS).then_some(GEMMA3N_SPARSITY_STD_MUL)).collect(),
        };
        Ok(Gemma3nLayers { swa, kv_from, per_layer, altup: AltUpShape { inputs: inputs as usize, laurel_rank, sparsity } })
    }
}

/// Which layers attend in a delta-net model: `attention.recurrent_layers`
/// (one flag per layer, MTP layers included), else all but every
/// `full_attention_interval`-th (default 4), as llama.cpp's Qwen 3.5
/// loader.
pub(super) fn attention_layers(g: &GgufFile, arch: &str, n_layer: usize, n_layer_all: usize) -> Result<Vec<bool>, ModelError> {
    let key = format!("{arch}.attention.recurrent_layers");
    if let Some(flags) = g.get_u64_array(&key)? {
        if flags.len() != n_layer_all {
            return Err(ModelError::InconsistentHyperparameter { key, value: flags.len() as u64, reason: format!("{} flags for {n_layer_all} layers", flags.len()) });
        }
        return Ok(flags[..n_layer].iter().map(|&r| r == 0).collect());
    }
    let key = format!("{arch}.full_attention_interval");
    let every = match g.get_u64(&key)? {
        Some(v) => check(&key, usize::try_from(v).unwrap_or(usize::MAX), MAX_LAYERS)?,
        None => 4,
    };
    Ok((0..n_layer).map(|i| (i + 1) % every == 0).collect())
}

/// The `ssm.*` keys of a delta-net model, checked.
pub(super) fn delta_net_shape(g: &GgufFile, arch: &str) -> Result<DeltaNetShape, ModelError> {
    let k = |s: &str| format!("{arch}.ssm.{s}");
    let conv_taps = check(&k("conv_kernel"), required(g, &k("conv_kernel"))?, MAX_TAPS)?;
    if conv_taps == 1 {
        return Err(ModelError::BadHyperparameter { key: k("conv_kernel"), value: 1 });
    }
    let n_k_heads = check(&k("group_count"), required(g, &k("group_count"))?, MAX_DIM)?;
    let n_v_heads = check(&k("time_step_rank"), required(g, &k("time_step_rank"))?, MAX_DIM)?;
    let head_dim = check(&k("state_size"), required(g, &k("state_size"))?, MAX_DELTA_HEAD)?;
    if n_v_heads % n_k_heads != 0 {
        return Err(ModelError::InconsistentHyperparameter {
            key: k("time_step_rank"),
            value: n_v_heads as u64,
            reason: format!("{n_v_heads} value heads for {n_k_heads} key heads (a multiple is needed)"),
        });
    }
    width(&k("state_size"), n_v_heads, head_dim, "delta-net value")?;
    width(&k("state_size"), 2 * n_k_heads + n_v_heads, head_dim, "delta-net convolution")?;
    let inner = required(g, &k("inner_size"))?;
    if inner != n_v_heads * head_dim {
        return Err(ModelError::InconsistentHyperparameter {
            key: k("inner_size"),
            value: inner as u64,
            reason: format!("{n_v_heads} value heads × {head_dim} = {}", n_v_heads * head_dim),
        });
    }
    Ok(DeltaNetShape { conv_taps, n_k_heads, n_v_heads, head_dim })
}

/// `rope.dimension_sections`: up to four section sizes in pairs, whose sum
/// must be > 0 and may not exceed the head width (ggml asserts it).
pub(super) fn rope_sections(g: &GgufFile, arch: &str, k_dim: usize) -> Result<[u32; 4], ModelError> {
    let key = format!("{arch}.rope.dimension_sections");
    let v = g.get_u64_array(&key)?.ok_or_else(|| ModelError::MissingKey(key.clone()))?;
    let mut out = [0u32; 4];
    for (o, &x) in out.iter_mut().zip(&v) {
        *o = u32::try_from(x).map_err(|_| ModelError::BadHyperparameter { key: key.clone(), value: x })?;
    }
    let sum: u64 = out.iter().map(|&x| x as u64).sum();
    if sum == 0 || sum > k_dim as u64 || v.len() > 4 {
        return Err(ModelError::InconsistentHyperparameter { key, value: sum, reason: format!("sections {v:?} for heads of {k_dim}") });
    }
    Ok(out)
}
