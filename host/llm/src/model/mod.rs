//! Models: a mapped GGUF file, its hyperparameters, tokenizer and weights,
//! shared read-only by every inference context.
//!
//! Every architecture is a [`decoder::Decoder`]: its file chooses the
//! decoder's options and which tensors each layer has; the blocks live in
//! `decoder`, `ops`, `rope`, `matmul` and `attention`. Gemma 3n wraps the
//! same decoder's layers in its parallel residual streams ([`gemma3n`]).

pub mod attention;
pub mod bert;
pub mod config;
pub mod decoder;
pub mod deltanet;
pub mod gemma;
pub mod gemma3n;
pub mod head;
pub mod lfm2;
pub mod llama;
pub mod matmul;
pub mod moe;
pub mod ops;
pub mod phi;
pub mod ple;
pub mod qwen;
pub mod qwen35;
pub mod rope;
pub mod shortconv;
pub mod starcoder2;
mod weights;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use edgewasm_gguf::{GgmlType, GgufFile};
use edgewasm_grammar::TokenTrie;
use edgewasm_tokenizer::Tokenizer;

use crate::kv_cache::KvCache;
use crate::recurrent::RecurrentState;
use crate::threadpool::ThreadPool;
use crate::ModelError;
pub use attention::Mask;
pub use config::ModelConfig;
use matmul::ActBuf;

/// What an architecture needs for one forward pass.
#[allow(missing_debug_implementations)] // borrows only; nothing useful to print
pub struct ForwardEnv<'a> {
    pub file: &'a GgufFile,
    pub config: &'a ModelConfig,
    pub pool: &'a ThreadPool,
    pub kv: &'a mut KvCache,
    pub rs: &'a mut RecurrentState,
    pub scratch: &'a mut Scratch,
}

/// What [`Architecture::forward_rows`] needs: the caches of the sequences
/// decoded together, one per row.
#[allow(missing_debug_implementations)] // borrows only; nothing useful to print
pub struct BatchEnv<'a, 'b> {
    pub file: &'a GgufFile,
    pub config: &'a ModelConfig,
    pub pool: &'a ThreadPool,
    pub caches: &'a mut [&'b mut KvCache],
    pub scratch: &'a mut Scratch,
}

/// Where a pass's keys and values go.
#[allow(missing_debug_implementations)]
pub enum KvSet<'a, 'b> {
    /// One cache: one sequence, or sequences packed in it ([`Rows::Packed`]).
    One(&'a mut KvCache),
    /// Several sequences decoded together ([`Rows::PerRow`]): row `i`
    /// stores into and attends over `caches[i]`.
    PerRow(&'a mut [&'b mut KvCache]),
}

impl KvSet<'_, '_> {
    /// The cache of row `i`.
    pub fn row(&mut self, i: usize) -> &mut KvCache {
        match self {
            KvSet::One(kv) => kv,
            KvSet::PerRow(caches) => caches[i],
        }
    }

    /// The capacity of the (first) cache: what chooses context-dependent
    /// RoPE factors.
    pub fn capacity(&self) -> usize {
        match self {
            KvSet::One(kv) => kv.capacity(),
            KvSet::PerRow(caches) => caches.first().map_or(0, |c| c.capacity()),
        }
    }
}

