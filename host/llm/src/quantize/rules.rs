//! Which type each tensor gets when [`super::Quantizer`] (`edgewasm
//! quantize`) writes a model: a port of llama.cpp's rules
//! (`src/llama-quant.cpp` of the llama.cpp that
//! llama-cpp-python 0.3.36 vendors), restricted to the file types whose
//! tensor types we can quantize (no IQ*, TQ*, MXFP4, NVFP4, Q1_0, Q2_0).
//!
//! Every function names the llama.cpp function it mirrors. Without an
//! imatrix, `--tensor-type`, `--output-tensor-type`, `--token-embedding-type`
//! or `--leave-output-tensor`, llama.cpp's choice for a tensor depends only
//! on its name, shape, the model's hyper-parameters and the order in which
//! tensors are visited ([`llama_order`]), all of which are reproduced here.

use std::cmp::Ordering;

use edgewasm_gguf::GgmlType;

use super::Ftype;

/// The hyper-parameters the rules look at (`qs.model` in llama.cpp).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// `general.architecture`.
    pub arch: String,
    /// `{arch}.block_count` (`hparams.n_layer_all`).
    pub n_layer: u32,
    /// `{arch}.attention.head_count` (of layer 0).
    pub n_head: u32,
    /// `{arch}.attention.head_count_kv` (of layer 0; `n_head` when absent).
    pub n_head_kv: u32,
    /// `{arch}.expert_count` (0 when absent).
    pub n_expert: u32,
}

impl ModelInfo {
    /// `llama_hparams::n_gqa`.
    fn n_gqa(&self) -> u32 {
        self.n_head.checked_div(self.n_head_kv).unwrap_or(0)
    }

    /// `model.type == LLM_TYPE_70B`, as the model loaders of `src/models/`
    /// set it (llama: 80 layers with GQA; qwen2, deci, olmo: 80 layers;
    /// jais2: 68 layers).
    fn is_70b(&self) -> bool {
        match self.arch.as_str() {
            "llama" => self.n_layer == 80 && self.n_head != self.n_head_kv,
            "qwen2" | "deci" | "olmo" => self.n_layer == 80,
            "jais2" => self.n_layer == 68,
            _ => false,
        }
    }

    fn is_falcon(&self) -> bool {
        self.arch == "falcon"
    }
}

/// One tensor as the rules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorDesc {
    pub name: String,
    /// ggml order: `dims[0]` is the row length.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
}

/// The decision for one tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The type written.
    pub ty: GgmlType,
    /// Whether llama.cpp would quantize this tensor at all
    /// (`tensor_allows_quantization`); if not, it is copied.
    pub allowed: bool,
    /// Set when the row length did not fit the type the mixture asked for:
    /// `(wanted, row length)` (`tensor_type_fallback`).
    pub fallback: Option<(GgmlType, u64)>,
}

/// `tensor_category` / `tensor_get_category`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    AttentionQ,
    AttentionV,
    AttentionK,
    AttentionQkv,
    AttentionKvB,
    AttentionOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

/// `tensor_get_category`.
fn category(name: &str) -> Category {
    if name == "output.weight" {
        return Category::Output;
    }
    if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        return Category::TokenEmbd;
    }
    let rules = [
        ("attn_qkv.weight", Category::AttentionQkv),
        ("attn_kv_b.weight", Category::AttentionKvB),
        ("attn_v.weight", Category::AttentionV),
        ("attn_k.weight", Category::AttentionK),
        ("attn_q.weight", Category::AttentionQ),
        ("attn_output.weight", Category::AttentionOutput),
        ("ffn_up", Category::FfnUp),
        ("ffn_gate", Category::FfnGate),
        ("ffn_down", Category::FfnDown),
    ];
    rules
        .into_iter()
        .find(|(pat, _)| name.contains(pat))
        .map_or(Category::Other, |(_, c)| c)
}

/// `category_is_attn_v`.
fn is_attn_v(c: Category) -> bool {
    matches!(c, Category::AttentionV | Category::AttentionQkv | Category::AttentionKvB)
}

