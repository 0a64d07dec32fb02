//! Tokenizers built from GGUF metadata, matching llama.cpp token for token.
//!
//! The tokenizer models (`tokenizer.ggml.model`) supported:
//! * `gpt2`: byte-level BPE with ranked merges, after one of llama.cpp's
//!   pre-tokenizers (`tokenizer.ggml.pre`: `llama-bpe`, `qwen2`, `qwen35`,
//!   `deepseek-llm`, `deepseek-coder`, `falcon`, `gpt-2`, `mpt`,
//!   `starcoder`, `smollm`, `command-r`, none (`default`), and their
//!   aliases; see [`SUPPORTED_PRE_TOKENIZERS`]);
//! * `gemma4`: SentencePiece-style BPE (spaces as `▁`, `<0xNN>` bytes);
//! * `llama`: SentencePiece-style BPE over token scores with `<0xNN>` byte
//!   fallback (Llama 2, Phi-3, Gemma 1-3, Baichuan, ...);
//! * `bert`: WordPiece (BERT embeddings);
//! * `t5`: Unigram with SentencePiece's precompiled charsmap (T5, XLM-R).
//!
//! Special tokens are split out first, like llama.cpp's
//! `tokenizer_st_partition`: control tokens only when `parse_special` is set,
//! user-defined tokens always. Decoding goes through per-token byte pieces;
//! [`StreamDecoder`] turns a token stream into text without ever emitting
//! half of a multi-byte character.

mod bpe;
mod config;
mod error;
mod fxhash;
mod pretok;
mod special;
mod spm;
mod stream;
mod ugm;
mod unicode;
mod unicode_data;
mod wpm;

pub use config::TokenizerConfig;
pub use error::{Interrupted, TokenizerError};
pub use stream::StreamDecoder;

use bpe::{Bpe, BpeOptions};
use config::{KEY_MERGES, KEY_SCORES, KEY_TYPES};
use fxhash::FxMap;
use pretok::PreTokenizer;
use special::{Fragment, SpecialToken, Specials};
use ugm::Ugm;
use wpm::{Trie, Wpm};

/// How often (in bytes of text, or steps of a loop) long tokenizer work
/// asks its caller whether to stop: often enough to notice a deadline within
/// a few milliseconds, rarely enough that reading the clock costs nothing.
const CHECK_EVERY: usize = 1 << 14;

/// Token attribute bits (llama.cpp's `llama_token_attr`).
mod attr {
    pub const UNKNOWN: u16 = 1 << 0;
    pub const UNUSED: u16 = 1 << 1;
    pub const NORMAL: u16 = 1 << 2;
    pub const CONTROL: u16 = 1 << 3;
    pub const USER_DEFINED: u16 = 1 << 4;
    pub const BYTE: u16 = 1 << 5;
    pub const LSTRIP: u16 = 1 << 7;
    pub const RSTRIP: u16 = 1 << 8;

    /// From a GGUF `token_type` value.
    pub fn from_type(t: i32) -> u16 {
        match t {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            5 => UNUSED,
            6 => BYTE,
            _ => 0,
        }
    }
}

/// Token texts that end generation (llama.cpp's `special_eog_ids` heuristics).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~[",
];
/// Candidates for the end-of-turn token when the file does not name one.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
];
/// Fill-in-the-middle prefix / suffix / middle / pad / repo / file-separator
/// candidates when the file does not name them; the last three also end generation.
const FIM_TEXTS: [&[&str]; 6] = [
    &["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"],
    &["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"],
    &["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"],
    &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
    &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
    &["<|file_sep|>"],
];

/// Per-pre-tokenizer settings (bits of [`PreEntry`]).
mod pre_flag {
    /// Decoding cleans spaces before punctuation (`clean_spaces`).
    pub const CLEAN: u8 = 1;
    /// A word that is a token is taken whole (`ignore_merges`).
    pub const IGNORE_MERGES: u8 = 2;
    /// BOS is added by default (`add_bos`).
    pub const ADD_BOS: u8 = 4;
    /// No default BOS id (`special_bos_id = LLAMA_TOKEN_NULL`).
    pub const NO_BOS: u8 = 8;
    /// SentencePiece-style BPE: spaces escaped to `▁`, no byte encoding,
    /// `<0xNN>` byte fallback.
    pub const SPM_STYLE: u8 = 16;
    /// Gemma 4: words of newlines taken whole, and BOS forced on.
    pub const GEMMA4: u8 = 32;
}

