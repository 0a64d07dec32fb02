//! Element-wise f32 building blocks shared by every architecture.
//!
//! Numerics follow ggml where it matters for matching llama.cpp: RMSNorm
//! accumulates the sum of squares in f64, RoPE angles are built by repeated
//! multiplication in f32 exactly as `ggml_rope_cache_init` does.

/// `out = x / sqrt(mean(x²) + eps) * weight`, one row of `weight.len()`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    debug_assert_eq!(x.len(), weight.len());
    let sum: f64 = x.iter().map(|&v| (v * v) as f64).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = (v * scale) * w;
    }
}

/// `out = (x - mean) / sqrt(var + eps) * weight`, one row, as ggml's
/// `ggml_compute_forward_norm_f32` (f64 sums, centred values, then one
/// scale) followed by the weight multiply.
pub fn layer_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    debug_assert_eq!(x.len(), weight.len());
    let n = x.len() as f64;
    let mean = (x.iter().map(|&v| v as f64).sum::<f64>() / n) as f32;
    let mut sum2 = 0.0f64;
    for (o, &v) in out.iter_mut().zip(x) {
        let c = v - mean;
        *o = c;
        sum2 += (c * c) as f64;
    }
    let variance = (sum2 / n) as f32;
    let scale = 1.0 / (variance + eps).sqrt();
    for (o, &w) in out.iter_mut().zip(weight) {
        *o = (*o * scale) * w;
    }
}

/// In-place RMSNorm of a row (for Q/K norms).
pub fn rms_norm_inplace(x: &mut [f32], weight: &[f32], eps: f32) {
    let sum: f64 = x.iter().map(|&v| (v * v) as f64).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for (v, &w) in x.iter_mut().zip(weight) {
        *v = (*v * scale) * w;
    }
}

/// How rotary embeddings pair up the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(2i, 2i+1)` (llama.cpp `LLAMA_ROPE_TYPE_NORM`).
    Normal,
    /// Halves `(i, i + d/2)` (llama.cpp `LLAMA_ROPE_TYPE_NEOX`, Gemma).
    Neox,
}

/// cos/sin of each rotated pair for one position, as ggml computes them.
pub fn rope_cache(pos: usize, n_dims: usize, freq_base: f32, freq_scale: f32, cache: &mut [f32]) {
    let theta_scale = freq_base.powf(-2.0 / n_dims as f32);
    let mut theta = pos as f32;
    for pair in cache[..n_dims].chunks_exact_mut(2) {
        let t = freq_scale * theta;
        pair[0] = t.cos();
        pair[1] = t.sin();
        theta *= theta_scale;
    }
}

/// Rotates the first `n_dims` dimensions of every head in `x` (heads of
/// `head_dim` laid out back to back) using a cache from [`rope_cache`].
pub fn rope_apply(x: &mut [f32], head_dim: usize, n_dims: usize, style: RopeStyle, cache: &[f32]) {
    for head in x.chunks_exact_mut(head_dim) {
        match style {
            RopeStyle::Normal => {
                for (i, cs) in cache[..n_dims].chunks_exact(2).enumerate() {
                    let (c, s) = (cs[0], cs[1]);
                    let (x0, x1) = (head[2 * i], head[2 * i + 1]);
                    head[2 * i] = x0 * c - x1 * s;
                    head[2 * i + 1] = x0 * s + x1 * c;
                }
            }
            RopeStyle::Neox => {
                let half = n_dims / 2;
                for (i, cs) in cache[..n_dims].chunks_exact(2).enumerate() {
                    let (c, s) = (cs[0], cs[1]);
                    let (x0, x1) = (head[i], head[i + half]);
                    head[i] = x0 * c - x1 * s;
                    head[i + half] = x0 * s + x1 * c;
                }
            }
        }
    }
}

/// `1 / (1 + e^-x)`, as ggml's `ggml_sigmoid`.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `x / sqrt(mean(x²) + eps)` in place, without a weight (ggml's
/// `rms_norm` alone): Gemma 4's values, Qwen 3.5's L2 norm.
pub fn rms_norm_unweighted(x: &mut [f32], eps: f32) {
    let sum: f64 = x.iter().map(|&v| (v * v) as f64).sum();
    let scale = 1.0 / ((sum / x.len() as f64) as f32 + eps).sqrt();
    x.iter_mut().for_each(|v| *v *= scale);
}

/// SiLU as ggml's scalar `ggml_silu_f32`.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// GELU, tanh approximation (ggml `ggml_gelu_f32`).
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044_715;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh())
}