/// `ggml_n_dims`: the number of dimensions, trailing 1s not counted
/// (at least 1).
fn ggml_n_dims(dims: &[u64]) -> usize {
    dims.iter().rposition(|&d| d > 1).map_or(1, |i| i + 1)
}

/// `tensor_allows_quantization` (with `only_copy` and
/// `--leave-output-tensor` off): 2-D and 3-D tensors whose name ends in
/// `weight`, except norms and the small or special tensors llama.cpp lists.
fn allows_quantization(arch: &str, name: &str, dims: &[u64]) -> bool {
    if ggml_n_dims(dims) < 2 {
        return false;
    }
    if !name.ends_with("weight") {
        return false;
    }
    const NEVER: [&str; 35] = [
        "_norm.weight",
        "ffn_gate_inp.weight",
        "ffn_gate_tid2eid.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "indexer.k_proj.weight",
        "indexer.q_proj.weight",
        "time_mix_first.weight",
        "time_mix_w0.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_v0.weight",
        "time_mix_v1.weight",
        "time_mix_v2.weight",
        "time_mix_a0.weight",
        "time_mix_a1.weight",
        "time_mix_a2.weight",
        "time_mix_g1.weight",
        "time_mix_g2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
        ".position_embd",
        "sam.pos_embd",
        "sam.neck.",
        "sam.net_",
        ".rel_pos",
        ".patch_embd",
        ".patch_merger",
        "a.rvq.codebook",
        "mm.a.code_embd",
    ];
    if NEVER.iter().any(|p| name.contains(p)) {
        return false;
    }
    // LLM_TN(arch)(LLM_TENSOR_POS_EMBD / LLM_TENSOR_TOKEN_TYPES, "weight").
    if name == "position_embd.weight" || name == "token_types.weight" {
        return false;
    }
    const GLM5_NEXT: [&str; 14] = [
        "hc_",
        "indexer.attn_q_b",
        "indexer.attn_k",
        "indexer.proj",
        "indexer_compressor_gate",
        "indexer_compressor_ape",
        "ssm_f_a.weight",
        "ssm_f_b.weight",
        "ssm_g_a.weight",
        "ssm_g_b.weight",
        "ssm_beta.weight",
        "attn_kv_a_mqa.weight",
        "attn_k_b.weight",
        "attn_v_b.weight",
    ];
    !(arch == "glm5-next" && GLM5_NEXT.iter().any(|p| name.contains(p)))
}

/// The layer number of `blk.N.…` names, as `sscanf(name, "blk.%d.", &l)`
/// reads it (`None` when it does not match: layer -1).
fn blk_layer(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("blk.")?.trim_start();
    let (sign, digits) = match rest.as_bytes().first()? {
        b'-' => (-1, &rest[1..]),
        b'+' => (1, &rest[1..]),
        _ => (1, rest),
    };
    let end = digits.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse::<i64>().ok().map(|n| sign * n)
}

/// `llama_model_loader::weight_name_comparer`: llama.cpp visits (and
/// writes) tensors sorted by layer number (`-1` for tensors outside
/// `blk.N.`), then by name. The per-category counters of the K-quant
/// mixtures count tensors in this order.
pub fn llama_order(a: &str, b: &str) -> Ordering {
    let la = blk_layer(a).unwrap_or(-1);
    let lb = blk_layer(b).unwrap_or(-1);
    la.cmp(&lb).then_with(|| a.cmp(b))
}

/// Errors the rules can raise (llama.cpp throws the same).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// `tensor_type_fallback`: no fallback for a type with a block > 32.
    #[error("{tensor}: no tensor type fallback is defined for type {ty}")]
    NoFallback { tensor: String, ty: GgmlType },
    /// `layer_info`: an expert model's FFN tensor without a valid `blk.N.`.
    #[error("failed to determine the layer (0..{n_layer}) of tensor {tensor}")]
    BadLayer { tensor: String, n_layer: i64 },
}

