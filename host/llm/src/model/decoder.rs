//! The decoder every architecture is made of, as llama.cpp's graph builders
//! compose `build_norm`, `build_attn` and `build_ffn`: per layer a norm,
//! Q/K/V projections (separate or fused, optional biases, optional per-head
//! Q/K norms), RoPE from one of two tables (or none), causal attention
//! (optional sliding window and soft-cap), the output projection, optional
//! post-norm, a residual add (optionally scaled), then the same for the
//! feed-forward network (gated, fused gated, or a plain MLP), sequential or
//! in parallel with attention. In hybrid models some layers mix positions
//! with a recurrent block instead of attention ([`Mixer`]). Encoders (BERT)
//! are the same blocks without RoPE, normed after each residual add, and
//! attending both ways over packed sequences ([`Architecture::hidden`]).
//! An architecture file only chooses [`Options`] and which tensors each
//! layer has.

use super::attention::{attention, AttentionParams};
use super::config::ModelConfig;
use super::head::Head;
use super::matmul::{matmul, matmul_many, QMatrix};
use super::moe::{Moe, MoeSpec};
use super::ops::{add_inplace, gated, layer_norm, rms_norm, rms_norm_inplace, rms_norm_unweighted, rope_apply, sigmoid, RopeStyle};
use super::rope::Rope;
use super::deltanet::DeltaNet;
use super::ple::{PerLayerInputs, PleBlock};
use super::shortconv::ShortConv;
use super::weights::{matrix, optional_vector, vector, Weights};
use super::{Architecture, BatchEnv, ForwardEnv, KvSet, Mask, Rows, Scratch};
use crate::recurrent::RecurrentState;
use crate::threadpool::ThreadPool;
use crate::ModelError;
use edgewasm_gguf::GgufFile;

/// RMSNorm or LayerNorm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    Rms,
    Layer,
}

/// A norm's weight and optional bias.
#[derive(Debug)]
pub struct Norm {
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

impl Norm {
    /// `name.weight` and, if present, `name.bias`, of `n` values.
    pub fn load(g: &Weights<'_>, name: &str, n: usize) -> Result<Norm, ModelError> {
        Ok(Norm { weight: vector(g, &format!("{name}.weight"), n)?, bias: optional_vector(g, &format!("{name}.bias"), n)? })
    }

    /// Like [`Norm::load`], `None` when `name.weight` is absent.
    pub fn optional(g: &Weights<'_>, name: &str, n: usize) -> Result<Option<Norm>, ModelError> {
        if g.tensor(&format!("{name}.weight")).is_none() {
            return Ok(None);
        }
        Norm::load(g, name, n).map(Some)
    }

    /// One row: `out = norm(x) * weight (+ bias)`.
    pub fn apply(&self, kind: NormKind, eps: f32, x: &[f32], out: &mut [f32]) {
        match kind {
            NormKind::Rms => rms_norm(x, &self.weight, eps, out),
            NormKind::Layer => layer_norm(x, &self.weight, eps, out),
        }
        if let Some(b) = &self.bias {
            add_inplace(out, b);
        }
    }

    /// In place, row by row over `x` (rows of `weight.len()`).
    pub(super) fn apply_rows(&self, kind: NormKind, eps: f32, x: &mut [f32], tmp: &mut Vec<f32>) {
        let d = self.weight.len();
        tmp.resize(d, 0.0);
        for row in x.chunks_exact_mut(d) {
            match kind {
                NormKind::Rms => rms_norm_inplace(row, &self.weight, eps),
                NormKind::Layer => {
                    layer_norm(row, &self.weight, eps, tmp);
                    row.copy_from_slice(tmp);
                }
            }
            if let Some(b) = &self.bias {
                add_inplace(row, b);
            }
        }
    }
}

/// A weight matrix and its optional bias.
#[derive(Debug)]
pub struct Linear {
    pub w: QMatrix,
    pub bias: Option<Vec<f32>>,
}

impl Linear {
    /// `name.weight` (`cols` → `rows`) and, if present, `name.bias`.
    pub fn load(g: &Weights<'_>, name: &str, cols: usize, rows: usize) -> Result<Linear, ModelError> {
        Ok(Linear { w: matrix(g, &format!("{name}.weight"), cols, rows)?, bias: optional_vector(g, &format!("{name}.bias"), rows)? })
    }

