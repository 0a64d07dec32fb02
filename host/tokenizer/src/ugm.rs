//! Unigram (llama.cpp's `llm_tokenizer_ugm_session`, T5 and XLM-R style
//! SentencePiece models): the text is normalized by SentencePiece's
//! precompiled charsmap (a double-array trie of replacements), spaces become
//! `▁` (merged and prefixed as the model says), then Viterbi picks the
//! tokenization with the highest total score; a character no token covers
//! is the unknown token (consecutive unknowns merge into one).

use crate::wpm::Trie;
use crate::{Interrupted, TokenizerError, CHECK_EVERY};

/// SentencePiece's precompiled normalization table: an XOR-compressed
/// compact double array (XCDA) over input bytes, whose leaves index
/// NUL-terminated replacement strings.
#[derive(Debug, Default)]
struct Charsmap {
    xcda: Vec<u32>,
    replacements: Vec<u8>,
}

impl Charsmap {
    fn parse(blob: &[u8]) -> Result<Charsmap, TokenizerError> {
        let bad = |why: &str| TokenizerError::BadCharsmap(why.to_string());
        if blob.len() < 4 {
            return Err(bad("shorter than its size header"));
        }
        let size = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
        if size.checked_add(4).is_none_or(|end| end >= blob.len()) {
            return Err(bad("the double array runs past the end"));
        }
        let xcda = blob[4..4 + size].chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Ok(Charsmap { xcda, replacements: blob[4 + size..].to_vec() })
    }

    fn node(&self, i: usize) -> Option<u32> {
        self.xcda.get(i).copied()
    }
    fn base(p: u32) -> u32 {
        (p >> 10) << ((p & (1 << 9)) >> 6)
    }
    fn lcheck(p: u32) -> u32 {
        p & ((1 << 31) | 0xFF)
    }
    fn leaf(p: u32) -> bool {
        (p >> 8) & 1 != 0
    }
    fn value(p: u32) -> u32 {
        p & ((1 << 31) - 1)
    }

    /// The longest input prefix with a replacement: (replacement, bytes consumed).
    fn longest(&self, input: &[u8]) -> Option<(&[u8], usize)> {
        if self.xcda.is_empty() {
            return None;
        }
        let mut best = None;
        let mut idx = Self::base(self.node(0)?) as usize;
        for (k, &c) in input.iter().enumerate() {
            if c == 0 {
                break;
            }
            idx ^= c as usize;
            // llama.cpp throws on an index past the array; a well-formed
            // table never gets there, a broken one just stops matching here.
            let p = self.node(idx)?;
            if Self::lcheck(p) != u32::from(c) {
                break;
            }
            let is_leaf = Self::leaf(p);
            idx ^= Self::base(p) as usize;
            if is_leaf {
                let v = Self::value(self.node(idx)?) as usize;
                best = Some((v, k + 1));
            }
        }
        let (at, len) = best?;
        let rest = self.replacements.get(at..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some((&rest[..end], len))
    }
}

#[derive(Debug)]
pub(crate) struct Ugm {
    charsmap: Charsmap,
    /// Normal, user-defined and unused tokens.
    tokens: Trie,
    /// User-defined tokens (kept as they are by normalization).
    user: Trie,
    /// Per token: score, and whether it is user-defined (scored 0).
    scores: Vec<f32>,
    user_defined: Vec<bool>,
    unknown_score: f64,
    unk: u32,
    prepend_space: bool,
    merge_spaces: bool,
}

impl Ugm {
    /// `kind[i]`: 0 other, 1 normal, 2 user-defined, 3 unused.
    pub(crate) fn new(
        texts: &[Box<str>],
        kind: &[u8],
        scores: &[f32],
        charsmap: Option<&[u8]>,
        unk: Option<u32>,
        add_space_prefix: bool,
        remove_extra_whitespaces: bool,
    ) -> Result<Ugm, TokenizerError> {
        let charsmap = match charsmap {
            Some(b) if !b.is_empty() => Charsmap::parse(b)?,
            _ => Charsmap::default(),
        };
        let tokens = Trie::new((0..texts.len()).filter(|&i| kind[i] != 0).map(|i| (i as u32, &*texts[i])));
        let user = Trie::new((0..texts.len()).filter(|&i| kind[i] == 2).map(|i| (i as u32, &*texts[i])));
        let min = (0..texts.len()).filter(|&i| kind[i] == 1).map(|i| scores[i]).fold(f32::MAX, f32::min);
        Ok(Ugm {
            charsmap,
            tokens,
            user,
            scores: scores.to_vec(),
            user_defined: kind.iter().map(|&k| k == 2).collect(),
            unknown_score: f64::from(min) - 10.0,
            // llama.cpp pushes LLAMA_TOKEN_NULL (-1) when there is none.
            unk: unk.unwrap_or(u32::MAX),
            prepend_space: add_space_prefix,
            merge_spaces: remove_extra_whitespaces,
        })
    }