/// One `tokenizer.ggml.pre` name: its regex list and settings.
type PreEntry = (&'static str, PreTokenizer, u8);

/// Every `tokenizer.ggml.pre` value supported, as llama.cpp maps them
/// (`llama_vocab::impl::load`). A `gpt2` model without one uses `default`.
const PRE_TOKENIZERS: &[PreEntry] = {
    use pre_flag::*;
    use PreTokenizer::*;
    &[
        ("default", Default, CLEAN),
        ("llama3", Llama3, CLEAN | IGNORE_MERGES | ADD_BOS),
        ("llama-v3", Llama3, CLEAN | IGNORE_MERGES | ADD_BOS),
        ("llama-bpe", Llama3, CLEAN | IGNORE_MERGES | ADD_BOS),
        ("falcon3", Llama3, CLEAN | IGNORE_MERGES | ADD_BOS),
        ("falcon-h1", Llama3, CLEAN | IGNORE_MERGES | ADD_BOS),
        ("pixtral", Llama3, CLEAN | IGNORE_MERGES | ADD_BOS),
        ("midm-2.0", Llama3, CLEAN | IGNORE_MERGES | ADD_BOS),
        ("lfm2", Llama3, CLEAN | IGNORE_MERGES | ADD_BOS),
        ("jina-v5-nano", Llama3, CLEAN | IGNORE_MERGES | ADD_BOS),
        ("dbrx", Llama3, CLEAN),
        ("smaug-bpe", Llama3, CLEAN),
        ("chatglm-bpe", Llama3, CLEAN | NO_BOS),
        ("glm4", Llama3, CLEAN | NO_BOS | IGNORE_MERGES),
        ("glm5", Llama3, CLEAN | NO_BOS | IGNORE_MERGES),
        ("deepseek-llm", DeepseekLlm, 0),
        ("deepseek-coder", DeepseekCoder, 0),
        ("falcon", Falcon, CLEAN),
        ("gpt-2", Gpt2, CLEAN),
        ("phi-2", Gpt2, CLEAN),
        ("mpt", Gpt2, CLEAN),
        ("olmo", Gpt2, CLEAN),
        ("jais", Gpt2, CLEAN),
        ("exaone4", Gpt2, CLEAN),
        ("jina-es", Gpt2, CLEAN),
        ("jina-de", Gpt2, CLEAN),
        ("jina-v1-en", Gpt2, CLEAN),
        ("jina-v2-es", Gpt2, CLEAN),
        ("jina-v2-de", Gpt2, CLEAN),
        ("jina-v2-code", Gpt2, CLEAN),
        ("roberta-bpe", Gpt2, CLEAN),
        ("gigachat", Gpt2, CLEAN),
        ("a.x-4.0", Gpt2, CLEAN),
        ("mellum", Gpt2, CLEAN),
        ("modern-bert", Gpt2, CLEAN),
        ("trillion", Gpt2, 0),
        ("granite-docling", Gpt2, 0),
        ("starcoder", Starcoder, CLEAN),
        ("refact", Starcoder, CLEAN),
        ("codeshell", Starcoder, CLEAN),
        ("exaone", Starcoder, CLEAN),
        ("minerva-7b", Starcoder, CLEAN),
        ("mellum2", Starcoder, CLEAN),
        ("command-r", Starcoder, 0),
        ("smollm", Starcoder, 0),
        ("qwen2", Qwen2, 0),
        ("deepseek-r1-qwen", Qwen2, 0),
        ("kormo", Qwen2, 0),
        ("f2llmv2", Qwen2, 0),
        ("hunyuan", Qwen2, 0),
        ("solar-open", Qwen2, 0),
        ("grok-2", Qwen2, 0),
        ("stablelm2", Qwen2, CLEAN),
        ("megrez", Qwen2, CLEAN),
        ("qwen35", Qwen35, 0),
        ("gemma4", Newlines, CLEAN | SPM_STYLE | GEMMA4),
        ("granite-embed-multi-311m", Newlines, CLEAN | SPM_STYLE | GEMMA4),
        ("sarvam-moe", Newlines, SPM_STYLE),
    ]
};

/// The `tokenizer.ggml.pre` values this crate implements, for error messages.
pub const SUPPORTED_PRE_TOKENIZERS: &[&str] = &{
    let mut names = [""; PRE_TOKENIZERS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = PRE_TOKENIZERS[i].0;
        i += 1;
    }
    names
};

/// The `tokenizer.ggml.model` values this crate implements.
pub const SUPPORTED_MODELS: &[&str] = &["gpt2", "gemma4", "llama", "bert", "t5"];

/// The tokenizer model of a vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Spm,
    Bpe(PreTokenizer),
    Wpm,
    Ugm,
}