    /// Like [`Linear::load`], `None` when `name.weight` is absent.
    pub fn optional(g: &Weights<'_>, name: &str, cols: usize, rows: usize) -> Result<Option<Linear>, ModelError> {
        if g.tensor(&format!("{name}.weight")).is_none() {
            return Ok(None);
        }
        Linear::load(g, name, cols, rows).map(Some)
    }

    /// Adds the bias to each of the `n` output rows.
    pub(super) fn add_bias(&self, out: &mut [f32], n: usize) {
        if let Some(b) = &self.bias {
            for row in out[..n * b.len()].chunks_exact_mut(b.len()) {
                add_inplace(row, b);
            }
        }
    }
}

/// The attention input projections.
#[derive(Debug)]
pub enum Qkv {
    Separate { q: Linear, k: Linear, v: Linear },
    /// One `[Q | K | V]` matrix (Phi-3, Falcon).
    Fused(Linear),
    /// Queries only: the layer attends over an earlier layer's keys and
    /// values (Gemma 4's KV-shared layers).
    QueryOnly(Linear),
}

/// The feed-forward network.
#[derive(Debug)]
pub enum Ffn {
    /// `down(act(gate·x) ⊙ up·x)`: SwiGLU, GeGLU.
    Gated { gate: Linear, up: Linear, down: Linear },
    /// The same with gate and up in one matrix, gate first (Phi-3).
    FusedGated { gate_up: Linear, down: Linear },
    /// `down(act(up·x))` (StarCoder2, Phi-2).
    Mlp { up: Linear, down: Linear },
    /// Routed experts, and maybe a shared one (Mixtral, Qwen MoE, Granite
    /// MoE).
    Moe(Box<Moe>),
}

/// Which RoPE table a layer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeTable {
    Global,
    /// The sliding-window layers' table (Gemma 2/3).
    Local,
    /// No positional rotation (NoPE layers).
    None,
}

/// Self-attention's weights.
#[derive(Debug)]
pub struct Attention {
    pub qkv: Qkv,
    /// Per-head Q/K norms of `k_dim` values, shared by the heads.
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    /// The query projection also makes, per head, a gate whose sigmoid
    /// scales the head's output ([`ModelConfig::q_gate`]).
    pub q_gate: bool,
    /// Values are RMS-normed per head, without a weight (Gemma 4).
    pub v_norm: bool,
    pub out: Linear,
}

/// What mixes a layer's positions: attention over the KV cache, or a
/// recurrent block over a fixed-size state.
#[derive(Debug)]
pub enum Mixer {
    Attention(Attention),
    /// LFM2's gated short convolution.
    ShortConv(ShortConv),
    /// Qwen 3.5's gated delta net.
    DeltaNet(Box<DeltaNet>),
}

/// One decoder layer's weights and per-layer settings.
#[derive(Debug)]
pub struct Layer {
    /// Pre-attention (pre-mixer) norm (absent in post-norm-only models).
    pub attn_norm: Option<Norm>,
    pub mixer: Mixer,
    pub attn_post_norm: Option<Norm>,
    /// Pre-FFN norm; absent with [`Options::parallel`], where the FFN
    /// reads the attention's normed input.
    pub ffn_norm: Option<Norm>,
    pub ffn: Ffn,
    pub ffn_post_norm: Option<Norm>,
    /// Norms of the residual stream itself after the attention's and the
    /// FFN's residual adds (BERT's post-LN: `x = norm(x + f(x))`), where
    /// `attn_post_norm`/`ffn_post_norm` norm the sublayer's output before
    /// the add.
    pub attn_res_norm: Option<Norm>,
    pub ffn_res_norm: Option<Norm>,
    /// Sliding window of this layer, `None` for full attention.
    pub window: Option<usize>,
    pub rope: RopeTable,
    /// Head widths `(key, value)` of this layer.
    pub head: (usize, usize),
    /// Hidden width of the dense FFN (of the widest expert with experts).
    pub ff: usize,
    /// Gemma 4's per-layer-embedding block, after the FFN.
    pub ple: Option<PleBlock>,
    /// Multiplier of the whole layer output, residual included (Gemma 4's
    /// `layer_output_scale`).
    pub out_scale: Option<f32>,
}