    /// One normalization step at `input[at..]`: (replacement, bytes consumed).
    fn normalize_prefix<'a>(&'a self, input: &'a [u8], at: usize) -> (&'a [u8], usize) {
        let rest = &input[at..];
        // A user-defined token stays as it is.
        let mut node = 0;
        let mut user_len = 0;
        for (k, &b) in rest.iter().enumerate() {
            match self.user.step(node, b) {
                Some(n) => node = n,
                None => break,
            }
            if self.user.id(node).is_some() {
                user_len = k + 1;
            }
        }
        if user_len > 0 {
            return (&rest[..user_len], user_len);
        }
        if let Some(r) = self.charsmap.longest(rest) {
            return r;
        }
        // Input is UTF-8 here, so this is one whole character.
        let n = utf8_len(rest[0]).min(rest.len());
        (&rest[..n], n)
    }

    /// llama.cpp's `normalize`.
    fn normalize(&self, text: &str) -> Vec<u8> {
        const SPACE: &[u8] = "\u{2581}".as_bytes();
        let input = text.as_bytes();
        let mut out = Vec::with_capacity(input.len() * 3);
        let (mut prepended, mut in_word) = (false, false);
        let mut at = 0;
        while at < input.len() {
            let (rep, used) = self.normalize_prefix(input, at);
            for &c in rep {
                if c != b' ' {
                    if !in_word {
                        in_word = true;
                        if (self.prepend_space && !prepended) || self.merge_spaces {
                            out.extend_from_slice(SPACE);
                            prepended = true;
                        }
                    }
                    out.push(c);
                } else {
                    in_word = false;
                    if !self.merge_spaces {
                        out.extend_from_slice(SPACE);
                    }
                }
            }
            at += used;
        }
        out
    }

    /// Tokenizes one raw-text fragment.
    pub(crate) fn tokenize(&self, text: &str, stop: &dyn Fn() -> bool, out: &mut Vec<u32>) -> Result<(), Interrupted> {
        let s = self.normalize(text);
        let n = s.len();
        if n == 0 {
            return Ok(());
        }
        // Best (token, start, score) ending at each byte offset.
        let mut best: Vec<(u32, usize, f64)> = vec![(self.unk, 0, f64::MIN); n + 1];
        best[0] = (self.unk, 0, 0.0);
        let mut at = 0;
        let mut steps = 0usize;
        while at < n {
            steps += 1;
            if steps.is_multiple_of(CHECK_EVERY) && stop() {
                return Err(Interrupted);
            }
            let char_len = utf8_len(s[at]).min(n - at);
            let base = best[at].2;
            let mut single = false;
            let mut node = 0;
            for (k, &b) in s[at..].iter().enumerate() {
                match self.tokens.step(node, b) {
                    Some(x) => node = x,
                    None => break,
                }
                if let Some(id) = self.tokens.id(node) {
                    let end = at + k + 1;
                    single |= k + 1 == char_len;
                    let score = if self.user_defined[id as usize] { 0.0 } else { f64::from(self.scores[id as usize]) };
                    if base + score > best[end].2 {
                        best[end] = (id, at, base + score);
                    }
                }
            }
            if !single {
                let end = at + char_len;
                if base + self.unknown_score > best[end].2 {
                    best[end] = (self.unk, at, base + self.unknown_score);
                }
            }
            at += char_len;
        }
        // Back from the end; consecutive unknown tokens become one.
        let first = out.len();
        let mut i = n;
        let mut prev_unknown = false;
        loop {
            let (id, start, _) = best[i];
            let unknown = id == self.unk;
            if !(prev_unknown && unknown) {
                out.push(id);
            }
            if start == 0 {
                break;
            }
            prev_unknown = unknown;
            i = start;
        }
        out[first..].reverse();
        // Without an unknown token llama.cpp emits LLAMA_TOKEN_NULL (-1),
        // which is no token: leave it out.
        if self.unk == u32::MAX {
            let tail: Vec<u32> = out.drain(first..).filter(|&id| id != u32::MAX).collect();
            out.extend(tail);
        }
        Ok(())
    }
}

fn utf8_len(b: u8) -> usize {
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4][(b >> 4) as usize]
}