#[derive(Debug)]
enum Algo {
    Bpe(Box<Bpe>),
    Spm,
    Wpm(Box<Wpm>),
    Ugm(Box<Ugm>),
}

/// A tokenizer: text ↔ token ids for one model's vocabulary.
///
/// Cheap to share: it is `Send + Sync` and all methods take `&self`.
pub struct Tokenizer {
    algo: Algo,
    /// `tokenizer.ggml.model`, for `Debug`.
    model: Box<str>,
    texts: Vec<Box<str>>,
    attrs: Vec<u16>,
    scores: Vec<f32>,
    ids: FxMap<Box<str>, u32>,
    /// Every token's piece (special tokens rendered), concatenated.
    pieces: Vec<u8>,
    piece_ends: Vec<u32>,
    /// SPM byte fallback: `<0xNN>` (or the one-byte token).
    byte_tokens: [Option<u32>; 256],
    specials: Specials,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    eog: Vec<u32>,
    /// Closes a WPM input (`[SEP]`).
    sep: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
}

impl std::fmt::Debug for Tokenizer {
    // A summary: the vocabulary itself is far too long to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.algo {
            Algo::Bpe(b) => format!("{} (BPE, {:?})", self.model, b.pre()),
            Algo::Spm => format!("{} (SentencePiece BPE)", self.model),
            Algo::Wpm(_) => format!("{} (WordPiece)", self.model),
            Algo::Ugm(_) => format!("{} (Unigram)", self.model),
        };
        f.debug_struct("Tokenizer")
            .field("model", &kind)
            .field("vocab_size", &self.texts.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("eot", &self.eot)
            .field("eog", &self.eog)
            .field("add_bos", &self.add_bos)
            .field("add_eos", &self.add_eos)
            .field("add_space_prefix", &self.add_space_prefix)
            .finish_non_exhaustive()
    }
}

/// The settings of pre-tokenizer `name` (`None`: absent, which llama.cpp
/// treats as `default`).
fn pre_entry(name: Option<&str>) -> Result<PreEntry, TokenizerError> {
    let name = name.unwrap_or("default");
    PRE_TOKENIZERS.iter().find(|e| e.0 == name).copied().ok_or_else(|| TokenizerError::UnsupportedPreTokenizer {
        name: name.to_string(),
        supported: SUPPORTED_PRE_TOKENIZERS.join(", "),
    })
}

impl Tokenizer {
    /// Builds a tokenizer, applying llama.cpp's defaults and special-token
    /// heuristics (end-of-generation set, control-looking tokens).
    pub fn new(cfg: TokenizerConfig) -> Result<Tokenizer, TokenizerError> {
        let n = cfg.tokens.len();
        if n == 0 || n > i32::MAX as usize {
            return Err(TokenizerError::BadVocabSize(n));
        }
        let check_len = |key: &'static str, found: usize| {
            if found < n {
                Err(TokenizerError::LengthMismatch { key, expected: n, found })
            } else {
                Ok(())
            }
        };
        if let Some(t) = &cfg.token_types {
            check_len(KEY_TYPES, t.len())?;
        }
        if let Some(s) = &cfg.scores {
            check_len(KEY_SCORES, s.len())?;
        }