/// What differs between architectures beyond the tensors they have.
#[derive(Clone, Debug)]
pub struct Options {
    pub norm: NormKind,
    pub eps: f32,
    /// Multiplier of the token embeddings (Gemma: √d, Granite).
    pub embed_scale: f32,
    pub rope_style: RopeStyle,
    /// Multiplier of q·k.
    pub kq_scale: f32,
    /// `cap · tanh(score / cap)` before the softmax (Gemma 2).
    pub attn_softcap: Option<f32>,
    /// The FFN's activation.
    pub act: fn(f32) -> f32,
    /// `x + attn(norm(x)) + ffn(norm(x))` (Phi-2, Command-R, Falcon).
    pub parallel: bool,
    /// Multiplier of each sublayer's output before its residual add
    /// (Granite).
    pub residual_scale: f32,
    /// Multiplier of the logits (Granite divides by its `logit_scale`).
    pub logit_scale: f32,
    /// `cap · tanh(logit / cap)` (Gemma 2, some Gemma 3).
    pub final_softcap: Option<f32>,
}

impl Options {
    /// The llama defaults: RMSNorm, adjacent-pair RoPE, `1/√k_dim`, SiLU.
    pub fn llama(c: &ModelConfig) -> Options {
        Options {
            norm: NormKind::Rms,
            eps: c.rms_eps,
            embed_scale: 1.0,
            rope_style: RopeStyle::Normal,
            kq_scale: 1.0 / (c.k_dim as f32).sqrt(),
            attn_softcap: None,
            act: super::ops::silu,
            parallel: false,
            residual_scale: 1.0,
            logit_scale: 1.0,
            final_softcap: None,
        }
    }
}

/// Which tensors the layers of an architecture have, for [`load_layers`].
#[derive(Clone, Copy, Debug)]
pub struct LayerSpec {
    /// `attn_norm` is required (else absent: post-norm-only models).
    pub attn_norm: bool,
    /// `attn_q_norm`/`attn_k_norm` of `k_dim` values are required.
    pub qk_norm: bool,
    /// `post_attention_norm` and `post_ffw_norm` are required.
    pub post_norms: bool,
    /// `attn_output_norm` and `layer_output_norm`, normalising the
    /// residual stream after each add (BERT), are required.
    pub res_norms: bool,
    /// `ffn_norm` is required (else absent: parallel blocks).
    pub ffn_norm: bool,
    /// Values get a weightless per-head RMSNorm (Gemma 4).
    pub v_norm: bool,
    /// The pre-FFN norm's tensor name (Qwen 3.5: `post_attention_norm`).
    pub ffn_norm_name: &'static str,
    /// The FFN of files without experts.
    pub ffn: FfnKind,
    /// How expert layers work, for architectures that have them: every
    /// layer after the `c.n_dense_lead` first is one when the file has
    /// experts (`c.n_expert > 0`).
    pub moe: Option<MoeSpec>,
}

/// The shape of the feed-forward network's tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfnKind {
    Gated,
    FusedGated,
    Mlp,
}

impl LayerSpec {
    /// Llama's layer: pre-norms, separate projections, a gated FFN.
    pub const LLAMA: LayerSpec = LayerSpec { attn_norm: true, qk_norm: false, post_norms: false, res_norms: false, ffn_norm: true, v_norm: false, ffn_norm_name: "ffn_norm", ffn: FfnKind::Gated, moe: None };
}

