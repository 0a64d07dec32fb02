//! Shared pieces of the fuzz targets: small GGUF vocabularies for the three
//! tokenizer flavours the engine supports, the seed files written by
//! `examples/gen_seeds.rs`, and a checker that touches everything a parsed
//! GGUF file exposes. [`hostile`] generates hostile model files for
//! tests/tests/hostile_gguf.rs.

use edgewasm_gguf::{GgmlType, GgufFile, GgufWriter, TensorInfo, Value};
use edgewasm_tokenizer::Tokenizer;

pub mod hostile;

/// GPT-2's byte → printable char table (`bytes_to_unicode`).
pub fn gpt2_byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        table[b as usize] = if printable {
            char::from_u32(b).unwrap()
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap()
        };
    }
    table
}

fn gpt2_encode(s: &str) -> String {
    let t = gpt2_byte_chars();
    s.bytes().map(|b| t[b as usize]).collect()
}

/// Merges of the small GPT-2 vocabulary, in rank order, as raw text pairs.
/// Every merge's result is a token (a consistent vocabulary, like every real
/// one), so decode(encode(x)) == x holds exactly.
const GPT2_MERGES: &[(&str, &str)] = &[
    (" ", "t"),
    ("h", "e"),
    (" t", "he"),
    ("i", "n"),
    ("e", "r"),
    (" ", "a"),
    ("o", "n"),
    ("r", "e"),
    ("a", "t"),
    ("e", "n"),
    (" ", " "),
    ("  ", "  "),
    ("\n", "\n"),
    (" ", "w"),
    (" w", "or"),
    ("o", "r"),
    ("l", "d"),
    (" wor", "ld"),
    ("H", "e"),
    ("l", "l"),
    ("He", "ll"),
    ("Hell", "o"),
    ("\u{c3}", "\u{a9}"), // é, byte-level
    ("1", "2"),
    ("'", "s"),
    ("<", "|"),
    ("|", ">"),
];

/// A small GPT-2 byte-level BPE vocabulary (SmolLM-style, `smollm`
/// pre-tokenizer): control tokens, one user-defined token, all 256 byte
/// characters and the merges above. `add_bos` is on, so BOS handling is
/// exercised too.
pub fn gpt2_gguf(w: &mut GgufWriter) {
    let mut tokens: Vec<String> = vec!["<|endoftext|>".into(), "<|im_start|>".into(), "<|im_end|>".into(), "<tool_call>".into()];
    let mut types = vec![3i32, 3, 3, 4];
    for c in gpt2_byte_chars() {
        tokens.push(c.to_string());
        types.push(1);
    }
    let mut merges = Vec::new();
    for (l, r) in GPT2_MERGES {
        let (l, r) = (gpt2_encode(l), gpt2_encode(r));
        merges.push(format!("{l} {r}"));
        let joined = format!("{l}{r}");
        if !tokens.contains(&joined) {
            tokens.push(joined);
            types.push(1);
        }
    }
    w.add_metadata("tokenizer.ggml.model", "gpt2").unwrap();
    w.add_metadata("tokenizer.ggml.pre", "smollm").unwrap();
    w.add_metadata("tokenizer.ggml.tokens", Value::from(tokens)).unwrap();
    w.add_metadata("tokenizer.ggml.token_type", Value::from(types)).unwrap();
    w.add_metadata("tokenizer.ggml.merges", Value::from(merges)).unwrap();
    w.add_metadata("tokenizer.ggml.bos_token_id", 0u32).unwrap();
    w.add_metadata("tokenizer.ggml.eos_token_id", 2u32).unwrap();
    w.add_metadata("tokenizer.ggml.add_bos_token", true).unwrap();
}

const SPM_PIECES: &[&str] = &[
    "\u{2581}", "\u{2581}t", "he", "\u{2581}the", "\u{2581}a", "in", "er", "on", "re", "at", "en", "\u{2581}\u{2581}",
    "\u{2581}w", "or", "ld", "\u{2581}wor", "\u{2581}world", "He", "ll", "Hell", "Hello", "é", "日本", "語", "12", "\n",
];