        // Model type and llama.cpp's defaults for it.
        let (kind, pre_flags) = match cfg.model.as_str() {
            "llama" => (Kind::Spm, 0),
            "bert" => (Kind::Wpm, 0),
            "t5" => (Kind::Ugm, 0),
            "gpt2" => pre_entry(cfg.pre.as_deref()).map(|(_, p, f)| (Kind::Bpe(p), f))?,
            // llama.cpp ignores the file's `pre` for this model.
            "gemma4" => pre_entry(Some("gemma4")).map(|(_, p, f)| (Kind::Bpe(p), f))?,
            other => {
                return Err(TokenizerError::UnsupportedModel { name: other.to_string(), supported: SUPPORTED_MODELS.join(", ") })
            }
        };
        let is_spm = kind == Kind::Spm;
        let flag = |f: u8| pre_flags & f != 0;
        if matches!(kind, Kind::Bpe(_)) && cfg.merges.is_empty() {
            return Err(TokenizerError::MissingKey(KEY_MERGES));
        }
        // (bos, eos, unk, sep) defaults.
        let (def_bos, def_eos, def_unk, def_sep) = match (kind, cfg.model.as_str()) {
            (Kind::Spm, _) => (Some(1), Some(2), Some(0), None),
            (Kind::Wpm, _) => (Some(101), None, Some(100), Some(102)),
            (Kind::Ugm, _) => (None, Some(1), Some(2), None),
            (_, "gemma4") => (None, None, None, None),
            _ if flag(pre_flag::NO_BOS) => (None, Some(11), None, None),
            _ => (Some(11), Some(11), None, None),
        };
        let clean_spaces = flag(pre_flag::CLEAN) || kind == Kind::Wpm;

        // Vocabulary.
        let mut texts = Vec::with_capacity(n);
        let mut ids: FxMap<Box<str>, u32> = FxMap::default();
        ids.reserve(n);
        for (i, t) in cfg.tokens.into_iter().enumerate() {
            let t: Box<str> = if t.is_empty() { format!("[EMPTY_{i}]").into() } else { t.into() };
            if let Some(&first) = ids.get(&t) {
                return Err(TokenizerError::DuplicateToken { text: t.into(), first, second: i as u32 });
            }
            ids.insert(t.clone(), i as u32);
            texts.push(t);
        }
        let mut attrs: Vec<u16> = match &cfg.token_types {
            Some(t) => t[..n].iter().map(|&t| attr::from_type(t)).collect(),
            None => vec![attr::NORMAL; n],
        };
        let scores = cfg.scores.map(|mut s| {
            s.truncate(n);
            s
        });
        let scores = scores.unwrap_or_else(|| vec![0.0; n]);

        // Special ids: the file's value if in range, else the default if in range.
        let in_range = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
        let resolve = |given: Option<u32>, default: Option<u32>| in_range(given).or(in_range(default));
        let bos = resolve(cfg.bos, def_bos);
        let eos = resolve(cfg.eos, def_eos);
        let unk = resolve(cfg.unk, def_unk);
        let sep = resolve(cfg.sep, def_sep);
        let pad = in_range(cfg.pad);
        let mut eot = in_range(cfg.eot);
        let mut eom = in_range(cfg.eom);
        let mut fim = cfg.fim.map(in_range);
        let mut add_bos = cfg.add_bos.unwrap_or(is_spm || kind == Kind::Wpm || flag(pre_flag::ADD_BOS));
        if flag(pre_flag::GEMMA4) {
            add_bos = true;
        }
        let add_eos = cfg.add_eos.unwrap_or(kind == Kind::Ugm);
        let add_space_prefix = cfg.add_space_prefix.unwrap_or(is_spm);
        if add_bos && bos.is_none() {
            return Err(TokenizerError::MissingSpecialToken { flag: "tokenizer.ggml.add_bos_token", id_key: "tokenizer.ggml.bos_token_id" });
        }
        if add_eos && eos.is_none() {
            return Err(TokenizerError::MissingSpecialToken { flag: "tokenizer.ggml.add_eos_token", id_key: "tokenizer.ggml.eos_token_id" });
        }