/// Loads `c.n_layer` layers: `window` and `rope` give each layer's sliding
/// window and RoPE table. Q/K/V are fused when `attn_qkv` is present;
/// every bias is loaded when present, as llama.cpp's loaders accept them.
/// Layers the config marks as recurrent get a short convolution, or a
/// delta net in models that have their shape.
pub fn load_layers(
    g: &Weights<'_>,
    c: &ModelConfig,
    spec: LayerSpec,
    window: impl Fn(usize) -> Option<usize>,
    rope: impl Fn(usize) -> RopeTable,
) -> Result<Vec<Layer>, ModelError> {
    (0..c.n_layer)
        .map(|i| {
            let (d, qd, kd, vd, od) = dims(c, i);
            let n = |s: &str| format!("blk.{i}.{s}");
            let norm = |name: &str, required: bool| if required { Norm::load(g, &n(name), d).map(Some) } else { Ok(None) };
            let qk = |name: &str| if spec.qk_norm { vector(g, &n(&format!("{name}.weight")), c.layer_heads[i].0).map(Some) } else { Ok(None) };
            let own_kv = c.kv_from[i] == i;
            let mixer = if c.kv_layers[i] {
                let qkv = match Linear::optional(g, &n("attn_qkv"), d, qd + kd + vd)? {
                    _ if !own_kv => Qkv::QueryOnly(Linear::load(g, &n("attn_q"), d, qd)?),
                    Some(fused) => Qkv::Fused(fused),
                    None => Qkv::Separate {
                        q: Linear::load(g, &n("attn_q"), d, if c.q_gate { 2 * qd } else { qd })?,
                        k: Linear::load(g, &n("attn_k"), d, kd)?,
                        v: Linear::load(g, &n("attn_v"), d, vd)?,
                    },
                };
                let k_norm = if own_kv { qk("attn_k_norm")? } else { None };
                let (q_norm, q_gate, v_norm) = (qk("attn_q_norm")?, c.q_gate, spec.v_norm);
                Mixer::Attention(Attention { qkv, q_norm, k_norm, q_gate, v_norm, out: Linear::load(g, &n("attn_output"), od, d)? })
            } else if let Some(shape) = c.delta_net {
                Mixer::DeltaNet(Box::new(DeltaNet::load(g, c, shape, i)?))
            } else {
                Mixer::ShortConv(ShortConv::load(g, c, i)?)
            };
            let f = c.layer_ff[i];
            let ffn = match (c.n_expert > 0 && i >= c.n_dense_lead, spec.ffn) {
                (true, _) => {
                    // The config keeps experts only for architectures with
                    // expert layers; a spec without them is a bug.
                    let moe = spec.moe.ok_or_else(|| ModelError::UnsupportedArchitecture(format!("{} with experts", c.arch)))?;
                    Ffn::Moe(Box::new(Moe::load(g, c, moe, i)?))
                }
                (false, FfnKind::Gated) => Ffn::Gated {
                    gate: Linear::load(g, &n("ffn_gate"), d, f)?,
                    up: Linear::load(g, &n("ffn_up"), d, f)?,
                    down: Linear::load(g, &n("ffn_down"), f, d)?,
                },
                (false, FfnKind::FusedGated) => Ffn::FusedGated { gate_up: Linear::load(g, &n("ffn_up"), d, 2 * f)?, down: Linear::load(g, &n("ffn_down"), f, d)? },
                (false, FfnKind::Mlp) => Ffn::Mlp { up: Linear::load(g, &n("ffn_up"), d, f)?, down: Linear::load(g, &n("ffn_down"), f, d)? },
            };
            let ff = if matches!(ffn, Ffn::Moe(_)) { c.ffn_width() } else { f };
            Ok(Layer {
                attn_norm: norm("attn_norm", spec.attn_norm)?,
                mixer,
                attn_post_norm: norm("post_attention_norm", spec.post_norms)?,
                ffn_norm: norm(spec.ffn_norm_name, spec.ffn_norm)?,
                ffn_post_norm: norm("post_ffw_norm", spec.post_norms)?,
                attn_res_norm: norm("attn_output_norm", spec.res_norms)?,
                ffn_res_norm: norm("layer_output_norm", spec.res_norms)?,
                ffn,
                window: window(i),
                rope: rope(i),
                head: c.layer_heads[i],
                ff,
                ple: None,
                out_scale: None,
            })
        })
        .collect()
}

/// `(n_embd, q, k, v, attention output)` widths per token of layer `l`.
fn dims(c: &ModelConfig, l: usize) -> (usize, usize, usize, usize, usize) {
    let (k, v) = c.layer_heads[l];
    (c.n_embd, c.n_head * k, c.n_head_kv * k, c.n_head_kv * v, c.n_head * v)
}

/// A decoder-only transformer: the embedding and output [`Head`], the
/// layers, the RoPE tables and the [`Options`].
#[derive(Debug)]
pub struct Decoder {
    pub opts: Options,
    pub head: Head,
    pub layers: Vec<Layer>,
    pub rope: Rope,
    /// The sliding-window layers' table, when it differs.
    pub rope_local: Option<Rope>,
    /// Phi-3 longrope: the `long` factors replace the global table's when
    /// the context is longer than `n_ctx_orig` positions.
    pub rope_long: Option<(Rope, usize)>,
    /// Gemma 4's per-layer embeddings, made once per batch.
    pub ple: Option<Box<PerLayerInputs>>,
}

