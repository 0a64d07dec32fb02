//! Hostile GGUF model files: structurally valid (written with
//! [`GgufWriter`], so they parse and, where the budget allows, have every
//! tensor the architecture needs at the shape the metadata implies) but
//! with hyperparameters and vocabularies chosen to make the engine
//! allocate, touch or match far more than the file's size suggests.
//!
//! [`case`] is deterministic in `(seed, index)`. Indices below [`CURATED`]
//! are a fixed list, one per known attack class (scratch buffers sized by
//! `n_head·key_length` or `feed_forward_length`, the KV cache, long and
//! self-similar special tokens, huge vocabularies and tokens); later indices
//! combine one or two hostile values of the `{arch}.*` keys the engine
//! reads ([`KEYS`]) with a random vocabulary.
//!
//! Depends on edgewasm-gguf alone: tests/tests/hostile_gguf.rs compiles this
//! file in with `#[path]` (the fuzz crate is its own workspace).

use std::fmt;

use edgewasm_gguf::{GgmlType, GgufWriter, Value};

/// Tensor bytes a case may write with consistent shapes (F16 matrices, F32
/// norms): keeps files at a few MiB. Over it, the tensors follow the base
/// model instead and only the metadata lies.
pub const TENSOR_BUDGET: u64 = 5 << 20;

/// The `{arch}.*` counts and lengths `ModelConfig::from_gguf` reads.
pub const KEYS: &[&str] = &[
    "embedding_length",
    "block_count",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "rope.dimension_count",
    "context_length",
    "attention.sliding_window",
    "vocab_size",
];

/// Values tried for a key: zero, odd and tiny values, the engine's bounds
/// and one past them, and the ends of every integer width.
const EXTREMES: &[u64] = &[
    0,
    1,
    2,
    3,
    7,
    511,
    4096,
    (1 << 16) - 1,
    1 << 16,
    (1 << 16) + 1,
    1 << 18,
    (1 << 18) + 1,
    1 << 20,
    1 << 21,
    (1 << 21) + 1,
    1 << 24,
    i32::MAX as u64,
    u32::MAX as u64,
    1 << 32,
    i64::MAX as u64,
    u64::MAX,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Gemma3,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Gemma3 => "gemma3",
        }
    }
}

/// The honest model a case starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// n_embd 8, 2 heads, 1 KV head, n_ff 16.
    Tiny,
    /// n_embd 1 (F16 rows of one value: the cheapest bytes per output row,
    /// so `n_head·key_length` or `n_ff` can be large in a small file), one
    /// head of key length 2, n_ff 4.
    Thin,
}

/// The vocabulary written (SentencePiece `llama` tokenizer with `<0xNN>`
/// byte fallback, plus the extras below).
#[derive(Clone, Debug, PartialEq)]
pub enum Vocab {
    Small,
    /// `n` extra normal tokens.
    Huge(usize),
    /// One extra normal token `len` bytes long.
    LongToken(usize),
    /// One extra special token: `a` × (len − 1) then `b`, so an all-`a`
    /// prompt matches all but its last byte at every position. Control
    /// (type 3) or user-defined (type 4, split out even without special
    /// parsing).
    LongSpecial { len: usize, user_defined: bool },
    /// Control tokens `a`, `aa`, … (`n` of them), each a prefix of the next.
    NestedControls(usize),
}

/// One generated file.
#[derive(Clone, Debug)]
pub struct Case {
    pub seed: u64,
    pub index: u64,
    pub arch: Arch,
    pub base: Base,
    /// `{arch}.KEY` values written over the base model's.
    pub overrides: Vec<(&'static str, Value)>,
    pub vocab: Vocab,
    /// Tensor bytes allowed with consistent shapes (see [`TENSOR_BUDGET`]).
    pub budget: u64,
}

/// How many fixed cases come first.
pub const CURATED: u64 = 14;
/// Cases `0..HONEST` are honest models (the controls).
pub const HONEST: u64 = 2;

/// splitmix64: deterministic, no dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn int(v: u64) -> Value {
    match u32::try_from(v) {
        Ok(v) => Value::U32(v),
        Err(_) => Value::U64(v),
    }
}