        // Auto-detected special tokens: they become control tokens.
        let find = |names: &[&str]| names.iter().filter_map(|s| ids.get(*s).copied()).min();
        let mut make_control = |id: u32| attrs[id as usize] |= attr::CONTROL;
        if eot.is_none() {
            eot = find(EOT_TEXTS);
            eot.into_iter().for_each(&mut make_control);
        }
        if eom.is_none() {
            eom = find(&["<|eom_id|>"]);
            eom.into_iter().for_each(&mut make_control);
        }
        for (slot, names) in fim.iter_mut().zip(FIM_TEXTS) {
            if slot.is_none() {
                *slot = find(names);
                slot.iter().copied().for_each(&mut make_control);
            }
        }
        let mut eog: Vec<u32> = fim[3..].iter().flatten().copied().collect();
        for name in EOG_TEXTS {
            if let Some(&id) = ids.get(*name) {
                make_control(id);
                eog.push(id);
            }
        }
        for (i, a) in attrs.iter_mut().enumerate() {
            if *a & attr::CONTROL != 0 && texts[i].contains("unused") {
                *a |= attr::UNUSED;
            }
        }
        for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(&id) = ids.get(name) {
                attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        eog.extend(eos.into_iter().chain(eot).chain(eom));
        eog.sort_unstable();
        eog.dedup();
        let has = |t: &str| eog.iter().any(|&id| &*texts[id as usize] == t);
        let drop_end = (has("<|return|>") && has("<|call|>") || has("<|calls|>") && has("<|flush|>")) && has("<|end|>");
        let drop_s = has("<|tool_response>") && has("</s>");
        if drop_end {
            if let Some(&end) = ids.get("<|end|>") {
                eog.retain(|&id| id != end);
                attrs[end as usize] = attr::USER_DEFINED;
            }
        }
        if drop_s {
            if let Some(&s) = ids.get("</s>") {
                eog.retain(|&id| id != s);
                attrs[s as usize] = attr::NORMAL;
            }
        }

        // Per-model strip attributes (llama.cpp sets them by name, after
        // collecting the special tokens).
        let is_special = |a: u16| a & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0;
        let name = cfg.name.as_deref().unwrap_or("").to_lowercase();
        let arch = cfg.architecture.as_deref().unwrap_or("");
        let pre_name = cfg.pre.as_deref().unwrap_or("");
        let mut set_attr = |text: &str, bit: u16, on: bool| {
            if let Some(&id) = ids.get(text) {
                let a = &mut attrs[id as usize];
                *a = if on { *a | bit } else { *a & !bit };
            }
        };
        if ["jina-v2-de", "jina-v2-es", "jina-v2-code"].iter().any(|s| pre_name.contains(s))
            || ["nomic-bert-moe", "jina-bert-v3"].iter().any(|s| arch.contains(s))
        {
            set_attr("<mask>", attr::LSTRIP, true);
        } else if name.contains("phi-3") || name.contains("phi3") {
            for a in attrs.iter_mut().filter(|a| is_special(**a)) {
                *a |= attr::RSTRIP;
            }
            let mut set_attr = |text: &str, on: bool| {
                if let Some(&id) = ids.get(text) {
                    let a = &mut attrs[id as usize];
                    *a = if on { *a | attr::RSTRIP } else { *a & !attr::RSTRIP };
                }
            };
            set_attr("</s>", true);
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                set_attr(t, false);
            }
        } else if name.contains("modern-bert") {
            set_attr("[MASK]", attr::LSTRIP, true);
        }

        let specials = Specials::new(
            (0..n)
                .filter(|&i| is_special(attrs[i]))
                .map(|i| {
                    let a = attrs[i];
                    SpecialToken {
                        id: i as u32,
                        text: texts[i].clone(),
                        always: a & (attr::CONTROL | attr::UNKNOWN) == 0,
                        lstrip: a & attr::LSTRIP != 0,
                        rstrip: a & attr::RSTRIP != 0,
                    }
                })
                .collect(),
        );