impl Decoder {
    /// Fills `s.rope` (and `s.rope_local`) for the positions of `n` rows.
    pub(super) fn fill_rope(&self, s: &mut Scratch, n_ctx: usize, rows: Rows<'_>, n: usize) {
        let global = match &self.rope_long {
            Some((long, n_ctx_orig)) if n_ctx > *n_ctx_orig => long,
            _ => &self.rope,
        };
        let r = global.n_rot;
        for i in 0..n {
            global.cache(rows.pos(i), &mut s.rope[i * r..(i + 1) * r]);
        }
        if let Some(local) = &self.rope_local {
            let r = local.n_rot;
            for i in 0..n {
                local.cache(rows.pos(i), &mut s.rope_local[i * r..(i + 1) * r]);
            }
        }
    }

    /// Self-attention of layer `l` over `n` rows placed by `rows`: its
    /// output projection, before any post-norm, ends in `s.tmp`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn attend(&self, kv: &mut KvSet<'_, '_>, c: &ModelConfig, pool: &ThreadPool, file: &GgufFile, a: &Attention, w: &Layer, l: usize, s: &mut Scratch, rows: Rows<'_>, n: usize) {
        let o = &self.opts;
        let (d, qd, kd, vd, od) = dims(c, l);
        let (k_dim, v_dim) = w.head;
        let xn = &s.xn[..n * d];
        // Layers sharing an earlier layer's keys and values attend over its
        // slot and store nothing.
        let kv_layer = c.kv_from[l];
        match &a.qkv {
            Qkv::QueryOnly(q) => {
                matmul(pool, file, &q.w, xn, n, &mut s.xq, &mut s.q);
                q.add_bias(&mut s.q, n);
            }
            Qkv::Separate { q, k, v } => {
                matmul_many(pool, file, xn, n, &mut s.xq, &mut [(&q.w, &mut s.q[..]), (&k.w, &mut s.k[..]), (&v.w, &mut s.v[..])]);
                q.add_bias(&mut s.q, n);
                k.add_bias(&mut s.k, n);
                v.add_bias(&mut s.v, n);
                if a.q_gate {
                    split_gates(&mut s.q, &mut s.gate, n, c.n_head, k_dim);
                }
            }
            Qkv::Fused(qkv) => {
                // The fused output goes to `tmp` (wide enough: see
                // `Scratch` widths), then is split.
                let wide = qd + kd + vd;
                matmul(pool, file, &qkv.w, xn, n, &mut s.xq, &mut s.tmp);
                qkv.add_bias(&mut s.tmp, n);
                for i in 0..n {
                    let row = &s.tmp[i * wide..(i + 1) * wide];
                    s.q[i * qd..(i + 1) * qd].copy_from_slice(&row[..qd]);
                    s.k[i * kd..(i + 1) * kd].copy_from_slice(&row[qd..qd + kd]);
                    s.v[i * vd..(i + 1) * vd].copy_from_slice(&row[qd + kd..]);
                }
            }
        }
        let table = match w.rope {
            RopeTable::Global => Some((&s.rope, self.rope.n_rot)),
            RopeTable::Local => Some((&s.rope_local, self.rope_local.as_ref().map_or(self.rope.n_rot, |r| r.n_rot))),
            RopeTable::None => None,
        };
        let own_kv = kv_layer == l;
        for i in 0..n {
            let q = &mut s.q[i * qd..(i + 1) * qd];
            if let Some(qn) = &a.q_norm {
                q.chunks_exact_mut(k_dim).for_each(|h| rms_norm_inplace(h, qn, o.eps));
            }
            if let Some((table, r)) = table {
                rope_apply(q, k_dim, r, o.rope_style, &table[i * r..(i + 1) * r]);
            }
            if !own_kv {
                continue;
            }
            let k = &mut s.k[i * kd..(i + 1) * kd];
            if let Some(kn) = &a.k_norm {
                k.chunks_exact_mut(k_dim).for_each(|h| rms_norm_inplace(h, kn, o.eps));
            }
            if a.v_norm {
                s.v[i * vd..(i + 1) * vd].chunks_exact_mut(v_dim).for_each(|h| rms_norm_unweighted(h, o.eps));
            }
            if let Some((table, r)) = table {
                rope_apply(k, k_dim, r, o.rope_style, &table[i * r..(i + 1) * r]);
            }
            kv.row(i).store(l, rows.slot(i), &s.k[i * kd..(i + 1) * kd], &s.v[i * vd..(i + 1) * vd]);
        }
        let params = AttentionParams {
            layer: kv_layer,
            n_head: c.n_head,
            n_kv_head: c.n_head_kv,
            k_dim,
            v_dim,
            scale: o.kq_scale,
            window: w.window,
            softcap: o.attn_softcap,
        };
        match kv {
            KvSet::One(kv) => {
                let (mask, pos0) = rows.mask();
                attention(pool, &params, kv, &s.q, pos0, n, mask, &mut s.att);
            }
            // Each sequence over its own cache: the call a lone decode of
            // that row makes, so the bits are the same.
            KvSet::PerRow(caches) => {
                let qs = c.n_head * k_dim;
                let os = c.n_head * v_dim;
                for i in 0..n {
                    let q = &s.q[i * qs..(i + 1) * qs];
                    attention(pool, &params, caches[i], q, rows.pos(i), 1, Mask::Causal, &mut s.att[i * os..(i + 1) * os]);
                }
            }
        }
        if a.q_gate {
            for (o, &g) in s.att[..n * od].iter_mut().zip(&s.gate[..n * qd]) {
                *o *= sigmoid(g);
            }
        }
        matmul(pool, file, &a.out.w, &s.att[..n * od], n, &mut s.xq, &mut s.tmp);
        a.out.add_bias(&mut s.tmp, n);
    }
}