/// The state llama.cpp keeps while choosing types (`quantize_state_impl`).
struct State<'a> {
    model: &'a ModelInfo,
    ftype: Ftype,
    n_attention_wv: u32,
    i_attention_wv: u32,
    n_ffn_down: u32,
    i_ffn_down: u32,
    i_ffn_gate: u32,
    i_ffn_up: u32,
    has_tied_embeddings: bool,
}

/// `use_more_bits` in `llama_tensor_get_type_impl`.
fn use_more_bits(i_layer: i64, n_layers: i64) -> bool {
    i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2
}

/// Chooses the type of every tensor, like the preliminary loop of
/// `llama_model_quantize_impl` (which calls `llama_tensor_get_type` per
/// tensor). `tensors` must be in [`llama_order`]: the K-quant mixtures count
/// `attn_v` and `ffn_down` tensors in that order. `pure` is llama-quantize's
/// `--pure`: every quantizable tensor gets the default type (still subject
/// to the shape fallback, as in llama.cpp).
pub fn choose_types(
    model: &ModelInfo,
    ftype: Ftype,
    pure: bool,
    tensors: &[TensorDesc],
) -> Result<Vec<Choice>, RuleError> {
    // init_quantize_state_counters.
    let mut qs = State {
        model,
        ftype,
        n_attention_wv: 0,
        i_attention_wv: 0,
        n_ffn_down: model.n_layer,
        i_ffn_down: 0,
        i_ffn_gate: 0,
        i_ffn_up: 0,
        has_tied_embeddings: true,
    };
    for t in tensors {
        let c = category(&t.name);
        if is_attn_v(c) {
            qs.n_attention_wv += 1;
        }
        if c == Category::Output {
            qs.has_tied_embeddings = false;
        }
    }
    tensors.iter().map(|t| get_type(&mut qs, pure, t)).collect()
}

/// `llama_tensor_get_type` (without imatrix and type overrides).
fn get_type(qs: &mut State<'_>, pure: bool, t: &TensorDesc) -> Result<Choice, RuleError> {
    if !allows_quantization(&qs.model.arch, &t.name, &t.dims) {
        return Ok(Choice { ty: t.ty, allowed: false, fallback: None });
    }
    let default_type = qs.ftype.default_type();
    let mut ty = default_type;
    let mut fallback = None;
    if default_type.is_quantized() {
        if !pure {
            ty = get_type_impl(qs, ty, t)?;
        }
        let wanted = ty;
        ty = type_fallback(t, ty)?;
        if ty != wanted {
            fallback = Some((wanted, t.dims[0]));
        }
    }
    Ok(Choice { ty, allowed: true, fallback })
}

/// `tensor_type_fallback`: a row length that is not a multiple of the
/// type's block size gets a type with 32-element blocks, or F16 when even
/// that does not fit.
fn type_fallback(t: &TensorDesc, target: GgmlType) -> Result<GgmlType, RuleError> {
    let ncols = t.dims[0];
    let qk = target.block_size() as u64;
    if ncols.is_multiple_of(qk) {
        return Ok(target);
    }
    let ret = match target {
        GgmlType::Q2_K | GgmlType::Q3_K => GgmlType::Q4_0,
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        GgmlType::IQ4_XS => GgmlType::IQ4_NL,
        _ if qk <= 32 => target,
        _ => return Err(RuleError::NoFallback { tensor: t.name.clone(), ty: target }),
    };
    Ok(if ncols.is_multiple_of(ret.block_size() as u64) { ret } else { GgmlType::F16 })
}

/// `layer_info` in `llama_tensor_get_type_impl`: with fewer than 2 experts
/// the layer is the running count of tensors of the category; with experts
/// it is parsed from the name, which must be `blk.N.` with `N < n_layer`.
fn layer_info(m: &ModelInfo, counter: u32, n_layer: u32, name: &str) -> Result<(i64, i64), RuleError> {
    let n_layer = i64::from(n_layer);
    if m.n_expert <= 1 {
        return Ok((i64::from(counter), n_layer));
    }
    match blk_layer(name) {
        Some(l) if (0..n_layer).contains(&l) => Ok((l, n_layer)),
        _ => Err(RuleError::BadLayer { tensor: name.to_owned(), n_layer }),
    }
}

