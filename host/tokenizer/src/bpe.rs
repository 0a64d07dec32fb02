//! BPE over ranked merges (llama.cpp's `llm_tokenizer_bpe_session`).
//!
//! Text is split into words by the pre-tokenizer; each word is byte-encoded
//! (GPT-2: every byte becomes a printable char; SentencePiece-style BPE
//! keeps UTF-8), split into chars, and adjacent pairs are merged lowest merge
//! rank first (ties: leftmost) using a heap, so a word of n chars costs
//! O(n log n). Finished words are cached.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;

use crate::fxhash::FxMap;
use crate::pretok::{self, PreTokenizer};
use crate::unicode::byte_to_char_table;
use crate::{Interrupted, CHECK_EVERY};

/// Words longer than this (bytes) are not cached.
const CACHE_MAX_WORD: usize = 64;
/// The cache is cleared when it holds this many words.
const CACHE_MAX_ENTRIES: usize = 1 << 16;

/// How a BPE vocabulary pre-processes text (llama.cpp's per-`pre` settings).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BpeOptions {
    pub pre: PreTokenizer,
    /// GPT-2 byte encoding of every word (false: raw UTF-8 with `<0xNN>`
    /// byte fallback, as Gemma 4's SentencePiece-style BPE).
    pub byte_encode: bool,
    /// A word that is a token is taken whole, without merges (Llama 3).
    pub ignore_merges: bool,
    /// Spaces become `▁` before splitting (Gemma 4).
    pub escape_spaces: bool,
    /// A word of newlines that is a token is taken whole (Gemma 4).
    pub newline_words: bool,
}

#[derive(Debug)]
pub(crate) struct Bpe {
    /// "left right" → rank (the merge's index in `tokenizer.ggml.merges`).
    ranks: FxMap<Box<str>, u32>,
    opts: BpeOptions,
    byte_chars: [char; 256],
    /// The fallback token of each byte of a symbol that is no token: the
    /// single-byte string's token (only ASCII can be one) when byte
    /// encoding, else `<0xNN>`.
    byte_fallback: [Option<u32>; 256],
    cache: Mutex<FxMap<Box<str>, Box<[u32]>>>,
}

#[derive(Clone, Copy)]
struct Sym {
    start: u32,
    len: u32,
    prev: i32,
    next: i32,
}

impl Bpe {
    pub(crate) fn new(merges: &[String], opts: BpeOptions, lookup: &dyn Fn(&str) -> Option<u32>) -> Bpe {
        let mut ranks = FxMap::default();
        ranks.reserve(merges.len());
        for (i, m) in merges.iter().enumerate() {
            // llama.cpp splits at the first space after the first byte; a
            // merge without one can never match.
            if m.len() > 1 && m.as_bytes()[1..].contains(&b' ') {
                ranks.entry(m.as_str().into()).or_insert(i as u32);
            }
        }
        let mut byte_fallback = [None; 256];
        for (b, slot) in byte_fallback.iter_mut().enumerate() {
            *slot = if opts.byte_encode {
                std::str::from_utf8(&[b as u8]).ok().and_then(lookup)
            } else {
                lookup(&format!("<0x{b:02X}>"))
            };
        }
        Bpe {
            ranks,
            opts,
            byte_chars: byte_to_char_table(),
            byte_fallback,
            cache: Mutex::new(FxMap::default()),
        }
    }

    pub(crate) fn pre(&self) -> PreTokenizer {
        self.opts.pre
    }

    /// Whether tokens are GPT-2 byte-encoded (else `▁` for spaces and `<0xNN>` bytes).
    pub(crate) fn byte_encoded(&self) -> bool {
        self.opts.byte_encode
    }