impl Decoder {
    /// The embeddings and every layer over `tokens`, placed by `rows`: the
    /// final residual stream (before any final norm) ends in `s.x`.
    fn trunk(&self, p: Pass<'_, '_, '_>, tokens: &[u32], rows: Rows<'_>) {
        let Pass { file, config: c, pool, mut kv, mut rs, scratch: s } = p;
        let o = &self.opts;
        let n = tokens.len();
        let d = c.n_embd;
        let mut row_tmp = Vec::new();

        self.head.embed(file, c, tokens, o.embed_scale, rows, s);
        if let Some(ple) = &self.ple {
            ple.compute(pool, file, c, tokens, o.eps, s);
        }
        self.fill_rope(s, rows.n_ctx(kv.capacity()), rows, n);

        for (l, w) in self.layers.iter().enumerate() {
            // Attention input: the normed residual (or the residual itself).
            match &w.attn_norm {
                Some(norm) => {
                    let x = &s.x;
                    pool.for_each_row_mut(&mut s.xn[..n * d], d, |i, xn| norm.apply(o.norm, o.eps, &x[i * d..(i + 1) * d], xn));
                }
                None => s.xn[..n * d].copy_from_slice(&s.x[..n * d]),
            }
            match &w.mixer {
                Mixer::Attention(a) => self.attend(&mut kv, c, pool, file, a, w, l, s, rows, n),
                Mixer::ShortConv(sc) => sc.forward(pool, file, recurrent(&mut rs).layer_mut(l), n, s),
                Mixer::DeltaNet(dn) => dn.forward(pool, file, recurrent(&mut rs).layer_mut(l), n, s),
            }
            if let Some(norm) = &w.attn_post_norm {
                norm.apply_rows(o.norm, o.eps, &mut s.tmp[..n * d], &mut row_tmp);
            }
            residual(&mut s.x[..n * d], &mut s.tmp[..n * d], o.residual_scale);
            if let Some(norm) = &w.attn_res_norm {
                renorm(pool, norm, o, &mut s.x[..n * d], &mut s.xn[..n * d]);
            }

            // FFN input: its own norm of the updated residual, or (parallel
            // blocks) the attention's normed input, still in `xn`.
            if let Some(norm) = &w.ffn_norm {
                let x = &s.x;
                pool.for_each_row_mut(&mut s.xn[..n * d], d, |i, xn| norm.apply(o.norm, o.eps, &x[i * d..(i + 1) * d], xn));
            } else if !o.parallel {
                s.xn[..n * d].copy_from_slice(&s.x[..n * d]);
            }
            let xn = &s.xn[..n * d];
            let act = o.act;
            let f = w.ff;
            match &w.ffn {
                Ffn::Gated { gate, up, down } => {
                    matmul_many(pool, file, xn, n, &mut s.xq, &mut [(&gate.w, &mut s.gate[..]), (&up.w, &mut s.up[..])]);
                    gate.add_bias(&mut s.gate, n);
                    up.add_bias(&mut s.up, n);
                    let up = &s.up;
                    pool.for_each_row_mut(&mut s.gate[..n * f], f, |i, g| gated(g, &up[i * f..(i + 1) * f], act));
                    matmul(pool, file, &down.w, &s.gate[..n * f], n, &mut s.xq, &mut s.tmp);
                    down.add_bias(&mut s.tmp, n);
                }
                Ffn::FusedGated { gate_up, down } => {
                    // `gate` is 2·n_ff wide for these models.
                    matmul(pool, file, &gate_up.w, xn, n, &mut s.xq, &mut s.gate);
                    gate_up.add_bias(&mut s.gate, n);
                    let both = &s.gate;
                    pool.for_each_row_mut(&mut s.up[..n * f], f, |i, out| {
                        let row = &both[i * 2 * f..(i + 1) * 2 * f];
                        for ((o, &g), &u) in out.iter_mut().zip(&row[..f]).zip(&row[f..]) {
                            *o = act(g) * u;
                        }
                    });
                    matmul(pool, file, &down.w, &s.up[..n * f], n, &mut s.xq, &mut s.tmp);
                    down.add_bias(&mut s.tmp, n);
                }
                Ffn::Mlp { up, down } => {
                    matmul(pool, file, &up.w, xn, n, &mut s.xq, &mut s.gate);
                    up.add_bias(&mut s.gate, n);
                    s.gate[..n * f].iter_mut().for_each(|v| *v = act(*v));
                    matmul(pool, file, &down.w, &s.gate[..n * f], n, &mut s.xq, &mut s.tmp);
                    down.add_bias(&mut s.tmp, n);
                }
                Ffn::Moe(moe) => moe.forward(pool, file, c, act, n, s),
            }
            if let Some(norm) = &w.ffn_post_norm {
                norm.apply_rows(o.norm, o.eps, &mut s.tmp[..n * d], &mut row_tmp);
            }
            residual(&mut s.x[..n * d], &mut s.tmp[..n * d], o.residual_scale);
            if let Some(norm) = &w.ffn_res_norm {
                renorm(pool, norm, o, &mut s.x[..n * d], &mut s.xn[..n * d]);
            }
            if let Some(block) = &w.ple {
                block.forward(pool, file, c, l, act, o.eps, n, &s.x[..n * d], &mut s.ple, &mut s.xq, &mut s.tmp);
                residual(&mut s.x[..n * d], &mut s.tmp[..n * d], 1.0);
            }
            if let Some(scale) = w.out_scale {
                s.x[..n * d].iter_mut().for_each(|v| *v *= scale);
            }
        }
    }
}