/// Where the rows of a batch go: their positions in their sequences, their
/// cache slots, and the keys each attends to.
#[derive(Clone, Copy, Debug)]
pub enum Rows<'a> {
    /// One sequence continuing at position `pos0`, which is also the cache
    /// slot of row 0; causal.
    Continue { pos0: usize },
    /// Rows of independent sequences (embeddings): row `i` is at position
    /// `pos[i]` of its sequence, stored at cache slot `slots[i]`, and sees
    /// the keys of slots `keys[i].0..keys[i].1` ([`Mask::Packed`]). Each
    /// sequence may have up to `n_ctx` positions (which chooses Phi-3's
    /// RoPE factors, as a context's size does).
    Packed { pos: &'a [u32], slots: &'a [u32], keys: &'a [(u32, u32)], n_ctx: usize },
    /// Row `i` is the next token of its own sequence, at position `pos[i]`
    /// (also its slot) of its own cache ([`KvSet::PerRow`]); causal.
    PerRow { pos: &'a [u32] },
}

impl<'a> Rows<'a> {
    /// The position of row `i` in its sequence (RoPE, position embeddings).
    #[inline]
    pub fn pos(&self, i: usize) -> usize {
        match self {
            Rows::Continue { pos0 } => pos0 + i,
            Rows::Packed { pos, .. } | Rows::PerRow { pos } => pos[i] as usize,
        }
    }

    /// The cache slot of row `i`.
    #[inline]
    pub fn slot(&self, i: usize) -> usize {
        match self {
            Rows::Continue { pos0 } => pos0 + i,
            Rows::Packed { slots, .. } => slots[i] as usize,
            Rows::PerRow { pos } => pos[i] as usize,
        }
    }

    /// What attention over one cache sees, and the slot of row 0 it
    /// counts causal rows from (for [`Rows::PerRow`], row `i`'s alone is
    /// `(Mask::Causal, pos[i])`).
    pub fn mask(&self) -> (Mask<'a>, usize) {
        match *self {
            Rows::Continue { pos0 } => (Mask::Causal, pos0),
            Rows::Packed { slots, keys, .. } => (Mask::Packed { slots, keys }, 0),
            Rows::PerRow { pos } => (Mask::Causal, pos.first().map_or(0, |&p| p as usize)),
        }
    }

    /// The context the rows' sequences are in, given the cache's size.
    pub fn n_ctx(&self, capacity: usize) -> usize {
        match self {
            Rows::Continue { .. } | Rows::PerRow { .. } => capacity,
            Rows::Packed { n_ctx, .. } => *n_ctx,
        }
    }
}

/// One architecture's forward pass.
pub trait Architecture: Send + Sync + std::fmt::Debug {
    /// Runs `tokens` at positions `pos0..`, storing their keys and values in
    /// the cache, and writes the logits of positions `out_from..tokens.len()`
    /// (relative to the batch) into `logits`, one `n_vocab` row each.
    ///
    /// Callers guarantee: token ids < n_vocab, the batch fits the scratch and
    /// the cache, `logits` is large enough.
    fn forward(&self, env: &mut ForwardEnv<'_>, tokens: &[u32], pos0: usize, out_from: usize, logits: &mut [f32]);

    /// Runs `tokens` as `rows` places them (for embeddings: independent
    /// sequences packed in one cache) and writes every row's final hidden
    /// state, after the final norm where the model has one (llama.cpp's
    /// `t_embd`), into `out`, `n_embd` values per row.
    ///
    /// Callers guarantee what [`Architecture::forward`] needs, and that
    /// each row's position is within the model's position table.
    fn hidden(&self, env: &mut ForwardEnv<'_>, tokens: &[u32], rows: Rows<'_>, out: &mut [f32]);

    /// Whether the model has an output layer to make logits with
    /// (embedding models such as BERT have none).
    fn has_logits(&self) -> bool;

    /// Decodes the next token of several sequences in one pass (continuous
    /// batching): row `i` is `tokens[i]` at position `pos[i]` of the
    /// sequence whose cache is `env.caches[i]`; every row's logits go to
    /// `logits`, `n_vocab` each. Each row's logits have the same bits as
    /// a [`Architecture::forward`] of that token alone.
    ///
    /// Callers guarantee [`Architecture::batches_sequences`], what
    /// `forward` needs of each row, and `tokens.len()` rows of scratch.
    fn forward_rows(&self, env: &mut BatchEnv<'_, '_>, tokens: &[u32], pos: &[u32], logits: &mut [f32]);

    /// Whether [`Architecture::forward_rows`] applies: attention-only
    /// models with logits and RoPE that does not depend on the context's
    /// size (recurrent state and Phi-3's longrope belong to one sequence).
    fn batches_sequences(&self) -> bool;
}

/// Activation buffers for a batch of up to `n_max` tokens.
#[derive(Debug, Default)]
pub struct Scratch {
    pub n_max: usize,
    pub x: Vec<f32>,
    pub xn: Vec<f32>,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub att: Vec<f32>,
    pub tmp: Vec<f32>,
    pub gate: Vec<f32>,
    pub up: Vec<f32>,
    pub rope: Vec<f32>,
    /// A second RoPE table, for architectures whose local layers use
    /// another base (Gemma 3).
    pub rope_local: Vec<f32>,
    /// Mixture of experts (empty in dense models): the router's logits,
    /// then probabilities, `n_expert` per token.
    pub router: Vec<f32>,
    /// The weights of each token's chosen experts, `n_expert_used` per token.
    pub moe_w: Vec<f32>,
    /// The rows routed to one expert, gathered (`n_embd` each).
    pub moe_x: Vec<f32>,
    /// That expert's output rows (`n_embd` each).
    pub moe_y: Vec<f32>,
    /// Delta-net layers' rows for one chunk of the batch (empty
    /// elsewhere): see [`deltanet::scratch_width`].
    pub ssm: Vec<f32>,
    /// Gemma 4's per-layer inputs and gates (empty elsewhere): see
    /// [`ple::scratch_width`].
    pub ple: Vec<f32>,
    /// Gemma 3n's streams and per-layer rows (empty elsewhere): see
    /// [`gemma3n::scratch_width`].
    pub altup: Vec<f32>,
    /// Each token's chosen experts, best first, `n_expert_used` per token.
    pub moe_sel: Vec<u32>,
    /// The rows routed to one expert: indices into `moe_sel`/`moe_w`.
    pub moe_rows: Vec<u32>,
    /// Quantized activations, reserved at their largest so a forward pass
    /// never grows it.
    pub xq: ActBuf,
}

/// Bytes per activation value in [`ActBuf`] at most: the widest
/// `vec_dot_type` that goes through it is F16/BF16 (2 bytes; Q8_0, Q8_1
/// and Q8_K take under 1.2, and F32 activations are used in place).
const ACT_BYTES_PER_VALUE: usize = 2;

/// Widths (values per token) of the scratch buffers: the f32 ones in field
/// order from `x` to `altup`, the u32 ones (`moe_sel`, `moe_rows`), and
/// the widest matmul input (for `xq`).
fn widths(c: &ModelConfig) -> Option<([usize; 18], [usize; 2], usize)> {
    // The widest heads of any layer (Gemma 4's differ by layer).
    let k_dim = c.layer_heads.iter().map(|h| h.0).max().unwrap_or(c.k_dim).max(c.k_dim);
    let v_dim = c.layer_heads.iter().map(|h| h.1).max().unwrap_or(c.v_dim).max(c.v_dim);
    let qd = c.n_head.checked_mul(k_dim)?;
    let kd = c.n_head_kv.checked_mul(k_dim)?;
    let vd = c.n_head_kv.checked_mul(v_dim)?;
    let od = c.n_head.checked_mul(v_dim)?;
    // `tmp` also takes a fused Q/K/V product before it is split, `gate` a
    // fused gate/up product.
    let fused = if c.fused_qkv { qd.checked_add(kd)?.checked_add(vd)? } else { 0 };
    // Short convolutions: `tmp` takes their three-chunk input projection,
    // `att` their n_embd-wide output.
    let (conv_in, conv_out) = if c.shortconv_taps > 0 { (c.n_embd.checked_mul(3)?, c.n_embd) } else { (0, 0) };
    // Delta nets: `tmp` takes their `[Q | K | V]` projection.
    // (`ssm` takes their chunk rows, `gate`, `up` and `att` their batch rows.)
    let (dn_in, dn_rows, dn_cols, (dn_gate, dn_up, dn_att)) = match &c.delta_net {
        Some(dn) => (dn.conv_dim(), deltanet::scratch_width(dn)?, dn.value_dim(), deltanet::batch_widths(dn)?),
        None => (0, 0, 0, (0, 0, 0)),
    };
    let wide = c.n_embd.max(od);
    // With experts, `gate`/`up` hold one expert's (or the shared expert's)
    // hidden rows for the tokens routed to it.
    let f = c.ffn_width();
    let gate = if c.fused_gate_up { f.checked_mul(2)? } else { f };
    // Gated queries: `q` takes query and gate, `gate` the gates apart.
    let (q, gate) = if c.q_gate { (qd.checked_mul(2)?, gate.max(qd)) } else { (qd, gate) };
    let (e, k) = (c.n_expert, c.n_expert_used);
    let moe_row = if e > 0 { c.n_embd } else { 0 };
    let rope = c.rope_dims.max(c.rope_dims_swa);
    // Per-layer embeddings: the projection's input is n_embd wide, the
    // block's `proj` input P wide (both within `wide`).
    let ple = ple::scratch_width(c)?;
    let (att, gate, up) = (od.max(conv_out).max(dn_att), gate.max(dn_gate), f.max(dn_up));
    let f32s = [c.n_embd, c.n_embd, q, kd, vd, att, wide.max(fused).max(conv_in).max(dn_in), gate, up, rope, rope, e, k, moe_row, moe_row, dn_rows, ple, gemma3n::scratch_width(c)?];
    let laurel = c.altup.as_ref().map_or(0, |a| a.laurel_rank);
    Some((f32s, [k, usize::from(e > 0)], wide.max(f).max(dn_cols).max(c.n_embd_per_layer).max(laurel)))
}

/// Index of `ssm` in the widths of [`widths`]: the one buffer sized for a
/// chunk of the batch ([`deltanet::CHUNK`] rows), not the whole batch.
const SSM: usize = 15;

/// Rows of buffer `i` (in the order of [`widths`]) for batches of `n_max`.
fn rows(i: usize, n_max: usize) -> usize {
    if i == SSM {
        n_max.min(deltanet::CHUNK)
    } else {
        n_max
    }
}

impl Scratch {
    /// Bytes [`Scratch::new`] allocates for `c` and `n_max`; `None` on
    /// overflow.
    pub fn bytes_for(c: &ModelConfig, n_max: usize) -> Option<usize> {
        let (w, w32, act) = widths(c)?;
        let floats = w.iter().chain(&w32).enumerate().try_fold(0usize, |acc, (i, &w)| acc.checked_add(w.checked_mul(rows(i, n_max))?))?;
        let act_bytes = act.checked_mul(ACT_BYTES_PER_VALUE)?.checked_mul(n_max)?.checked_next_multiple_of(8)?;
        // f32 and u32 values alike take 4 bytes.
        floats.checked_mul(size_of::<f32>())?.checked_add(act_bytes)
    }

    /// Buffers for batches of up to `n_max` tokens, allocated fallibly.
    pub fn new(c: &ModelConfig, n_max: usize) -> Result<Scratch, ModelError> {
        let overflow = ModelError::OutOfMemory { what: "activation buffers", bytes: usize::MAX };
        let (w, w32, act) = widths(c).ok_or(overflow)?;
        let v = |w: usize| {
            let len = n_max.checked_mul(w).unwrap_or(usize::MAX);
            crate::alloc::try_zeroed::<f32>("activation buffers", len)
        };
        let chunk = |w: usize| {
            let len = rows(SSM, n_max).checked_mul(w).unwrap_or(usize::MAX);
            crate::alloc::try_zeroed::<f32>("activation buffers", len)
        };
        let v32 = |w: usize| {
            let len = n_max.checked_mul(w).unwrap_or(usize::MAX);
            crate::alloc::try_zeroed::<u32>("activation buffers", len)
        };
        let act_bytes = act.saturating_mul(ACT_BYTES_PER_VALUE).saturating_mul(n_max);
        Ok(Scratch {
            n_max,
            x: v(w[0])?,
            xn: v(w[1])?,
            q: v(w[2])?,
            k: v(w[3])?,
            v: v(w[4])?,
            att: v(w[5])?,
            tmp: v(w[6])?,
            gate: v(w[7])?,
            up: v(w[8])?,
            rope: v(w[9])?,
            rope_local: v(w[10])?,
            router: v(w[11])?,
            moe_w: v(w[12])?,
            moe_x: v(w[13])?,
            moe_y: v(w[14])?,
            ssm: chunk(w[SSM])?,
            ple: v(w[16])?,
            altup: v(w[17])?,
            moe_sel: v32(w32[0])?,
            moe_rows: v32(w32[1])?,
            xq: ActBuf::try_with_bytes(act_bytes)?,
        })
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        let floats = [
            &self.x,
            &self.xn,
            &self.q,
            &self.k,
            &self.v,
            &self.att,
            &self.tmp,
            &self.gate,
            &self.up,
            &self.rope,
            &self.rope_local,
            &self.router,
            &self.moe_w,
            &self.moe_x,
            &self.moe_y,
            &self.ssm,
            &self.ple,
            &self.altup,
        ];
        let u32s = self.moe_sel.len() + self.moe_rows.len();
        4 * (floats.iter().map(|v| v.len()).sum::<usize>() + u32s) + self.xq.capacity_bytes()
    }
}

type Loader = fn(&weights::Weights<'_>, &ModelConfig) -> Result<Box<dyn Architecture>, ModelError>;

/// A loader returning a concrete architecture, boxed.
macro_rules! boxed {
    ($load:path) => {
        |g, c| Ok(Box::new($load(g, c)?) as Box<dyn Architecture>)
    };
}

/// Every architecture the engine runs, by `general.architecture`.
pub const ARCHITECTURES: &[(&str, Loader)] = &[
    ("llama", boxed!(llama::load)),
    ("granite", boxed!(llama::load_granite)),
    ("granitemoe", boxed!(llama::load_granite)),
    ("smollm3", boxed!(llama::load_smollm3)),
    ("internlm2", boxed!(llama::load)),
    ("qwen2", boxed!(qwen::load_qwen2)),
    ("qwen3", boxed!(qwen::load_qwen3)),
    ("qwen2moe", boxed!(qwen::load_qwen2moe)),
    ("qwen3moe", boxed!(qwen::load_qwen3moe)),
    ("phi3", boxed!(phi::load_phi3)),
    ("gemma", boxed!(gemma::load_gemma)),
    ("gemma2", boxed!(gemma::load_gemma2)),
    ("gemma3", boxed!(gemma::load_gemma3)),
    ("starcoder2", boxed!(starcoder2::load_starcoder2)),
    ("lfm2", boxed!(lfm2::load_lfm2)),
    ("lfm2moe", boxed!(lfm2::load_lfm2)),
    ("qwen35", boxed!(qwen35::load_qwen35)),
    ("qwen35moe", boxed!(qwen35::load_qwen35)),
    ("gemma4", boxed!(gemma::load_gemma4)),
    ("gemma3n", boxed!(gemma3n::load_gemma3n)),
    ("bert", boxed!(bert::load_bert)),
    ("nomic-bert", boxed!(bert::load_nomic_bert)),
];

/// The names of [`ARCHITECTURES`], comma-separated (for error messages).
pub fn supported_architectures() -> String {
    ARCHITECTURES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// The tensor types a model's weights may have, by ggml name,
/// comma-separated (for error messages): the float types, then the
/// quantized ones, in id order. Derived from the kernel table, so it
/// names exactly what loading accepts.
pub fn supported_weight_types() -> String {
    let mut types: Vec<GgmlType> = GgmlType::ALL.into_iter().filter(|&t| weights::supported(t)).collect();
    types.sort_by_key(|t| t.is_quantized()); // stable: id order within each group
    types.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
}

/// A loaded model: the mapping, its config, tokenizer and weights.
#[derive(Debug)]
pub struct Model {
    file: Arc<GgufFile>,
    config: ModelConfig,
    tokenizer: Tokenizer,
    chat_template: Option<String>,
    arch: Box<dyn Architecture>,
    /// The vocabulary as a byte trie, for grammar masks; built on first use.
    token_trie: OnceLock<Arc<TokenTrie>>,
}

impl Model {
    /// Maps and loads a GGUF file.
    pub fn open(path: impl AsRef<Path>) -> Result<Model, ModelError> {
        let path = path.as_ref();
        let file = GgufFile::open(path)?;
        Model::from_gguf(Arc::new(file))
    }

    /// Bytes [`Model::from_gguf`] allocates for `file` beyond the file
    /// itself, at most (the interleaved weight copies where the CPU has
    /// tile kernels, and f32 norm vectors), for checking a memory limit
    /// before building.
    pub fn host_bytes_for(file: &GgufFile) -> usize {
        weights::host_bytes(file)
    }

    /// Builds a model over an already parsed file.
    pub fn from_gguf(file: Arc<GgufFile>) -> Result<Model, ModelError> {
        let config = ModelConfig::from_gguf(&file)?;
        let tokenizer = Tokenizer::from_gguf(&file)?;
        if tokenizer.vocab_size() < config.n_vocab {
            // Token ids the sampler can produce must have text.
            return Err(ModelError::BadHyperparameter {
                key: "tokenizer.ggml.tokens".into(),
                value: tokenizer.vocab_size() as u64,
            });
        }
        let weights = weights::Weights::new(&file);
        let load = ARCHITECTURES
            .iter()
            .find(|(name, _)| *name == config.arch)
            .map(|(_, load)| load)
            .ok_or_else(|| ModelError::UnsupportedArchitecture(config.arch.clone()))?;
        let arch: Box<dyn Architecture> = load(&weights, &config)?;
        let chat_template = file.get_str("tokenizer.chat_template")?.map(str::to_string);
        // The header is parsed and the small tensors copied by now; pages
        // of matrices used in place come back on their first use.
        file.release_pages();
        Ok(Model { file, config, tokenizer, chat_template, arch, token_trie: OnceLock::new() })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
    pub fn file(&self) -> &Arc<GgufFile> {
        &self.file
    }
    /// Drops the file's own chat template, so [`Model::chat_template`] uses
    /// the built-in one for the architecture. For files from an untrusted
    /// source (a guest's wasi:nn `load`): minijinja bounds a render's steps
    /// and output, but not the memory of strings built inside it (`ns.x ~
    /// ns.x` forty times is 1 TiB), so a hostile template could exhaust the
    /// host's memory (docs/RELIABILITY.md). Operator-provided files keep
    /// theirs.
    pub fn without_file_chat_template(mut self) -> Model {
        self.chat_template = None;
        self
    }

    /// The sampled vocabulary (ids below `n_vocab`) as a byte trie, for
    /// constrained generation. Built on first use and shared by every
    /// generation on this model.
    pub fn token_trie(&self) -> Arc<TokenTrie> {
        let trie = self.token_trie.get_or_init(|| {
            let tok = &self.tokenizer;
            Arc::new(TokenTrie::new(self.config.n_vocab, |id| tok.token_bytes(id)))
        });
        Arc::clone(trie)
    }

    /// The file's Jinja chat template, if it has one.
    pub fn chat_template_source(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }
    pub(crate) fn arch(&self) -> &dyn Architecture {
        &*self.arch
    }
}

impl Model {
    /// The chat template to use: the file's own, or a built-in one for
    /// architectures known to ship without it (Gemma), else ChatML.
    pub fn chat_template(&self) -> Result<crate::chat::ChatTemplate, ModelError> {
        use crate::chat::ChatTemplate;
        let tok = &self.tokenizer;
        let text = |id: Option<u32>| id.and_then(|i| tok.token_text(i)).unwrap_or("").to_string();
        match &self.chat_template {
            Some(src) => Ok(ChatTemplate::new(src, &text(tok.bos()), &text(tok.eos()))?),
            None if self.config.arch.starts_with("gemma") => Ok(ChatTemplate::gemma()),
            None => Ok(ChatTemplate::chatml()),
        }
    }
}