        let lookup = |s: &str| ids.get(s).copied();
        let mut byte_tokens = [None; 256];
        for (b, slot) in byte_tokens.iter_mut().enumerate() {
            *slot = lookup(&format!("<0x{b:02X}>")).or_else(|| std::str::from_utf8(&[b as u8]).ok().and_then(lookup));
        }
        let algo = match kind {
            Kind::Spm => Algo::Spm,
            Kind::Wpm => Algo::Wpm(Box::new(Wpm::new(
                Trie::new(texts.iter().enumerate().map(|(i, t)| (i as u32, &**t))),
                cfg.lowercase.unwrap_or(true),
                cfg.strip_accents.or(cfg.lowercase).unwrap_or(true),
            ))),
            Kind::Ugm => {
                let kinds: Vec<u8> = attrs
                    .iter()
                    .map(|&a| match () {
                        _ if a & attr::NORMAL != 0 => 1,
                        _ if a & attr::USER_DEFINED != 0 => 2,
                        _ if a & attr::UNUSED != 0 => 3,
                        _ => 0,
                    })
                    .collect();
                Algo::Ugm(Box::new(Ugm::new(
                    &texts,
                    &kinds,
                    &scores,
                    cfg.precompiled_charsmap.as_deref(),
                    unk,
                    add_space_prefix,
                    cfg.remove_extra_whitespaces.unwrap_or(false),
                )?))
            }
            Kind::Bpe(pre) => {
                let spm_style = flag(pre_flag::SPM_STYLE);
                let opts = BpeOptions {
                    pre,
                    byte_encode: !spm_style,
                    ignore_merges: flag(pre_flag::IGNORE_MERGES),
                    escape_spaces: spm_style,
                    newline_words: flag(pre_flag::GEMMA4),
                };
                Algo::Bpe(Box::new(Bpe::new(&cfg.merges, opts, &lookup)))
            }
        };