/// Logits per task of the final soft-cap.
const SOFTCAP_CHUNK: usize = 16384;

/// One pass's inputs: the model, where keys and values go, the recurrent
/// state (absent when several sequences decode together) and the scratch.
pub(super) struct Pass<'a, 'b, 'c> {
    pub(super) file: &'a GgufFile,
    pub(super) config: &'a ModelConfig,
    pub(super) pool: &'a ThreadPool,
    pub(super) kv: KvSet<'b, 'c>,
    pub(super) rs: Option<&'b mut RecurrentState>,
    pub(super) scratch: &'b mut Scratch,
}

/// The recurrent state of a one-sequence pass ([`Architecture::forward_rows`]
/// is only offered to models without recurrent layers).
fn recurrent<'a>(rs: &'a mut Option<&mut RecurrentState>) -> &'a mut RecurrentState {
    rs.as_deref_mut().expect("recurrent layers only run in one-sequence passes (batches_sequences is false for them)")
}

impl Decoder {
    /// The logits of rows `out_from..n` from the trunk's output in `s.x`.
    pub(super) fn logits(&self, pool: &ThreadPool, file: &GgufFile, c: &ModelConfig, s: &mut Scratch, n: usize, out_from: usize, logits: &mut [f32]) {
        let o = &self.opts;
        self.head.logits(pool, file, c, o.norm, o.eps, s, n, out_from, logits);
        let m = (n - out_from) * c.n_vocab;
        if o.logit_scale != 1.0 {
            logits[..m].iter_mut().for_each(|v| *v *= o.logit_scale);
        }
        // A tanh per logit: 5% of a Gemma 4 decode (262k vocabulary) on one
        // thread, so it is spread over the pool (the same function on every
        // value: the bits do not depend on the split).
        if let Some(cap) = o.final_softcap {
            let softcap = |chunk: &mut [f32]| chunk.iter_mut().for_each(|v| *v = (*v / cap).tanh() * cap);
            // Whole chunks on the pool, the rest here.
            let whole = m / SOFTCAP_CHUNK * SOFTCAP_CHUNK;
            pool.for_each_row_mut(&mut logits[..whole], SOFTCAP_CHUNK, |_, chunk| softcap(chunk));
            softcap(&mut logits[whole..m]);
        }
    }
}