/// A small SentencePiece BPE vocabulary (`llama` model): `<0xNN>` byte
/// fallback for all 256 bytes and scored pieces. `gemma_like` chooses Gemma's
/// flags (no space prefix, a user-defined token, turn markers) over Llama 2's
/// defaults (space prefix on).
pub fn spm_gguf(w: &mut GgufWriter, gemma_like: bool) {
    let (mut tokens, mut types): (Vec<String>, Vec<i32>) = if gemma_like {
        (
            ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<br>"].map(String::from).to_vec(),
            vec![3, 3, 3, 2, 3, 3, 4],
        )
    } else {
        (["<unk>", "<s>", "</s>"].map(String::from).to_vec(), vec![2, 3, 3])
    };
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let mut scores = vec![0.0f32; tokens.len()];
    for (i, p) in SPM_PIECES.iter().enumerate() {
        tokens.push((*p).into());
        types.push(1);
        scores.push(-(i as f32));
    }
    w.add_metadata("tokenizer.ggml.model", "llama").unwrap();
    w.add_metadata("tokenizer.ggml.tokens", Value::from(tokens)).unwrap();
    w.add_metadata("tokenizer.ggml.token_type", Value::from(types)).unwrap();
    w.add_metadata("tokenizer.ggml.scores", Value::from(scores)).unwrap();
    if gemma_like {
        w.add_metadata("tokenizer.ggml.bos_token_id", 2u32).unwrap();
        w.add_metadata("tokenizer.ggml.eos_token_id", 1u32).unwrap();
        w.add_metadata("tokenizer.ggml.unknown_token_id", 3u32).unwrap();
        w.add_metadata("tokenizer.ggml.padding_token_id", 0u32).unwrap();
        w.add_metadata("tokenizer.ggml.add_bos_token", true).unwrap();
        w.add_metadata("tokenizer.ggml.add_space_prefix", false).unwrap();
    }
}

/// Which small vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vocab {
    Gpt2,
    SpmGemma,
    SpmLlama,
}

impl Vocab {
    pub const ALL: [Vocab; 3] = [Vocab::Gpt2, Vocab::SpmGemma, Vocab::SpmLlama];

    /// The vocabulary alone, as a GGUF file.
    pub fn gguf(self) -> Vec<u8> {
        let mut w = GgufWriter::new();
        w.add_metadata("general.architecture", "llama").unwrap();
        match self {
            Vocab::Gpt2 => gpt2_gguf(&mut w),
            Vocab::SpmGemma => spm_gguf(&mut w, true),
            Vocab::SpmLlama => spm_gguf(&mut w, false),
        }
        w.to_bytes().unwrap()
    }

    /// The tokenizer, built the way the engine builds it: GGUF bytes →
    /// `GgufFile` → `Tokenizer::from_gguf`.
    pub fn tokenizer(self) -> Tokenizer {
        let file = GgufFile::from_bytes(&self.gguf()).expect("vocabulary GGUF parses");
        Tokenizer::from_gguf(&file).expect("vocabulary builds a tokenizer")
    }
}

/// A tiny llama-shaped model file: hyperparameters, a tokenizer, a chat
/// template and one small tensor of several ggml types.
pub fn tiny_llama_gguf(vocab: Vocab) -> Vec<u8> {
    let mut w = GgufWriter::new();
    let kv: Vec<(&str, Value)> = vec![
        ("general.architecture", "llama".into()),
        ("general.name", "tiny".into()),
        ("llama.block_count", 1u32.into()),
        ("llama.context_length", 64u32.into()),
        ("llama.embedding_length", 32u32.into()),
        ("llama.feed_forward_length", 64u32.into()),
        ("llama.attention.head_count", 2u32.into()),
        ("llama.attention.head_count_kv", 1u32.into()),
        ("llama.rope.freq_base", 10000.0f32.into()),
        ("llama.attention.layer_norm_rms_epsilon", 1e-5f32.into()),
        (
            "tokenizer.chat_template",
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}".into(),
        ),
    ];
    for (k, v) in kv {
        w.add_metadata(k, v).unwrap();
    }
    match vocab {
        Vocab::Gpt2 => gpt2_gguf(&mut w),
        Vocab::SpmGemma => spm_gguf(&mut w, true),
        Vocab::SpmLlama => spm_gguf(&mut w, false),
    }
    w.add_f32_tensor("output_norm.weight", &[32], &[1.0; 32]).unwrap();
    w.add_tensor("token_embd.weight", GgmlType::Q8_0, &[32, 2], vec![0u8; 2 * 34]).unwrap();
    w.add_tensor("blk.0.attn_q.weight", GgmlType::F16, &[32, 2], vec![0u8; 2 * 32 * 2]).unwrap();
    w.add_tensor("blk.0.ffn_up.weight", GgmlType::Q4_K, &[256, 1], vec![0u8; 144]).unwrap();
    w.to_bytes().unwrap()
}

