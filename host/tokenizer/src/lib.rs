//! Tokenizers built from GGUF metadata, matching llama.cpp token for token.
//!
//! Two model types are supported:
//! * `gpt2`: byte-level BPE with ranked merges and a GPT-2 style
//!   pre-tokenizer (`smollm`, `gpt-2` and their aliases);
//! * `llama`: SentencePiece-style BPE over token scores with `<0xNN>` byte
//!   fallback (Gemma, Llama 2, ...).
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
mod unicode;

pub use config::TokenizerConfig;
pub use error::{Interrupted, TokenizerError};
pub use stream::StreamDecoder;

use bpe::Bpe;
use config::{KEY_MERGES, KEY_SCORES, KEY_TYPES};
use fxhash::FxMap;
use pretok::PreTokenizer;
use special::{Fragment, Specials};

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
/// Fill-in-the-middle pad / repo / file-separator tokens, which also end generation.
const FIM_EOG_TEXTS: &[&[&str]] = &[
    &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
    &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
    &["<|file_sep|>"],
];

#[derive(Debug)]
enum Algo {
    Bpe(Box<Bpe>),
    Spm,
}

/// A tokenizer: text ↔ token ids for one model's vocabulary.
///
/// Cheap to share: it is `Send + Sync` and all methods take `&self`.
pub struct Tokenizer {
    algo: Algo,
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
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
}

impl std::fmt::Debug for Tokenizer {
    // A summary: the vocabulary itself is far too long to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.algo {
            Algo::Bpe(_) => "gpt2 (byte-level BPE)",
            Algo::Spm => "llama (SentencePiece BPE)",
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

/// Which pre-tokenizer, and whether decoding cleans spaces, for a `gpt2` model.
fn gpt2_pre(pre: Option<&str>) -> Result<(PreTokenizer, bool), TokenizerError> {
    use PreTokenizer::*;
    Ok(match pre.unwrap_or("") {
        "smollm" | "command-r" => (Smollm, false),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => (Smollm, true),
        "gpt-2" | "phi-2" | "mpt" | "olmo" | "gigachat" | "a.x-4.0" | "mellum" | "exaone4" => (Gpt2, true),
        "trillion" | "granite-docling" => (Gpt2, false),
        other => return Err(TokenizerError::UnsupportedPreTokenizer(other.to_string())),
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
        let is_spm = match cfg.model.as_str() {
            "llama" => true,
            "gpt2" => false,
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        let (pre, clean_spaces) = if is_spm { (None, false) } else { gpt2_pre(cfg.pre.as_deref()).map(|(p, c)| (Some(p), c))? };
        if !is_spm && cfg.merges.is_empty() {
            return Err(TokenizerError::MissingKey(KEY_MERGES));
        }
        let (def_bos, def_eos, def_unk) = if is_spm { (Some(1), Some(2), Some(0)) } else { (Some(11), Some(11), None) };

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
        let pad = in_range(cfg.pad);
        let mut eot = in_range(cfg.eot);
        let mut eom = in_range(cfg.eom);
        let add_bos = cfg.add_bos.unwrap_or(is_spm);
        let add_eos = cfg.add_eos.unwrap_or(false);
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
        let mut eog: Vec<u32> = Vec::new();
        for names in FIM_EOG_TEXTS {
            if let Some(id) = find(names) {
                make_control(id);
                eog.push(id);
            }
        }
        for name in EOG_TEXTS {
            if let Some(&id) = ids.get(*name) {
                make_control(id);
                eog.push(id);
            }
        }
        for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(&id) = ids.get(name) {
                attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        for (i, a) in attrs.iter_mut().enumerate() {
            if *a & attr::CONTROL != 0 && texts[i].contains("unused") {
                *a |= attr::UNUSED;
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

        let specials = Specials::new(
            (0..n)
                .filter(|&i| attrs[i] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0)
                .map(|i| (i as u32, texts[i].clone(), attrs[i] & (attr::CONTROL | attr::UNKNOWN) == 0))
                .collect(),
        );

        let lookup = |s: &str| ids.get(s).copied();
        let mut byte_tokens = [None; 256];
        for (b, slot) in byte_tokens.iter_mut().enumerate() {
            *slot = lookup(&format!("<0x{b:02X}>")).or_else(|| std::str::from_utf8(&[b as u8]).ok().and_then(lookup));
        }
        let algo = match pre {
            None => Algo::Spm,
            Some(pre) => Algo::Bpe(Box::new(Bpe::new(&cfg.merges, pre, &lookup))),
        };

        let mut tok = Tokenizer {
            algo,
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
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
        };
        tok.build_pieces();
        Ok(tok)
    }

    /// Fills the piece cache: what each token decodes to, special tokens included.
    fn build_pieces(&mut self) {
        let byte_chars_inv = unicode::char_to_byte;
        for i in 0..self.texts.len() {
            let (text, a) = (&*self.texts[i], self.attrs[i]);
            if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
                self.pieces.extend_from_slice(text.as_bytes());
            } else if a & attr::NORMAL != 0 {
                match self.algo {
                    Algo::Spm => self.pieces.extend_from_slice(text.replace('\u{2581}', " ").as_bytes()),
                    Algo::Bpe(_) => {
                        for c in text.chars() {
                            match byte_chars_inv(c) {
                                Some(b) => self.pieces.push(b),
                                None => self.pieces.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                            }
                        }
                    }
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
        if add_special && self.add_bos {
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
        }
        if add_special && self.add_eos {
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
        String::from_utf8_lossy(&bytes).into_owned()
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
        let cfg = TokenizerConfig { model: "bert".into(), tokens: vec!["a".into()], ..Default::default() };
        let e = Tokenizer::new(cfg).unwrap_err();
        assert!(e.to_string().contains("bert"), "{e}");
        let cfg = TokenizerConfig { model: "llama".into(), tokens: vec!["a".into(), "b".into()], scores: Some(vec![0.0]), ..Default::default() };
        let e = Tokenizer::new(cfg).unwrap_err();
        assert!(e.to_string().contains(KEY_SCORES), "{e}");
        let cfg = TokenizerConfig { model: "gpt2".into(), pre: Some("smollm".into()), tokens: vec!["a".into()], ..Default::default() };
        assert!(Tokenizer::new(cfg).unwrap_err().to_string().contains(KEY_MERGES));
    }
}