    /// Tokenizes one raw-text fragment (no special tokens in it).
    /// `stop` is asked every [`CHECK_EVERY`] bytes of words and merge steps.
    pub(crate) fn tokenize(
        &self,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<u32>,
        stop: &dyn Fn() -> bool,
        out: &mut Vec<u32>,
    ) -> Result<(), Interrupted> {
        let escaped;
        let text = if self.opts.escape_spaces {
            escaped = text.replace(' ', "\u{2581}");
            escaped.as_str()
        } else {
            text
        };
        let mut words = Vec::new();
        pretok::split(self.opts.pre, text, &mut words);
        let mut encoded = String::new();
        let mut scratch = Scratch::default();
        let mut work = 0usize;
        for word in words {
            work += word.len();
            if work >= CHECK_EVERY {
                work = 0;
                if stop() {
                    return Err(Interrupted);
                }
            }
            let cacheable = word.len() <= CACHE_MAX_WORD;
            if cacheable {
                if let Some(ids) = self.cache_get(word) {
                    out.extend_from_slice(&ids);
                    continue;
                }
            }
            encoded.clear();
            if self.opts.byte_encode {
                encoded.extend(word.bytes().map(|b| self.byte_chars[b as usize]));
            } else {
                encoded.push_str(word);
            }
            let first = out.len();
            let whole = if self.opts.ignore_merges || (self.opts.newline_words && encoded.bytes().all(|b| b == b'\n')) {
                lookup(&encoded)
            } else {
                None
            };
            match whole {
                Some(id) => out.push(id),
                None => self.merge_word(&encoded, lookup, stop, &mut scratch, out)?,
            }
            if cacheable {
                self.cache_put(word, &out[first..]);
            }
        }
        Ok(())
    }

    fn cache_get(&self, word: &str) -> Option<Box<[u32]>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(word).cloned()
    }

    fn cache_put(&self, word: &str, ids: &[u32]) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(word.into(), ids.into());
    }

    fn rank(&self, key: &mut String, left: &str, right: &str) -> Option<u32> {
        key.clear();
        key.push_str(left);
        key.push(' ');
        key.push_str(right);
        self.ranks.get(key.as_str()).copied()
    }

    /// BPE over one byte-encoded word.
    fn merge_word(
        &self,
        word: &str,
        lookup: &dyn Fn(&str) -> Option<u32>,
        stop: &dyn Fn() -> bool,
        s: &mut Scratch,
        out: &mut Vec<u32>,
    ) -> Result<(), Interrupted> {
        s.syms.clear();
        s.heap.clear();
        for (i, (start, c)) in word.char_indices().enumerate() {
            s.syms.push(Sym { start: start as u32, len: c.len_utf8() as u32, prev: i as i32 - 1, next: i as i32 + 1 });
        }
        if let Some(last) = s.syms.last_mut() {
            last.next = -1;
        }
        let text = |sym: &Sym| &word[sym.start as usize..(sym.start + sym.len) as usize];
        let mut key = String::new();
        let mut push = |syms: &[Sym], heap: &mut BinaryHeap<Reverse<(u32, u32, u32, u32)>>, l: i32, r: i32| {
            if l < 0 || r < 0 {
                return;
            }
            let (ls, rs) = (&syms[l as usize], &syms[r as usize]);
            if let Some(rank) = self.rank(&mut key, text(ls), text(rs)) {
                heap.push(Reverse((rank, l as u32, r as u32, ls.len + rs.len)));
            }
        };
        for i in 1..s.syms.len() as i32 {
            push(&s.syms, &mut s.heap, i - 1, i);
        }
        let mut steps = 0usize;
        while let Some(Reverse((_, l, r, size))) = s.heap.pop() {
            steps += 1;
            if steps % CHECK_EVERY == 0 && stop() {
                return Err(Interrupted);
            }
            let (l, r) = (l as usize, r as usize);
            let (ll, rl) = (s.syms[l].len, s.syms[r].len);
            // Stale: one side was merged into something else since.
            if ll == 0 || rl == 0 || ll + rl != size {
                continue;
            }
            let rnext = s.syms[r].next;
            s.syms[l].len += rl;
            s.syms[l].next = rnext;
            s.syms[r].len = 0;
            if rnext >= 0 {
                s.syms[rnext as usize].prev = l as i32;
            }
            let lprev = s.syms[l].prev;
            push(&s.syms, &mut s.heap, lprev, l as i32);
            push(&s.syms, &mut s.heap, l as i32, rnext);
        }
        for sym in s.syms.iter().filter(|s| s.len > 0) {
            let t = text(sym);
            match lookup(t) {
                Some(id) => out.push(id),
                // Not a token: llama.cpp falls back to single-byte tokens.
                None => out.extend(t.bytes().filter_map(|b| self.byte_fallback[b as usize])),
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Scratch {
    syms: Vec<Sym>,
    heap: BinaryHeap<Reverse<(u32, u32, u32, u32)>>,
}