impl Architecture for Decoder {
    fn forward(&self, env: &mut ForwardEnv<'_>, tokens: &[u32], pos0: usize, out_from: usize, logits: &mut [f32]) {
        let pass = Pass { file: env.file, config: env.config, pool: env.pool, kv: KvSet::One(&mut *env.kv), rs: Some(&mut *env.rs), scratch: &mut *env.scratch };
        self.trunk(pass, tokens, Rows::Continue { pos0 });
        self.logits(env.pool, env.file, env.config, env.scratch, tokens.len(), out_from, logits);
    }

    fn hidden(&self, env: &mut ForwardEnv<'_>, tokens: &[u32], rows: Rows<'_>, out: &mut [f32]) {
        let pass = Pass { file: env.file, config: env.config, pool: env.pool, kv: KvSet::One(&mut *env.kv), rs: Some(&mut *env.rs), scratch: &mut *env.scratch };
        self.trunk(pass, tokens, rows);
        let o = &self.opts;
        self.head.hidden(env.pool, env.config, o.norm, o.eps, env.scratch, tokens.len(), out);
    }

    fn has_logits(&self) -> bool {
        self.head.has_output()
    }

    fn forward_rows(&self, env: &mut BatchEnv<'_, '_>, tokens: &[u32], pos: &[u32], logits: &mut [f32]) {
        assert!(self.batches_sequences() && tokens.len() == pos.len() && tokens.len() == env.caches.len());
        let pass = Pass { file: env.file, config: env.config, pool: env.pool, kv: KvSet::PerRow(&mut *env.caches), rs: None, scratch: &mut *env.scratch };
        self.trunk(pass, tokens, Rows::PerRow { pos });
        self.logits(env.pool, env.file, env.config, env.scratch, tokens.len(), 0, logits);
    }

    fn batches_sequences(&self) -> bool {
        let recurrent = self.layers.iter().any(|w| !matches!(w.mixer, Mixer::Attention(_)));
        self.head.has_output() && !recurrent && self.rope_long.is_none()
    }
}

/// Splits gated query rows (per head: `k_dim` query values, then `k_dim`
/// gate values; `2 · n_head · k_dim` per token) into packed queries, left
/// in `q`, and packed gates in `gates`. Moving forward in place is safe:
/// every value lands at or before where it was read, after it was read.
fn split_gates(q: &mut [f32], gates: &mut [f32], n: usize, n_head: usize, k_dim: usize) {
    let qd = n_head * k_dim;
    for i in 0..n {
        for h in 0..n_head {
            let src = i * 2 * qd + h * 2 * k_dim;
            gates[i * qd + h * k_dim..i * qd + (h + 1) * k_dim].copy_from_slice(&q[src + k_dim..src + 2 * k_dim]);
            q.copy_within(src..src + k_dim, i * qd + h * k_dim);
        }
    }
}

/// `x = norm(x)`, row by row on the pool (`tmp`: as large as `x`).
fn renorm(pool: &ThreadPool, norm: &Norm, o: &Options, x: &mut [f32], tmp: &mut [f32]) {
    let d = norm.weight.len();
    let src = &*x;
    pool.for_each_row_mut(tmp, d, |i, out| norm.apply(o.norm, o.eps, &src[i * d..(i + 1) * d], out));
    x.copy_from_slice(tmp);
}

/// `x += scale · y` (`y` is scaled in place first, as ggml's separate ops).
fn residual(x: &mut [f32], y: &mut [f32], scale: f32) {
    if scale != 1.0 {
        y.iter_mut().for_each(|v| *v *= scale);
    }
    add_inplace(x, y);
}