/// Files with every metadata value type, nesting, v2, a custom alignment,
/// no tensors, and every tensor type.
pub fn misc_gguf_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();

    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "llama").unwrap();
    out.push(("minimal", w.to_bytes().unwrap()));

    let mut w = GgufWriter::new();
    w.set_version(2).unwrap();
    w.set_alignment(64).unwrap();
    w.add_metadata("u8", 1u8).unwrap();
    w.add_metadata("i8", -1i8).unwrap();
    w.add_metadata("u16", 2u16).unwrap();
    w.add_metadata("i16", -2i16).unwrap();
    w.add_metadata("u32", 3u32).unwrap();
    w.add_metadata("i32", -3i32).unwrap();
    w.add_metadata("u64", u64::MAX).unwrap();
    w.add_metadata("i64", i64::MIN).unwrap();
    w.add_metadata("f32", 0.5f32).unwrap();
    w.add_metadata("f64", 1e300f64).unwrap();
    w.add_metadata("bool", true).unwrap();
    w.add_metadata("str", "héllo").unwrap();
    w.add_metadata("arr.u8", vec![1u8, 2, 3]).unwrap();
    w.add_metadata("arr.i32", vec![-1i32, 2]).unwrap();
    w.add_metadata("arr.f32", vec![0.25f32, -1.0]).unwrap();
    w.add_metadata("arr.bool", vec![true, false]).unwrap();
    w.add_metadata("arr.str", vec!["a", "", "ü"]).unwrap();
    w.add_metadata(
        "arr.nested",
        Value::Array(edgewasm_gguf::Array::Array(vec![
            edgewasm_gguf::Array::U64(vec![7]),
            edgewasm_gguf::Array::Array(vec![edgewasm_gguf::Array::F64(vec![1.5])]),
        ])),
    )
    .unwrap();
    w.add_f32_tensor("a", &[4, 1, 1, 1], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    w.add_f32_tensor("b", &[1], &[0.0]).unwrap();
    out.push(("all_value_types_v2_align64", w.to_bytes().unwrap()));

    let mut w = GgufWriter::new();
    for (i, ty) in GgmlType::ALL.into_iter().enumerate() {
        let n = ty.block_size() as u64;
        let size = ty.row_bytes(n).unwrap() as usize;
        w.add_tensor(format!("t{i}.{ty}"), ty, &[n], vec![0x55u8; size]).unwrap();
    }
    out.push(("every_tensor_type", w.to_bytes().unwrap()));
    out
}

/// Touches everything a parsed file exposes and checks the invariants the
/// reader promises. Panics (a fuzzer crash) on a broken promise.
pub fn check_gguf(f: &GgufFile) {
    assert!(matches!(f.version(), 2 | 3));
    assert!(f.alignment().is_power_of_two());
    assert!(f.data_offset() <= f.file_size());
    assert_eq!(f.as_bytes().len() as u64, f.file_size());
    let _ = format!("{f:?}");

    for (k, v) in f.metadata() {
        assert!(!k.is_empty());
        // The same entry, not just an equal value (NaN != NaN).
        assert!(f.get(k).is_some_and(|g| std::ptr::eq(g, v)), "key index points at the wrong value for {k:?}");
        let shown = v.to_string();
        // Display is meant to stay short whatever the value (strings cut at
        // 60 chars, arrays at 5 items, nested at most 8 deep).
        assert!(shown.len() < 1 << 20, "{k}: Display is {} bytes", shown.len());
        let _ = v.type_name();
        let u64v = f.get_u64(k).ok().flatten();
        let u32v = f.get_u32(k).ok().flatten();
        let i64v = f.get_i64(k).ok().flatten();
        if let Some(x) = u32v {
            assert_eq!(u64v, Some(u64::from(x)));
        }
        if let (Some(x), Some(y)) = (u64v, i64v) {
            assert_eq!(x, y as u64);
        }
        let _ = f.get_f32(k);
        let _ = f.get_bool(k);
        if let Ok(Some(s)) = f.get_str(k) {
            assert_eq!(v.as_str(), Some(s));
        }
        let _ = f.get_str_array(k);
        let _ = f.get_f32_array(k);
        let _ = f.get_i32_array(k);
    }
    let _ = f.architecture();
    assert_eq!(f.get(""), None);

    let mut total = 0u64;
    for t in f.tensors() {
        assert_eq!(f.tensor(&t.name), Some(t));
        let data = f.tensor_data(t);
        assert_eq!(data.len() as u64, t.size_bytes, "tensor {:?}", t.name);
        assert_eq!(f.tensor_bytes(&t.name).map(<[u8]>::len), Some(data.len()));
        assert!(t.offset.is_multiple_of(f.alignment()));
        assert!(!t.dims.is_empty() && t.dims.len() <= edgewasm_gguf::GGML_MAX_DIMS);
        assert_eq!(t.row_bytes() * t.n_rows(), t.size_bytes);
        assert_eq!(t.row_len() * t.n_rows(), t.n_elements());
        // Tensor data is as aligned in memory as in the file (both
        // constructors page-align the bytes).
        let align = f.alignment().min(4096) as usize;
        assert_eq!(data.as_ptr() as usize % align, 0, "tensor {:?} misaligned in memory", t.name);
        total += t.size_bytes;
    }
    assert!(total <= f.file_size(), "tensors overlap or exceed the file");

    // A forged TensorInfo never panics: it is out of the file or in it.
    for offset in [0, 1, u64::MAX / 2, u64::MAX] {
        for size_bytes in [0, 1, f.file_size(), u64::MAX] {
            for shard in [0, 1, u16::MAX] {
                let t = TensorInfo { name: "x".into(), dims: vec![1], ty: GgmlType::F32, offset, size_bytes, shard };
                let d = f.tensor_data(&t);
                assert!(d.is_empty() || d.len() as u64 == size_bytes);
            }
        }
    }
}