/// `llama_tensor_get_type_impl`: the mixture of the file type. Only the
/// branches reachable for the file types in [`Ftype`] are ported; those
/// for IQ*, TQ*, MXFP4, Q2_0 and Q2_K_S file types are left out.
fn get_type_impl(qs: &mut State<'_>, mut new_type: GgmlType, t: &TensorDesc) -> Result<GgmlType, RuleError> {
    use Ftype as F;
    use GgmlType as T;
    let m = qs.model;
    let ftype = qs.ftype;
    let cat = category(&t.name);
    let name = t.name.as_str();

    // GLM5-next: attn_q_a, attn_q_b, nextn.eh_proj never below Q8_0
    // (new_type is always quantized here).
    if m.arch == "glm5-next"
        && (name.contains("attn_q_a") || name.contains("attn_q_b") || name.contains("nextn.eh_proj"))
    {
        return Ok(T::Q8_0);
    }

    // The output tensor, and token_embd when it is shared with the output
    // (no `output.weight`): Q8_0 on Falcon or when the row length does not
    // fit the default type's block, else Q6_K unless the default is Q8_0.
    if cat == Category::Output || (qs.has_tied_embeddings && cat == Category::TokenEmbd) {
        let nx = t.dims[0];
        let qk = new_type.block_size() as u64;
        if m.is_falcon() || !nx.is_multiple_of(qk) {
            new_type = T::Q8_0;
        } else if new_type != T::Q8_0 {
            new_type = T::Q6_K;
        }
    } else if cat == Category::TokenEmbd {
        // Untied token embeddings keep the default type for these ftypes.
    } else if is_attn_v(cat) {
        if ftype == F::Q2_K {
            new_type = if m.n_gqa() >= 4 { T::Q4_K } else { T::Q3_K };
        } else if ftype == F::Q3_K_M {
            new_type = if qs.i_attention_wv < 2 { T::Q5_K } else { T::Q4_K };
        } else if ftype == F::Q3_K_L {
            new_type = T::Q5_K;
        } else if matches!(ftype, F::IQ4_NL | F::IQ4_XS) && m.n_gqa() >= 4 {
            new_type = T::Q5_K;
        } else if (ftype == F::Q4_K_M || ftype == F::Q5_K_M)
            && use_more_bits(qs.i_attention_wv.into(), qs.n_attention_wv.into())
        {
            new_type = T::Q6_K;
        } else if ftype == F::Q4_K_S && qs.i_attention_wv < 4 {
            new_type = T::Q5_K;
        }
        if m.is_70b() && (new_type == T::Q3_K || new_type == T::Q4_K) {
            new_type = T::Q5_K;
        }
        if m.n_expert == 8 {
            new_type = T::Q8_0;
        }
        qs.i_attention_wv += 1;
    } else if cat == Category::AttentionK {
        if m.n_expert == 8 {
            new_type = T::Q8_0;
        }
    } else if cat == Category::AttentionQ {
        // Only IQ3 file types change attn_q.
    } else if cat == Category::FfnDown {
        let (i_layer, n_layer) = layer_info(m, qs.i_ffn_down, qs.n_ffn_down, name)?;
        if ftype == F::Q2_K {
            new_type = T::Q3_K;
        } else if ftype == F::Q3_K_M {
            new_type = if i_layer < n_layer / 16 {
                T::Q5_K
            } else if !m.is_falcon() || use_more_bits(i_layer, n_layer) {
                T::Q4_K
            } else {
                T::Q3_K
            };
        } else if ftype == F::Q3_K_L {
            new_type = if m.is_falcon() { T::Q4_K } else { T::Q5_K };
        } else if ftype == F::Q4_K_M {
            if m.is_falcon() {
                new_type = if i_layer < n_layer / 16 {
                    T::Q6_K
                } else if use_more_bits(i_layer, n_layer) {
                    T::Q5_K
                } else {
                    T::Q4_K
                };
            } else if use_more_bits(i_layer, n_layer) {
                new_type = T::Q6_K;
            }
        } else if i_layer < n_layer / 8 && matches!(ftype, F::IQ4_NL | F::IQ4_XS) {
            // (Without an imatrix, which edgewasm never has.)
            new_type = T::Q5_K;
        } else if ftype == F::Q5_K_M && use_more_bits(i_layer, n_layer) {
            new_type = T::Q6_K;
        } else if ftype == F::Q4_K_S && !m.is_falcon() && i_layer < n_layer / 8 {
            new_type = T::Q5_K;
        }
        // (Q4_0/Q5_0 → Q4_1/Q5_1 in the first layers only with an imatrix.)
        qs.i_ffn_down += 1;
    } else if cat == Category::AttentionOutput {
        if !m.is_falcon() {
            if m.n_expert == 8 {
                if matches!(ftype, F::Q2_K | F::Q3_K_S | F::Q3_K_M | F::IQ4_NL | F::Q4_K_S | F::Q4_K_M | F::IQ4_XS) {
                    new_type = T::Q5_K;
                }
            } else if ftype == F::Q2_K {
                new_type = T::Q3_K;
            } else if ftype == F::Q3_K_M {
                new_type = T::Q4_K;
            } else if ftype == F::Q3_K_L {
                new_type = T::Q5_K;
            }
        } else if ftype == F::Q3_K_L {
            new_type = T::Q4_K;
        }
    } else if cat == Category::AttentionQkv {
        // Not reached: attn_qkv is an attn_v-like category, handled above
        // (the same shadowing as in llama.cpp).
    } else if cat == Category::FfnGate || cat == Category::FfnUp {
        // Only IQ3_XS changes their type, but with experts a name without a
        // valid layer is an error, as in llama.cpp.
        let counter = if cat == Category::FfnGate { &mut qs.i_ffn_gate } else { &mut qs.i_ffn_up };
        layer_info(m, *counter, qs.model.n_layer, name)?;
        *counter += 1;
    }
    Ok(new_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M: llama, 30 layers, 9 heads, 3 KV heads, tied
    /// embeddings, n_embd 576, n_ff 1536, n_vocab 49152.
    fn smollm2() -> (ModelInfo, Vec<TensorDesc>) {
        let model = ModelInfo {
            arch: "llama".into(),
            n_layer: 30,
            n_head: 9,
            n_head_kv: 3,
            n_expert: 0,
        };
        let t = |name: String, dims: &[u64], ty| TensorDesc { name, dims: dims.to_vec(), ty };
        let mut ts = vec![
            t("token_embd.weight".into(), &[576, 49152], GgmlType::Q8_0),
            t("output_norm.weight".into(), &[576], GgmlType::F32),
        ];
        for l in 0..30 {
            let q = GgmlType::Q4_1;
            ts.push(t(format!("blk.{l}.attn_norm.weight"), &[576], GgmlType::F32));
            ts.push(t(format!("blk.{l}.attn_q.weight"), &[576, 576], q));
            ts.push(t(format!("blk.{l}.attn_k.weight"), &[576, 192], q));
            ts.push(t(format!("blk.{l}.attn_v.weight"), &[576, 192], q));
            ts.push(t(format!("blk.{l}.attn_output.weight"), &[576, 576], q));
            ts.push(t(format!("blk.{l}.ffn_norm.weight"), &[576], GgmlType::F32));
            ts.push(t(format!("blk.{l}.ffn_gate.weight"), &[576, 1536], q));
            ts.push(t(format!("blk.{l}.ffn_up.weight"), &[576, 1536], q));
            ts.push(t(format!("blk.{l}.ffn_down.weight"), &[1536, 576], q));
        }
        ts.sort_by(|a, b| llama_order(&a.name, &b.name));
        (model, ts)
    }

    fn types_of(ftype: Ftype, pure: bool) -> Vec<(String, GgmlType)> {
        let (m, ts) = smollm2();
        let cs = choose_types(&m, ftype, pure, &ts).unwrap();
        ts.into_iter().zip(cs).map(|(t, c)| (t.name, c.ty)).collect()
    }

    fn ty(types: &[(String, GgmlType)], name: &str) -> GgmlType {
        types.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn order_is_by_layer_then_name() {
        let mut names = vec!["blk.10.attn_q.weight", "output_norm.weight", "blk.2.ffn_up.weight", "blk.2.attn_k.weight", "token_embd.weight"];
        names.sort_by(|a, b| llama_order(a, b));
        assert_eq!(
            names,
            ["output_norm.weight", "token_embd.weight", "blk.2.attn_k.weight", "blk.2.ffn_up.weight", "blk.10.attn_q.weight"]
        );
        assert_eq!(blk_layer("blk.x.attn"), None);
        assert_eq!(blk_layer("blk.-3.attn"), Some(-3));
    }

    #[test]
    fn which_tensors_are_quantized() {
        assert!(allows_quantization("llama", "blk.0.attn_q.weight", &[576, 576]));
        assert!(!allows_quantization("llama", "blk.0.attn_norm.weight", &[576]));
        // 1-D after dropping trailing 1s.
        assert!(!allows_quantization("llama", "blk.0.attn_q.weight", &[576, 1]));
        assert!(!allows_quantization("llama", "blk.0.attn_q.bias", &[576, 576]));
        assert!(!allows_quantization("llama", "blk.0.ffn_gate_inp.weight", &[576, 8]));
        assert!(!allows_quantization("llama", "blk.0.q_norm_norm.weight", &[64, 64]));
        assert!(!allows_quantization("bert", "position_embd.weight", &[576, 512]));
        assert!(allows_quantization("llama", "blk.0.hc_x.weight", &[64, 64]));
        assert!(!allows_quantization("glm5-next", "blk.0.hc_x.weight", &[64, 64]));
        assert_eq!(ggml_n_dims(&[4, 1, 1]), 1);
        assert_eq!(ggml_n_dims(&[4, 1, 3]), 3);
    }

    #[test]
    fn categories() {
        assert_eq!(category("output.weight"), Category::Output);
        assert_eq!(category("token_embd.weight"), Category::TokenEmbd);
        assert_eq!(category("blk.3.attn_qkv.weight"), Category::AttentionQkv);
        assert_eq!(category("blk.3.attn_v.weight"), Category::AttentionV);
        assert_eq!(category("blk.3.ffn_down_exps.weight"), Category::FfnDown);
        assert_eq!(category("blk.3.attn_norm.weight"), Category::Other);
    }

    #[test]
    fn q8_0_keeps_tied_embeddings_q8_0() {
        let t = types_of(Ftype::Q8_0, false);
        assert_eq!(ty(&t, "token_embd.weight"), GgmlType::Q8_0);
        assert_eq!(ty(&t, "output_norm.weight"), GgmlType::F32);
        assert_eq!(ty(&t, "blk.7.attn_norm.weight"), GgmlType::F32);
        for (n, ty) in &t {
            if n.starts_with("blk.") && !n.contains("norm") {
                assert_eq!(*ty, GgmlType::Q8_0, "{n}");
            }
        }
    }

    #[test]
    fn q4_0_tied_embeddings_want_q6_k_and_fall_back_to_q8_0() {
        let (m, ts) = smollm2();
        let cs = choose_types(&m, Ftype::Q4_0, false, &ts).unwrap();
        let i = ts.iter().position(|t| t.name == "token_embd.weight").unwrap();
        assert_eq!(cs[i], Choice { ty: GgmlType::Q8_0, allowed: true, fallback: Some((GgmlType::Q6_K, 576)) });
        let t = types_of(Ftype::Q4_0, false);
        assert_eq!(ty(&t, "blk.0.ffn_down.weight"), GgmlType::Q4_0);
        assert_eq!(ty(&t, "blk.29.attn_v.weight"), GgmlType::Q4_0);
    }

    #[test]
    fn untied_output_gets_q6_k_and_token_embd_the_default() {
        let m = ModelInfo { arch: "llama".into(), n_layer: 1, n_head: 4, n_head_kv: 4, n_expert: 0 };
        let t = |n: &str, d: &[u64]| TensorDesc { name: n.into(), dims: d.to_vec(), ty: GgmlType::F32 };
        let ts = vec![t("output.weight", &[512, 1000]), t("token_embd.weight", &[512, 1000])];
        let cs = choose_types(&m, Ftype::Q4_0, false, &ts).unwrap();
        assert_eq!((cs[0].ty, cs[1].ty), (GgmlType::Q6_K, GgmlType::Q4_0));
        // Falcon: output is Q8_0.
        let f = ModelInfo { arch: "falcon".into(), ..m.clone() };
        assert_eq!(choose_types(&f, Ftype::Q4_0, false, &ts).unwrap()[0].ty, GgmlType::Q8_0);
        // --pure: the default type everywhere.
        let cs = choose_types(&m, Ftype::Q4_0, true, &ts).unwrap();
        assert_eq!((cs[0].ty, cs[1].ty), (GgmlType::Q4_0, GgmlType::Q4_0));
    }

    #[test]
    fn pure_q4_0_puts_token_embd_in_q4_0() {
        let t = types_of(Ftype::Q4_0, true);
        assert_eq!(ty(&t, "token_embd.weight"), GgmlType::Q4_0);
        assert_eq!(ty(&t, "blk.0.attn_v.weight"), GgmlType::Q4_0);
        assert_eq!(ty(&t, "output_norm.weight"), GgmlType::F32);
    }

    #[test]
    fn q4_k_m_mixture_on_576_wide_rows() {
        let t = types_of(Ftype::Q4_K_M, false);
        // Row length 576 is not a multiple of 256: Q4_K → Q5_0, Q6_K → Q8_0.
        assert_eq!(ty(&t, "blk.5.attn_q.weight"), GgmlType::Q5_0);
        assert_eq!(ty(&t, "blk.5.ffn_gate.weight"), GgmlType::Q5_0);
        assert_eq!(ty(&t, "token_embd.weight"), GgmlType::Q8_0);
        // attn_v, use_more_bits(i, 30): i < 3, i >= 26, (i - 3) % 3 == 2.
        assert_eq!(ty(&t, "blk.0.attn_v.weight"), GgmlType::Q8_0); // Q6_K fallback
        assert_eq!(ty(&t, "blk.4.attn_v.weight"), GgmlType::Q5_0);
        // ffn_down rows are 1536 = 6 * 256: K-quants fit.
        let more: Vec<u32> = (0..30).filter(|&i| use_more_bits(i.into(), 30)).collect();
        assert_eq!(more, [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29]);
        for l in 0..30 {
            let want = if more.contains(&l) { GgmlType::Q6_K } else { GgmlType::Q4_K };
            assert_eq!(ty(&t, &format!("blk.{l}.ffn_down.weight")), want, "layer {l}");
        }
    }

    #[test]
    fn q4_k_s_and_q5_k_m_and_q6_k() {
        let t = types_of(Ftype::Q4_K_S, false);
        // attn_v of the first 4 layers: Q5_K → (576 rows) Q5_1.
        assert_eq!(ty(&t, "blk.3.attn_v.weight"), GgmlType::Q5_1);
        assert_eq!(ty(&t, "blk.4.attn_v.weight"), GgmlType::Q5_0);
        // ffn_down of the first n_layer/8 = 3 layers: Q5_K.
        assert_eq!(ty(&t, "blk.2.ffn_down.weight"), GgmlType::Q5_K);
        assert_eq!(ty(&t, "blk.3.ffn_down.weight"), GgmlType::Q4_K);
        let t = types_of(Ftype::Q5_K_M, false);
        assert_eq!(ty(&t, "blk.0.ffn_down.weight"), GgmlType::Q6_K);
        assert_eq!(ty(&t, "blk.3.ffn_down.weight"), GgmlType::Q5_K);
        assert_eq!(ty(&t, "blk.3.attn_q.weight"), GgmlType::Q5_1);
        let t = types_of(Ftype::Q6_K, false);
        assert_eq!(ty(&t, "blk.3.ffn_down.weight"), GgmlType::Q6_K);
        assert_eq!(ty(&t, "blk.3.attn_q.weight"), GgmlType::Q8_0);
        assert_eq!(ty(&t, "token_embd.weight"), GgmlType::Q8_0);
    }

    #[test]
    fn iq4_xs_and_iq4_nl() {
        // SmolLM2: 576-wide rows are not whole IQ4_XS blocks → IQ4_NL;
        // the tied embedding → Q8_0 (576 % 256); ffn_down (1536 wide) of the
        // first n_layer/8 = 3 layers → Q5_K; attn_v keeps the default (GQA 3).
        let t = types_of(Ftype::IQ4_XS, false);
        assert_eq!(ty(&t, "blk.3.attn_q.weight"), GgmlType::IQ4_NL);
        assert_eq!(ty(&t, "blk.3.attn_v.weight"), GgmlType::IQ4_NL);
        assert_eq!(ty(&t, "blk.2.ffn_down.weight"), GgmlType::Q5_K);
        assert_eq!(ty(&t, "blk.3.ffn_down.weight"), GgmlType::IQ4_XS);
        assert_eq!(ty(&t, "token_embd.weight"), GgmlType::Q8_0);
        let t = types_of(Ftype::IQ4_NL, false);
        assert_eq!(ty(&t, "blk.3.attn_q.weight"), GgmlType::IQ4_NL);
        assert_eq!(ty(&t, "blk.3.ffn_down.weight"), GgmlType::IQ4_NL);
        // Q6_K for the tied embedding, 576 wide → Q8_0.
        assert_eq!(ty(&t, "token_embd.weight"), GgmlType::Q8_0);
    }

    #[test]
    fn float_ftypes_skip_the_mixture() {
        let t = types_of(Ftype::F16, false);
        assert_eq!(ty(&t, "token_embd.weight"), GgmlType::F16);
        assert_eq!(ty(&t, "blk.0.ffn_down.weight"), GgmlType::F16);
        assert_eq!(ty(&t, "output_norm.weight"), GgmlType::F32);
    }

    #[test]
    fn fallbacks() {
        let d = |n: u64| TensorDesc { name: "x.weight".into(), dims: vec![n, 4], ty: GgmlType::F32 };
        assert_eq!(type_fallback(&d(512), GgmlType::Q4_K), Ok(GgmlType::Q4_K));
        assert_eq!(type_fallback(&d(576), GgmlType::Q2_K), Ok(GgmlType::Q4_0));
        assert_eq!(type_fallback(&d(576), GgmlType::Q3_K), Ok(GgmlType::Q4_0));
        assert_eq!(type_fallback(&d(576), GgmlType::Q5_K), Ok(GgmlType::Q5_1));
        // Not even a multiple of 32: F16.
        assert_eq!(type_fallback(&d(100), GgmlType::Q6_K), Ok(GgmlType::F16));
        assert_eq!(type_fallback(&d(100), GgmlType::Q4_0), Ok(GgmlType::F16));
    }

    #[test]
    fn experts_and_70b() {
        let m = ModelInfo { arch: "llama".into(), n_layer: 80, n_head: 64, n_head_kv: 8, n_expert: 0 };
        assert!(m.is_70b());
        let v = TensorDesc { name: "blk.40.attn_v.weight".into(), dims: vec![8192, 1024], ty: GgmlType::F16 };
        // Q4_K_S: layer counter 0 < 4 → Q5_K anyway; Q2_K with GQA 8 → Q4_K → 70B bump Q5_K.
        assert_eq!(choose_types(&m, Ftype::Q2_K, false, std::slice::from_ref(&v)).unwrap()[0].ty, GgmlType::Q5_K);
        let e = ModelInfo { n_expert: 8, n_layer: 32, ..m };
        assert_eq!(choose_types(&e, Ftype::Q4_K_M, false, &[v]).unwrap()[0].ty, GgmlType::Q8_0);
    }
}