/// Case `index` of `seed`.
pub fn case(seed: u64, index: u64) -> Case {
    let mut c = Case { seed, index, arch: Arch::Llama, base: Base::Tiny, overrides: Vec::new(), vocab: Vocab::Small, budget: TENSOR_BUDGET };
    let o = |k: &'static str, v: u64| (k, int(v));
    match index {
        // Honest controls: what every hostile case is measured against.
        0 => {}
        1 => c.arch = Arch::Gemma3,
        // n_head·key_length = 2^21 from a 4 MiB attn_q: 8 MiB of q scratch
        // per batch position.
        2 => {
            c.base = Base::Thin;
            c.overrides = vec![o("attention.head_count", 32), o("attention.key_length", 1 << 16), o("attention.value_length", 2), o("context_length", 4096)];
        }
        // The same on gemma3, values as wide as keys, a window past any context.
        3 => {
            c.arch = Arch::Gemma3;
            c.base = Base::Thin;
            c.overrides = vec![
                o("attention.head_count", 16),
                o("attention.key_length", 1 << 16),
                o("attention.value_length", 1 << 16),
                o("attention.sliding_window", u64::MAX),
                o("context_length", 1 << 20),
            ];
        }
        // n_ff at the engine's bound (2^18): 1 MiB of gate and up scratch
        // per batch position from 1.5 MiB of weights.
        4 => {
            c.base = Base::Thin;
            c.overrides = vec![o("feed_forward_length", 1 << 18), o("context_length", 4096)];
        }
        // 512 layers with wide heads: the KV cache the limit must refuse.
        5 => {
            c.base = Base::Thin;
            c.overrides = vec![
                o("block_count", 512),
                o("attention.key_length", 512),
                o("attention.value_length", 512),
                o("context_length", u64::MAX),
            ];
        }
        // The red-team abort: n_head·key_length = 2^24 from a 32 MiB file,
        // 32 GiB of q scratch at 512 positions (the one case over budget).
        6 => {
            c.base = Base::Thin;
            c.budget = 40 << 20;
            c.overrides = vec![o("attention.head_count", 256), o("attention.key_length", 1 << 16), o("attention.value_length", 2), o("context_length", 4096)];
        }
        // Metadata that lies about shapes the tensors do not have.
        7 => c.overrides = vec![o("embedding_length", 1 << 16), o("feed_forward_length", 1 << 18), o("vocab_size", 1 << 21)],
        8 => c.overrides = vec![o("rope.dimension_count", 1 << 16), o("attention.head_count_kv", 3)],
        // Tokenizer: long and self-similar special tokens, huge vocabularies.
        9 => c.vocab = Vocab::LongSpecial { len: 16 << 10, user_defined: false },
        10 => c.vocab = Vocab::LongSpecial { len: 64 << 10, user_defined: true },
        11 => c.vocab = Vocab::NestedControls(2048),
        12 => c.vocab = Vocab::Huge(120_000),
        13 => c.vocab = Vocab::LongToken(1 << 20),
        _ => random_case(&mut c),
    }
    c
}

fn random_case(c: &mut Case) {
    let mut rng = Rng::new(c.seed ^ c.index.wrapping_mul(0xA076_1D64_78BD_642F));
    c.arch = if rng.below(10) < 7 { Arch::Llama } else { Arch::Gemma3 };
    c.base = if rng.below(2) == 0 { Base::Tiny } else { Base::Thin };
    let n = 1 + rng.below(2) as usize;
    while c.overrides.len() < n {
        let key = KEYS[rng.below(KEYS.len() as u64) as usize];
        if c.overrides.iter().any(|(k, _)| *k == key) {
            continue;
        }
        let value = match rng.below(20) {
            0 => Value::I32(-1),
            1 => Value::F32(65536.0),
            2..=5 => int(rng.below(1 << 22)),
            _ => int(EXTREMES[rng.below(EXTREMES.len() as u64) as usize]),
        };
        c.overrides.push((key, value));
    }
    c.vocab = match rng.below(10) {
        0 => Vocab::Huge(20_000 + rng.below(100_000) as usize),
        1 => Vocab::LongToken(1024 + rng.below(1 << 20) as usize),
        2 => Vocab::LongSpecial { len: 1024 + rng.below(63 << 10) as usize, user_defined: rng.below(2) == 0 },
        3 => Vocab::NestedControls(64 + rng.below(960) as usize),
        _ => Vocab::Small,
    };
}

impl Case {
    /// Whether the case attacks the tokenizer (then the runner uses the
    /// long, self-similar prompt of [`Case::prompt`]).
    pub fn stresses_tokenizer(&self) -> bool {
        self.vocab != Vocab::Small
    }

    /// `len` bytes of prompt: all `a` for the special-token vocabularies
    /// (the worst case for matching them), else ordinary words.
    pub fn prompt(&self, len: usize) -> String {
        let unit = match self.vocab {
            Vocab::LongSpecial { .. } | Vocab::NestedControls(_) => "a",
            _ => "hello world ",
        };
        unit.repeat(len / unit.len() + 1)[..len].to_string()
    }