        let mut tok = Tokenizer {
            algo,
            model: cfg.model.into(),
            texts,
            attrs,
            scores,
            ids,
            pieces: Vec::new(),
            piece_ends: Vec::with_capacity(n),
            byte_tokens,
            specials,
            bos,
            eos,
            eot,
            unk,
            pad,
            eog,
            sep,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
        };
        tok.build_pieces();
        Ok(tok)
    }

    /// Fills the piece cache: what each token decodes to, special tokens
    /// included (llama.cpp's `token_to_piece` with `special`).
    fn build_pieces(&mut self) {
        for i in 0..self.texts.len() {
            let (text, a) = (&*self.texts[i], self.attrs[i]);
            if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
                self.pieces.extend_from_slice(text.as_bytes());
            } else if a & attr::NORMAL != 0 {
                match &self.algo {
                    Algo::Bpe(b) if b.byte_encoded() => decode_byte_level(text, &mut self.pieces),
                    _ => self.pieces.extend_from_slice(text.replace('\u{2581}', " ").as_bytes()),
                }
            } else if a & attr::BYTE != 0 {
                if let Some(b) = text.get(3..5).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    self.pieces.push(b);
                }
            }
            self.piece_ends.push(self.pieces.len() as u32);
        }
    }

    fn lookup(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// Tokenizes `text` like `llama_tokenize`. `add_special` adds BOS/EOS as
    /// the model's `add_bos`/`add_eos` flags say; `parse_special` turns
    /// control-token text (e.g. `<|im_start|>`) into those tokens instead of
    /// tokenizing it as plain text.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        // A check that never fires never interrupts, so this is always `Ok`.
        self.encode_checked(text, add_special, parse_special, &|| false).unwrap_or_default()
    }

    /// [`Tokenizer::encode`] that calls `stop` every few thousand steps
    /// (special-token matching, merges, words) and returns [`Interrupted`]
    /// as soon as it returns `true`: callers with a deadline pass a clock
    /// check, so a huge or hostile input cannot hold them past it.
    pub fn encode_checked(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<u32>, Interrupted> {
        let frags = self.specials.partition(text, parse_special, stop)?;
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        // WPM: llama.cpp adds BOS ([CLS]) whenever it adds specials.
        if add_special && (self.add_bos || matches!(self.algo, Algo::Wpm(_))) {
            out.extend(self.bos);
        }
        let lookup = |s: &str| self.lookup(s);
        // Many small fragments never reach a check inside one: count them here.
        let mut work = 0usize;
        let mut check = |bytes: usize| {
            work += bytes;
            if work >= CHECK_EVERY {
                work = 0;
                if stop() {
                    return Err(Interrupted);
                }
            }
            Ok(())
        };
        match &self.algo {
            Algo::Spm => {
                let score = |id: u32| self.scores[id as usize];
                let byte = |b: u8| self.byte_tokens[b as usize];
                let mut prev_special = true;
                let mut buf = String::new();
                for f in frags {
                    match f {
                        Fragment::Text(a, b) => {
                            check(b - a)?;
                            buf.clear();
                            if self.add_space_prefix && prev_special {
                                buf.push('\u{2581}');
                            }
                            for c in text[a..b].chars() {
                                buf.push(if c == ' ' { '\u{2581}' } else { c });
                            }
                            spm::tokenize(&buf, &lookup, &score, &byte, stop, &mut out)?;
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            Algo::Bpe(bpe) => {
                for f in frags {
                    match f {
                        Fragment::Text(a, b) => {
                            check(b - a)?;
                            bpe.tokenize(&text[a..b], &lookup, stop, &mut out)?;
                        }
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
            Algo::Wpm(wpm) => {
                for f in frags {
                    match f {
                        Fragment::Text(a, b) => {
                            check(b - a)?;
                            wpm.tokenize(&text[a..b], self.unk, stop, &mut out)?;
                        }
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
            Algo::Ugm(ugm) => {
                for f in frags {
                    match f {
                        Fragment::Text(a, b) => {
                            check(b - a)?;
                            ugm.tokenize(&text[a..b], stop, &mut out)?;
                        }
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if let Algo::Wpm(_) = self.algo {
            // llama.cpp closes a WPM input with SEP whenever it adds specials.
            if add_special {
                out.extend(self.sep);
            }
        } else if add_special && self.add_eos {
            out.extend(self.eos);
        }
        Ok(out)
    }

    /// The bytes token `id` decodes to, special tokens included if `special`
    /// (otherwise control and unknown tokens decode to nothing). `None` if
    /// `id` is out of range.
    pub fn token_piece(&self, id: u32, special: bool) -> Option<&[u8]> {
        let i = id as usize;
        let end = *self.piece_ends.get(i)? as usize;
        if !special && self.attrs[i] & (attr::CONTROL | attr::UNKNOWN) != 0 {
            return Some(&[]);
        }
        let start = if i == 0 { 0 } else { self.piece_ends[i - 1] as usize };
        Some(&self.pieces[start..end])
    }

    /// The raw bytes of a token's piece: byte-level decoded for `gpt2`,
    /// `▁` → space and `<0xNN>` → byte for `llama`; control tokens give an
    /// empty slice (see [`Tokenizer::token_piece`] to render them).
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.token_piece(id, false)
    }

    /// Decodes `ids` to text like `llama_detokenize` (without removing
    /// BOS/EOS). Control tokens are rendered only if `render_special`.
    /// Invalid UTF-8 becomes U+FFFD; unknown ids are skipped.
    pub fn decode(&self, ids: &[u32], render_special: bool) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids, render_special)).into_owned()
    }

    /// [`Tokenizer::decode`] before the UTF-8 check: llama.cpp's
    /// `llama_detokenize` bytes exactly (a token stream may end inside a
    /// multi-byte character).
    pub fn decode_bytes(&self, ids: &[u32], render_special: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut strip_space = self.add_space_prefix;
        for &id in ids {
            if let Some(p) = self.token_piece(id, render_special) {
                let p = if strip_space { p.strip_prefix(b" ").unwrap_or(p) } else { p };
                bytes.extend_from_slice(p);
            }
            strip_space = false;
        }
        if self.clean_spaces {
            clean_spaces(&mut bytes);
        }
        bytes
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.texts.len()
    }
    /// Beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }
    /// End-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }
    /// End-of-turn token (from the file, or detected by text such as `<|im_end|>`).
    pub fn eot(&self) -> Option<u32> {
        self.eot
    }
    /// Unknown token.
    pub fn unk(&self) -> Option<u32> {
        self.unk
    }
    /// Padding token.
    pub fn pad(&self) -> Option<u32> {
        self.pad
    }
    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }
    /// Whether `encode(.., add_special = true, ..)` appends EOS.
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }
    /// Whether `id` ends generation (EOS, EOT, `<|im_end|>`, `<end_of_turn>`, ...).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }
    /// All end-of-generation tokens, sorted.
    pub fn eog_tokens(&self) -> &[u32] {
        &self.eog
    }
    /// Whether `id` is a control token (rendered only on request).
    pub fn is_control(&self, id: u32) -> bool {
        self.attrs.get(id as usize).is_some_and(|a| a & attr::CONTROL != 0)
    }
    /// The id of the token whose vocabulary text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.lookup(text)
    }
    /// The vocabulary text of token `id` (e.g. `Ġworld` for gpt2, `▁world` for llama).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.texts.get(id as usize).map(|t| &**t)
    }
}

/// llama.cpp's `llama_decode_text`: each char of a byte-level BPE token
/// stands for one byte; a char that stands for none gives
/// `[UNK_BYTE_0x<its UTF-8 in hex><the token text>]`.
fn decode_byte_level(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match unicode::char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                for b in c.encode_utf8(&mut [0; 4]).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
}

/// llama.cpp's `clean_spaces` detokenizer pass: drops the space in " ?",
/// " !", " .", " ,", in " ' " and before "'s", "'m", "'re", "'ve".
fn clean_spaces(t: &mut Vec<u8>) {
    // Each pass rewrites in place; `t[i - 1]` is still the original byte.
    let n = t.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = t[i];
        if t[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        t[total] = x;
        total += 1;
    }
    t.truncate(total);

    let n = t.len();
    let mut total = usize::from(n > 0);
    let mut i = 1;
    while i < n {
        let x = t[i];
        if x == b'\'' && i + 1 < n && t[i - 1] == b' ' && t[i + 1] == b' ' {
            total -= 1;
            i += 1;
            t[i] = 0;
        }
        t[total] = x;
        total += 1;
        i += 1;
    }
    t.truncate(total);

    let n = t.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = t[i];
        if t[i - 1] == b' ' && x == b'\'' && i + 1 < n {
            let x1 = t[i + 1];
            let x2 = if i + 2 < n { t[i + 2] } else { 0 };
            if matches!(x1, b's' | b'm') || (i + 2 < n && matches!((x1, x2), (b'r', b'e') | (b'v', b'e'))) {
                total -= 1;
            }
        }
        t[total] = x;
        total += 1;
    }
    t.truncate(total);
}

// The model and CLI share one tokenizer across threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tokenizer>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_spaces_like_llama_cpp() {
        let mut t = b"Hello , world ! it 's ' x ' they 're".to_vec();
        clean_spaces(&mut t);
        assert_eq!(String::from_utf8(t).unwrap(), "Hello, world! it's'x'they're");
    }

    #[test]
    fn unsupported_model_is_named() {
        let cfg = TokenizerConfig { model: "rwkv".into(), tokens: vec!["a".into()], ..Default::default() };
        let e = Tokenizer::new(cfg).unwrap_err();
        assert!(e.to_string().contains("rwkv") && e.to_string().contains("gpt2, gemma4, llama, bert, t5"), "{e}");
        let cfg = TokenizerConfig { model: "llama".into(), tokens: vec!["a".into(), "b".into()], scores: Some(vec![0.0]), ..Default::default() };
        let e = Tokenizer::new(cfg).unwrap_err();
        assert!(e.to_string().contains(KEY_SCORES), "{e}");
        let cfg = TokenizerConfig { model: "gpt2".into(), pre: Some("smollm".into()), tokens: vec!["a".into()], ..Default::default() };
        assert!(Tokenizer::new(cfg).unwrap_err().to_string().contains(KEY_MERGES));
    }
}
