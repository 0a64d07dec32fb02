//! WordPiece (llama.cpp's `llm_tokenizer_wpm_session`, BERT): the text is
//! normalized and split into words (BERT's basic tokenizer: lowercase,
//! accents stripped by llama.cpp's one-code-point NFD table, control
//! characters dropped, punctuation and CJK characters alone), then each word,
//! with a leading `▁` (how llama.cpp's converter spells a word start), is cut
//! greedily into the longest tokens from the left. A word with a piece that
//! is no token becomes the unknown token.

use crate::fxhash::FxMap;
use crate::unicode::{self, flags};
use crate::{Interrupted, CHECK_EVERY};

/// A byte trie of the vocabulary, for longest-prefix matches in time
/// linear in the match length.
#[derive(Debug, Default)]
pub(crate) struct Trie {
    /// (node << 8 | byte) → child node; node 0 is the root.
    edges: FxMap<u64, u32>,
    /// Token id at each node, or `u32::MAX`.
    ids: Vec<u32>,
}

impl Trie {
    pub(crate) fn new<'a>(tokens: impl Iterator<Item = (u32, &'a str)>) -> Trie {
        let mut t = Trie { edges: FxMap::default(), ids: vec![u32::MAX] };
        for (id, text) in tokens {
            let mut node = 0u32;
            for &b in text.as_bytes() {
                let next = t.ids.len() as u32;
                node = *t.edges.entry(u64::from(node) << 8 | u64::from(b)).or_insert_with(|| next);
                if node == next {
                    t.ids.push(u32::MAX);
                }
            }
            t.ids[node as usize] = id;
        }
        t
    }

    /// The child of `node` by `b`.
    #[inline]
    pub(crate) fn step(&self, node: u32, b: u8) -> Option<u32> {
        self.edges.get(&(u64::from(node) << 8 | u64::from(b))).copied()
    }

    /// The token ending at `node`, if any.
    #[inline]
    pub(crate) fn id(&self, node: u32) -> Option<u32> {
        let id = self.ids[node as usize];
        (id != u32::MAX).then_some(id)
    }

    /// The longest token that is a prefix of `s`: (id, length in bytes).
    fn longest_prefix(&self, s: &[u8]) -> Option<(u32, usize)> {
        let mut node = 0;
        let mut best = None;
        for (i, &b) in s.iter().enumerate() {
            match self.step(node, b) {
                Some(n) => node = n,
                None => break,
            }
            if let Some(id) = self.id(node) {
                best = Some((id, i + 1));
            }
        }
        best
    }
}

#[derive(Debug)]
pub(crate) struct Wpm {
    trie: Trie,
    lowercase: bool,
    strip_accents: bool,
}

/// BERT's "Chinese character" ranges, as llama.cpp has them.
fn is_chinese_char(c: u32) -> bool {
    matches!(c,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

impl Wpm {
    pub(crate) fn new(trie: Trie, lowercase: bool, strip_accents: bool) -> Wpm {
        Wpm { trie, lowercase, strip_accents }
    }

    /// llama.cpp's `preprocess`: the words of `text`.
    fn words(&self, text: &str) -> Vec<String> {
        let mut words = vec![String::new()];
        for ch in text.chars() {
            let mut c = ch as u32;
            if self.strip_accents {
                c = unicode::nfd_base(c);
            }
            let f = flags(c);
            if f.is_whitespace() {
                if !words.last().is_some_and(String::is_empty) {
                    words.push(String::new());
                }
                continue;
            }
            if c == 0 || c == 0xFFFD || f.is_control() {
                continue;
            }
            if self.strip_accents && f.is_accent_mark() {
                continue;
            }
            let out = if self.lowercase { unicode::to_lower(c) } else { c };
            let Some(out) = char::from_u32(out) else { continue };
            if f.is_punctuation() || (c < 0x7F && f.is_symbol()) || is_chinese_char(c) {
                if !words.last().is_some_and(String::is_empty) {
                    words.push(String::new());
                }
                if let Some(w) = words.last_mut() {
                    w.push(out);
                }
                words.push(String::new());
            } else if let Some(w) = words.last_mut() {
                w.push(out);
            }
        }
        if words.last().is_some_and(String::is_empty) {
            words.pop();
        }
        words
    }

    /// Tokenizes one raw-text fragment.
    pub(crate) fn tokenize(&self, text: &str, unk: Option<u32>, stop: &dyn Fn() -> bool, out: &mut Vec<u32>) -> Result<(), Interrupted> {
        let mut work = 0usize;
        let mut word1 = String::new();
        for word in self.words(text) {
            if word.is_empty() {
                continue;
            }
            work += word.len();
            if work >= CHECK_EVERY {
                work = 0;
                if stop() {
                    return Err(Interrupted);
                }
            }
            word1.clear();
            word1.push('\u{2581}');
            word1.push_str(&word);
            let bytes = word1.as_bytes();
            let first = out.len();
            let mut i = 0;
            while i < bytes.len() {
                match self.trie.longest_prefix(&bytes[i..]) {
                    Some((id, len)) => {
                        out.push(id);
                        i += len;
                    }
                    None => {
                        out.truncate(first);
                        break;
                    }
                }
            }
            if out.len() == first {
                out.extend(unk);
            }
        }
        Ok(())
    }
}