    /// The file's bytes.
    pub fn gguf(&self) -> Vec<u8> {
        let mut w = GgufWriter::new();
        let arch = self.arch.name();
        w.add_metadata("general.architecture", arch).unwrap();
        w.add_metadata("general.name", format!("hostile seed {} case {}", self.seed, self.index)).unwrap();
        let base = base_values(self.arch, self.base);
        for (k, v) in &base {
            if !self.overrides.iter().any(|(o, _)| o == k) {
                w.add_metadata(format!("{arch}.{k}"), int(*v)).unwrap();
            }
        }
        for (k, v) in &self.overrides {
            w.add_metadata(format!("{arch}.{k}"), v.clone()).unwrap();
        }
        let n_tokens = add_vocab(&mut w, &self.vocab);
        let lookup = |key: &str| match self.overrides.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => v.as_u64(),
            None => base.iter().find(|(k, _)| *k == key).map(|(_, v)| *v),
        };
        let shape = Shape::implied(self.arch, &lookup, n_tokens)
            .filter(|s| s.bytes(self.arch) <= self.budget)
            .unwrap_or_else(|| {
                let honest = |key: &str| base.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
                Shape::implied(self.arch, &honest, n_tokens).expect("the base model is consistent")
            });
        let mut rng = Rng::new(self.seed ^ self.index);
        shape.add_tensors(&mut w, self.arch, &mut rng);
        w.to_bytes().expect("every case writes")
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {} case {}: {} {:?}, vocab {:?}", self.seed, self.index, self.arch.name(), self.base, self.vocab)?;
        for (k, v) in &self.overrides {
            write!(f, ", {k} = {v:?}")?;
        }
        Ok(())
    }
}

fn base_values(arch: Arch, base: Base) -> Vec<(&'static str, u64)> {
    let mut v = match base {
        Base::Tiny => vec![
            ("embedding_length", 8),
            ("block_count", 1),
            ("feed_forward_length", 16),
            ("attention.head_count", 2),
            ("attention.head_count_kv", 1),
        ],
        Base::Thin => vec![
            ("embedding_length", 1),
            ("block_count", 1),
            ("feed_forward_length", 4),
            ("attention.head_count", 1),
            ("attention.head_count_kv", 1),
            ("attention.key_length", 2),
        ],
    };
    v.push(("context_length", 1024));
    if arch == Arch::Gemma3 {
        v.push(("attention.sliding_window", 32));
    }
    v
}

/// Tensor shapes as the engine derives them from the metadata (mirrors
/// `ModelConfig::from_gguf`: key length defaults to n_embd / n_head, value
/// length to key length, vocabulary to the token count).
#[derive(Clone, Copy, Debug)]
struct Shape {
    d: u64,
    layers: u64,
    heads: u64,
    heads_kv: u64,
    k: u64,
    v: u64,
    ff: u64,
    vocab: u64,
}

impl Shape {
    fn implied(arch: Arch, get: &dyn Fn(&str) -> Option<u64>, n_tokens: usize) -> Option<Shape> {
        let _ = arch;
        let (d, layers, heads, ff) = (get("embedding_length")?, get("block_count")?, get("attention.head_count")?, get("feed_forward_length")?);
        let heads_kv = get("attention.head_count_kv").unwrap_or(heads);
        if [d, heads].contains(&0) {
            return None;
        }
        let k = get("attention.key_length").unwrap_or(d / heads);
        let v = get("attention.value_length").unwrap_or(k);
        let vocab = get("vocab_size").unwrap_or(n_tokens as u64);
        let s = Shape { d, layers, heads, heads_kv, k, v, ff, vocab };
        let dims = [d, layers, heads, heads_kv, k, v, ff, vocab];
        // Past 2^26 the tensor sizes alone overflow any budget; zero makes
        // no tensor at all.
        (dims.iter().all(|&x| (1..=1 << 26).contains(&x)) && heads % heads_kv == 0).then_some(s)
    }

