//! Rotary position embeddings as ggml computes them (`ggml_rope_cache_init`,
//! `rope_yarn`): the frequency of pair `i` is `base^(-2i/n_rot)`, divided by
//! an optional per-pair factor (Llama 3's `rope_freqs`, Phi-3's longrope
//! factors), scaled linearly by `freq_scale`, blended with the unscaled
//! angle by YaRN's ramp, and cos/sin are multiplied by `attn_factor`.

use edgewasm_gguf::GgufFile;

use super::weights::{vector, Weights};
use crate::ModelError;

/// The scaling a file asks for in `{arch}.rope.scaling.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeScaling {
    None,
    Linear,
    Yarn,
    LongRope,
}

/// Everything that shapes one RoPE table.
#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    /// Rotated dimensions per head.
    pub n_rot: usize,
    pub base: f32,
    /// `1 / rope.scaling.factor` (1: no scaling).
    pub freq_scale: f32,
    /// Per-pair divisors of the angle (`n_rot / 2` values).
    pub factors: Option<Vec<f32>>,
    /// YaRN's extrapolation mix (0: off).
    pub ext_factor: f32,
    /// YaRN's correction dimensions `[low, high]`.
    pub corr_dims: [f32; 2],
    /// Multiplier of cos and sin.
    pub attn_factor: f32,
    /// Pairs that do not turn (multi-section RoPE: a text token's extra
    /// section has position 0).
    pub still: Option<Vec<bool>>,
}

impl Rope {
    /// A plain table: `base`, linear `freq_scale`, nothing else.
    pub fn plain(n_rot: usize, base: f32, freq_scale: f32) -> Rope {
        Rope { n_rot, base, freq_scale, factors: None, ext_factor: 0.0, corr_dims: [0.0; 2], attn_factor: 1.0, still: None }
    }

    /// Interleaved multi-section RoPE (Qwen 3.5, ggml's IMROPE) for text:
    /// ggml gives a text token's time, height and width sections its
    /// position and the extra one position 0. Pair `i` is in section
    /// `i mod Σsections`, interleaved time, height, width while each has
    /// pairs left, then the extra one. With the NeoX pairing.
    pub fn with_imrope_sections(mut self, sections: [u32; 4]) -> Rope {
        let total: usize = sections.iter().map(|&s| s as usize).sum();
        let s = |j: usize| sections[j] as usize;
        let still = (0..self.n_rot / 2)
            .map(|i| {
                let sector = i % total.max(1);
                let turns = (sector % 3 == 0 && sector < 3 * s(0)) || (sector % 3 == 1 && sector < 3 * s(1)) || (sector % 3 == 2 && sector < 3 * s(2));
                !turns
            })
            .collect::<Vec<bool>>();
        self.still = still.iter().any(|&x| x).then_some(still);
        self
    }

    /// The global table of a model, from `{arch}.rope.*` keys, as llama.cpp
    /// sets it up for a context (`llama_context` constructor): the scaling
    /// type (default linear), YaRN's parameters and its magnitude
    /// correction, and `rope.scaling.attn_factor`.
    pub fn from_gguf(g: &GgufFile, arch: &str, n_rot: usize, base: f32, n_ctx_train: usize) -> Result<Rope, ModelError> {
        let k = |s: &str| format!("{arch}.rope.scaling.{s}");
        let ty = match g.get_str(&k("type"))? {
            None | Some("linear") => RopeScaling::Linear,
            Some("none") => RopeScaling::None,
            Some("yarn") => RopeScaling::Yarn,
            Some("longrope") => RopeScaling::LongRope,
            Some(other) => {
                return Err(ModelError::Unsupported {
                    what: "rope scaling type",
                    name: other.to_string(),
                    supported: "none, linear, yarn, longrope",
                })
            }
        };
        let factor = match g.get_f32(&k("factor"))? {
            Some(f) => Some(f),
            None => g.get_f32(&format!("{arch}.rope.scale_linear"))?,
        };
        let factor = factor.filter(|&f| f != 0.0);
        if let Some(f) = factor {
            if !(f.is_finite() && f > 0.0) {
                return Err(ModelError::BadHyperparameter { key: k("factor"), value: f.to_bits() as u64 });
            }
        }
        let freq_scale = match (ty, factor) {
            (RopeScaling::None, _) | (_, None) => 1.0,
            (_, Some(f)) => 1.0 / f,
        };
        let attn = g.get_f32(&k("attn_factor"))?.unwrap_or(1.0);
        if !(attn.is_finite() && attn > 0.0) {
            return Err(ModelError::BadHyperparameter { key: k("attn_factor"), value: attn.to_bits() as u64 });
        }
        let mut rope = Rope::plain(n_rot, base, freq_scale);
        rope.attn_factor = attn;
        if ty == RopeScaling::Yarn {
            let n_ctx_orig = match g.get_u64(&k("original_context_length"))? {
                Some(v) if v > 0 => v as f32,
                _ => n_ctx_train as f32,
            };
            let beta_fast = g.get_f32(&format!("{arch}.rope.scaling.yarn_beta_fast"))?.unwrap_or(32.0);
            let beta_slow = g.get_f32(&format!("{arch}.rope.scaling.yarn_beta_slow"))?.unwrap_or(1.0);
            rope.ext_factor = 1.0;
            rope.corr_dims = corr_dims(n_rot, n_ctx_orig, base, beta_fast, beta_slow);
            // As llama_context sets it up: the magnitude correction, divided
            // by the one the kernel multiplies in again, times attn_factor.
            let factor = 1.0 / freq_scale;
            let mscale = if factor <= 1.0 { 1.0 } else { 0.1 * factor.ln() + 1.0 };
            rope.attn_factor = mscale * (1.0 / (1.0 + 0.1 * factor.ln())) * attn;
        }
        Ok(rope)
    }