/// GELU as ggml's CPU backend computes it (`GGML_GELU_FP16`): the input is
/// rounded to f16 and looked up in a table of f16 results, saturating
/// outside ±10. Matching this keeps Gemma's logits next to llama.cpp's.
///
/// Like ggml, the results are read from a table made once (indexed by the
/// f16 bits of the input): the same values as computing them, without a
/// `tanh` per element (Gemma 4 E2B decode spent 4% of its time in `tanhf`).
#[inline]
pub fn gelu_ggml(x: f32) -> f32 {
    use half::f16;
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        gelu_f16_table()[f16::from_f32(x).to_bits() as usize].to_f32()
    }
}

/// `f16(gelu_tanh(h))` for every f16 bit pattern `h`.
fn gelu_f16_table() -> &'static [half::f16] {
    use half::f16;
    static TABLE: std::sync::OnceLock<Box<[f16]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| (0..=u16::MAX).map(|h| f16::from_f32(gelu_tanh(f16::from_bits(h).to_f32()))).collect())
}

/// Gemma 3n's Gaussian top-k, as ggml computes it: `max(x − (mean +
/// std_mul · std), 0)` over a row, with the mean and the (n − 1)
/// standard deviation from f64 sums rounded to f32.
pub fn gaussian_top_k(x: &mut [f32], std_mul: f32) {
    let n = x.len();
    let mean = (x.iter().map(|&v| v as f64).sum::<f64>() as f32) / n as f32;
    let sq = x.iter().map(|&v| ((v - mean) * (v - mean)) as f64).sum::<f64>() as f32;
    let std = (sq * (1.0 / (n.saturating_sub(1).max(1)) as f32)).sqrt();
    let cutoff = mean + std * std_mul;
    x.iter_mut().for_each(|v| {
        let d = *v - cutoff;
        *v = if d > 0.0 { d } else { 0.0 };
    });
}

/// `sqrt(Σ x²)` of a row, the sum in f64 as ggml's `sum_rows`.
pub fn magnitude(x: &[f32]) -> f32 {
    (x.iter().map(|&v| (v * v) as f64).sum::<f64>() as f32).sqrt()
}

/// `gate[i] = act(gate[i]) * up[i]`.
pub fn gated(gate: &mut [f32], up: &[f32], act: fn(f32) -> f32) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = act(*g) * u;
    }
}

/// `a += b`.
pub fn add_inplace(a: &mut [f32], b: &[f32]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_table_equals_computing_it() {
        use half::f16;
        for h in 0..=u16::MAX {
            let x = f16::from_bits(h).to_f32();
            if x.is_nan() || x <= -10.0 || x >= 10.0 {
                continue;
            }
            let direct = f16::from_f32(gelu_tanh(x)).to_f32();
            assert_eq!(gelu_ggml(x).to_bits(), direct.to_bits(), "x = {x}");
            // Inputs between f16 values round to the same entry.
            let y = f32::from_bits(x.to_bits() ^ 1);
            let direct = f16::from_f32(gelu_tanh(f16::from_f32(y).to_f32())).to_f32();
            assert_eq!(gelu_ggml(y).to_bits(), direct.to_bits(), "y = {y}");
        }
    }

    #[test]
    fn rms_norm_unit_weight_gives_unit_rms() {
        let x: Vec<f32> = (0..64).map(|i| i as f32 - 20.0).collect();
        let w = vec![1.0; 64];
        let mut out = vec![0.0; 64];
        rms_norm(&x, &w, 0.0, &mut out);
        let ms: f32 = out.iter().map(|v| v * v).sum::<f32>() / 64.0;
        assert!((ms - 1.0).abs() < 1e-5, "{ms}");
    }

    #[test]
    fn rope_at_zero_is_identity_and_preserves_norm() {
        let mut cache = vec![0.0; 64];
        rope_cache(0, 64, 10000.0, 1.0, &mut cache);
        let orig: Vec<f32> = (0..128).map(|i| (i as f32).sin()).collect();
        let mut x = orig.clone();
        rope_apply(&mut x, 64, 64, RopeStyle::Normal, &cache);
        assert_eq!(x, orig);
        rope_cache(37, 64, 10000.0, 1.0, &mut cache);
        for style in [RopeStyle::Normal, RopeStyle::Neox] {
            let mut x = orig.clone();
            rope_apply(&mut x, 64, 64, style, &cache);
            let n0: f32 = orig.iter().map(|v| v * v).sum();
            let n1: f32 = x.iter().map(|v| v * v).sum();
            assert!((n0 - n1).abs() < 1e-3);
            assert_ne!(x, orig);
        }
    }
}