    fn matrices(&self) -> [(&'static str, u64, u64); 7] {
        let s = self;
        [
            ("attn_q", s.d, s.heads * s.k),
            ("attn_k", s.d, s.heads_kv * s.k),
            ("attn_v", s.d, s.heads_kv * s.v),
            ("attn_output", s.heads * s.v, s.d),
            ("ffn_gate", s.d, s.ff),
            ("ffn_up", s.d, s.ff),
            ("ffn_down", s.ff, s.d),
        ]
    }

    fn vectors(&self, arch: Arch) -> Vec<(&'static str, u64)> {
        let mut v = vec![("attn_norm", self.d), ("ffn_norm", self.d)];
        if arch == Arch::Gemma3 {
            v.extend([("attn_q_norm", self.k), ("attn_k_norm", self.k), ("post_attention_norm", self.d), ("post_ffw_norm", self.d)]);
        }
        v
    }

    /// Tensor data bytes: F16 matrices, F32 vectors. Saturating, as the
    /// metadata may be anything.
    fn bytes(&self, arch: Arch) -> u64 {
        let per_layer = self.matrices().iter().fold(0u64, |a, (_, c, r)| a.saturating_add(c.saturating_mul(*r).saturating_mul(2)))
            + self.vectors(arch).iter().map(|(_, n)| n * 4).sum::<u64>();
        per_layer.saturating_mul(self.layers).saturating_add(self.vocab.saturating_mul(self.d).saturating_mul(2)).saturating_add(self.d * 4)
    }

    fn add_tensors(&self, w: &mut GgufWriter, arch: Arch, rng: &mut Rng) {
        let norm = |w: &mut GgufWriter, name: String, n: u64| {
            w.add_f32_tensor(name, &[n], &vec![1.0; n as usize]).unwrap();
        };
        let mut matrix = |w: &mut GgufWriter, name: String, cols: u64, rows: u64| {
            w.add_tensor(name, GgmlType::F16, &[cols, rows], f16_noise(rng, (cols * rows) as usize)).unwrap();
        };
        matrix(w, "token_embd.weight".into(), self.d, self.vocab);
        norm(w, "output_norm.weight".into(), self.d);
        for l in 0..self.layers {
            for (name, n) in self.vectors(arch) {
                norm(w, format!("blk.{l}.{name}.weight"), n);
            }
            for (name, cols, rows) in self.matrices() {
                matrix(w, format!("blk.{l}.{name}.weight"), cols, rows);
            }
        }
    }
}

/// `n` F16 values in ±[0, 1/16): small enough that activations stay finite.
fn f16_noise(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 * n);
    let mut bits = 0u64;
    for i in 0..n {
        if i % 4 == 0 {
            bits = rng.next();
        }
        let r = (bits >> (16 * (i % 4))) as u16;
        // Sign, a biased exponent of 0..=10 (below 2^-4), any mantissa.
        let h = (r & 0x8000) | (((r >> 10) % 11) << 10) | (r & 0x03FF);
        out.extend_from_slice(&h.to_le_bytes());
    }
    out
}

/// SentencePiece pieces of the small vocabulary (no all-`a` piece, so the
/// nested `a…` controls stay unique).
const PIECES: &[&str] = &["\u{2581}hello", "hello", "\u{2581}world", "world", "\u{2581}", "he", "ll", "o", "\u{2581}w", "or", "ld", "\u{2581}h"];

/// Writes the `tokenizer.*` keys; returns the token count.
fn add_vocab(w: &mut GgufWriter, vocab: &Vocab) -> usize {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
    let mut types = vec![2i32, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    for p in PIECES {
        tokens.push(p.to_string());
        types.push(1);
    }
    match *vocab {
        Vocab::Small => {}
        Vocab::Huge(n) => {
            for i in 0..n {
                tokens.push(format!("x{i}"));
                types.push(1);
            }
        }
        Vocab::LongToken(len) => {
            tokens.push(format!("\u{2581}{}", "z".repeat(len)));
            types.push(1);
        }
        Vocab::LongSpecial { len, user_defined } => {
            tokens.push(format!("{}b", "a".repeat(len.saturating_sub(1))));
            types.push(if user_defined { 4 } else { 3 });
        }
        Vocab::NestedControls(n) => {
            for i in 1..=n {
                tokens.push("a".repeat(i));
                types.push(3);
            }
        }
    }
    let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
    let n = tokens.len();
    w.add_metadata("tokenizer.ggml.model", "llama").unwrap();
    w.add_metadata("tokenizer.ggml.tokens", Value::from(tokens)).unwrap();
    w.add_metadata("tokenizer.ggml.token_type", Value::from(types)).unwrap();
    w.add_metadata("tokenizer.ggml.scores", Value::from(scores)).unwrap();
    w.add_metadata("tokenizer.ggml.unknown_token_id", 0u32).unwrap();
    w.add_metadata("tokenizer.ggml.bos_token_id", 1u32).unwrap();
    w.add_metadata("tokenizer.ggml.eos_token_id", 2u32).unwrap();
    w.add_metadata("tokenizer.ggml.add_bos_token", true).unwrap();
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewasm_gguf::GgufFile;

    #[test]
    fn cases_are_deterministic_parse_and_stay_small() {
        for i in 0..40 {
            let (a, b) = (case(1, i).gguf(), case(1, i).gguf());
            assert_eq!(a, b, "case {i}");
            let f = GgufFile::from_bytes(&a).unwrap_or_else(|e| panic!("case {i}: {e}"));
            let limit = if i == 6 { 40 << 20 } else { 8 << 20 };
            assert!(a.len() < limit, "case {i}: {} bytes", a.len());
            assert!(f.tensor("token_embd.weight").is_some());
        }
    }
}