    /// Loads the per-pair divisors of `name` (`n_rot / 2` values).
    pub fn with_factors(mut self, g: &Weights<'_>, name: &str) -> Result<Rope, ModelError> {
        self.factors = Some(vector(g, name, self.n_rot / 2)?);
        Ok(self)
    }

    /// cos/sin pairs of `n_rot / 2` frequencies for one position.
    pub fn cache(&self, pos: usize, out: &mut [f32]) {
        let theta_scale = self.base.powf(-2.0 / self.n_rot as f32);
        let mut theta = pos as f32;
        for (i, pair) in out[..self.n_rot].chunks_exact_mut(2).enumerate() {
            let ff = self.factors.as_ref().map_or(1.0, |f| f[i]);
            let t = match &self.still {
                Some(still) if still[i] => 0.0,
                _ => theta,
            };
            let (c, s) = self.yarn(t / ff, 2 * i);
            pair[0] = c;
            pair[1] = s;
            theta *= theta_scale;
        }
    }

    /// ggml's `rope_yarn` for one pair.
    fn yarn(&self, theta_extrap: f32, i0: usize) -> (f32, f32) {
        let theta_interp = self.freq_scale * theta_extrap;
        let mut theta = theta_interp;
        let mut mscale = self.attn_factor;
        if self.ext_factor != 0.0 {
            let ramp_mix = ramp(self.corr_dims[0], self.corr_dims[1], i0) * self.ext_factor;
            theta = theta_interp * (1.0 - ramp_mix) + theta_extrap * ramp_mix;
            mscale *= 1.0 + 0.1 * (1.0 / self.freq_scale).ln();
        }
        (theta.cos() * mscale, theta.sin() * mscale)
    }
}

fn ramp(low: f32, high: f32, i0: usize) -> f32 {
    let y = ((i0 / 2) as f32 - low) / (high - low).max(0.001);
    1.0 - y.clamp(0.0, 1.0)
}

/// ggml's `ggml_rope_yarn_corr_dims`.
fn corr_dims(n_rot: usize, n_ctx_orig: f32, base: f32, beta_fast: f32, beta_slow: f32) -> [f32; 2] {
    let dim = |n_rot_pairs: f32| n_rot as f32 * (n_ctx_orig / (n_rot_pairs * 2.0 * std::f32::consts::PI)).ln() / (2.0 * base.ln());
    let start = dim(beta_fast).floor();
    let end = dim(beta_slow).ceil();
    [start.max(0.0), end.min(n_rot as f32 - 1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ops::rope_cache;

    /// A plain table is bit for bit the llama path's table.
    #[test]
    fn plain_table_is_the_ops_table() {
        for (base, scale) in [(10_000.0, 1.0), (1e6, 0.125), (100_000.0, 0.5)] {
            let rope = Rope::plain(64, base, scale);
            for pos in [0, 1, 7, 1000, 8191] {
                let (mut a, mut b) = (vec![0.0; 64], vec![0.0; 64]);
                rope.cache(pos, &mut a);
                rope_cache(pos, 64, base, scale, &mut b);
                assert_eq!(a, b, "pos {pos} base {base} scale {scale}");
            }
        }
    }

    /// Factors divide the angle of their pair.
    #[test]
    fn factors_divide_the_angle() {
        let mut rope = Rope::plain(8, 10_000.0, 1.0);
        rope.factors = Some(vec![1.0, 2.0, 4.0, 8.0]);
        let mut out = vec![0.0; 8];
        rope.cache(100, &mut out);
        let theta = |i: i32| 100.0f32 * 10_000f32.powf(-2.0 * i as f32 / 8.0);
        for i in 0..4 {
            let want = theta(i) / [1.0, 2.0, 4.0, 8.0][i as usize];
            assert!((out[2 * i as usize] - want.cos()).abs() < 1e-4, "{i}");
        }
    }

    /// Qwen 3.5's sections turn every pair; a short time section leaves
    /// its interleaved slots still (cos = attn_factor, sin = 0).
    #[test]
    fn imrope_sections() {
        let full = Rope::plain(64, 1e7, 1.0).with_imrope_sections([11, 11, 10, 0]);
        assert_eq!(full.still, None);
        assert_eq!(full, Rope::plain(64, 1e7, 1.0));
        let part = Rope::plain(16, 100.0, 1.0).with_imrope_sections([1, 2, 2, 1]);
        // Sectors 0..6: t h w _ h w, then 6, 7 wrap to t h.
        assert_eq!(part.still.as_deref(), Some(&[false, false, false, true, false, false, false, false][..]));
        let mut out = vec![0.0; 16];
        part.cache(9, &mut out);
        assert_eq!((out[6], out[7]), (1.0, 0.0));
        assert_ne!(out[9], 0.0);
    }

    /// YaRN keeps high-frequency pairs unscaled and fully interpolates the
    /// low-frequency ones.
    #[test]
    fn yarn_ramp_ends() {
        let c = corr_dims(128, 4096.0, 10_000.0, 32.0, 1.0);
        assert!(c[0] >= 0.0 && c[0] < c[1] && c[1] <= 127.0, "{c:?}");
        assert_eq!(ramp(c[0], c[1], 0), 1.0);
        assert_eq!(ramp(c[0], c[1], 126), 0.0);
    }
}
