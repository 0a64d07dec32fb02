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

/// "No token" in a symbol's id.
const NO_ID: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct Bpe {
    /// (left id << 32 | right id) → (rank, id of the merged text or
    /// `NO_ID`), for the merges whose both sides are tokens: nearly all,
    /// and the fast path (no string building, no string hashing).
    pair_ranks: FxMap<u64, (u32, u32)>,
    /// "left right" → rank (the merge's index in `tokenizer.ggml.merges`),
    /// for the other merges: a side that is not a token can still be a
    /// symbol (an unlisted char, or a merge result that is no token).
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
    /// The token whose text this symbol is, or `NO_ID`.
    id: u32,
}

impl Bpe {
    pub(crate) fn new(merges: &[String], opts: BpeOptions, lookup: &dyn Fn(&str) -> Option<u32>) -> Bpe {
        let mut ranks = FxMap::default();
        let mut pair_ranks = FxMap::default();
        pair_ranks.reserve(merges.len());
        let mut merged = String::new();
        for (i, m) in merges.iter().enumerate() {
            // llama.cpp splits at the first space after the first byte (the
            // first pair with a given text wins); a merge without one can
            // never match.
            let Some(sp) = m.as_bytes().iter().skip(1).position(|&b| b == b' ').map(|p| p + 1) else {
                continue;
            };
            let (a, b) = (&m[..sp], &m[sp + 1..]);
            match (lookup(a), lookup(b)) {
                (Some(ia), Some(ib)) => {
                    merged.clear();
                    merged.push_str(a);
                    merged.push_str(b);
                    let id = lookup(&merged).unwrap_or(NO_ID);
                    pair_ranks.entry(u64::from(ia) << 32 | u64::from(ib)).or_insert((i as u32, id));
                }
                _ => {
                    ranks.entry(m.as_str().into()).or_insert(i as u32);
                }
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
            pair_ranks,
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

    /// The rank of merging symbols `l` and `r` of `word`, and the id of the result.
    #[inline]
    fn rank(&self, key: &mut String, word: &str, l: &Sym, r: &Sym, lookup: &dyn Fn(&str) -> Option<u32>) -> Option<(u32, u32)> {
        if l.id != NO_ID && r.id != NO_ID {
            return self.pair_ranks.get(&(u64::from(l.id) << 32 | u64::from(r.id))).copied();
        }
        if self.ranks.is_empty() {
            return None;
        }
        let text = |s: &Sym| &word[s.start as usize..(s.start + s.len) as usize];
        key.clear();
        key.push_str(text(l));
        key.push(' ');
        key.push_str(text(r));
        let rank = *self.ranks.get(key.as_str())?;
        key.clear();
        key.push_str(text(l));
        key.push_str(text(r));
        Some((rank, lookup(key).unwrap_or(NO_ID)))
    }

    /// BPE over one byte-encoded word. The heap holds `rank << 32 | left`:
    /// an entry is acted on only if the pair now starting at `left` still
    /// has that rank. (A stale entry whose position now holds another pair
    /// of the same rank has the same key as that pair's own entry, so
    /// taking it early changes nothing: the order is llama.cpp's, lowest
    /// rank first, then leftmost.)
    fn merge_word(
        &self,
        word: &str,
        lookup: &dyn Fn(&str) -> Option<u32>,
        stop: &dyn Fn() -> bool,
        s: &mut Scratch,
        out: &mut Vec<u32>,
    ) -> Result<(), Interrupted> {
        s.syms.clear();
        let mut buf = [0u8; 4];
        for (i, (start, c)) in word.char_indices().enumerate() {
            let id = lookup(c.encode_utf8(&mut buf)).unwrap_or(NO_ID);
            s.syms.push(Sym { start: start as u32, len: c.len_utf8() as u32, prev: i as i32 - 1, next: i as i32 + 1, id });
        }
        if let Some(last) = s.syms.last_mut() {
            last.next = -1;
        }
        let key = |rank: u32, l: usize| Reverse(u64::from(rank) << 32 | l as u64);
        let mut kbuf = String::new();
        let mut heap_vec = std::mem::take(&mut s.heap).into_vec();
        heap_vec.clear();
        for i in 1..s.syms.len() {
            if let Some((rank, _)) = self.rank(&mut kbuf, word, &s.syms[i - 1], &s.syms[i], lookup) {
                heap_vec.push(key(rank, i - 1));
            }
        }
        let mut heap = BinaryHeap::from(heap_vec);
        let mut steps = 0usize;
        while let Some(Reverse(k)) = heap.pop() {
            steps += 1;
            if steps.is_multiple_of(CHECK_EVERY) && stop() {
                s.heap = heap;
                return Err(Interrupted);
            }
            let (rank, l) = ((k >> 32) as u32, (k & 0xFFFF_FFFF) as usize);
            let r = s.syms[l].next;
            if s.syms[l].len == 0 || r < 0 {
                continue;
            }
            let r = r as usize;
            let Some((now, id)) = self.rank(&mut kbuf, word, &s.syms[l], &s.syms[r], lookup) else {
                continue;
            };
            if now != rank {
                continue;
            }
            let rnext = s.syms[r].next;
            s.syms[l].len += s.syms[r].len;
            s.syms[l].next = rnext;
            s.syms[l].id = id;
            s.syms[r].len = 0;
            if rnext >= 0 {
                s.syms[rnext as usize].prev = l as i32;
            }
            let lprev = s.syms[l].prev;
            if lprev >= 0 {
                if let Some((rank, _)) = self.rank(&mut kbuf, word, &s.syms[lprev as usize], &s.syms[l], lookup) {
                    heap.push(key(rank, lprev as usize));
                }
            }
            if rnext >= 0 {
                if let Some((rank, _)) = self.rank(&mut kbuf, word, &s.syms[l], &s.syms[rnext as usize], lookup) {
                    heap.push(key(rank, l));
                }
            }
        }
        s.heap = heap;
        for sym in s.syms.iter().filter(|s| s.len > 0) {
            if sym.id != NO_ID {
                out.push(sym.id);
                continue;
            }
            // Not a token: llama.cpp falls back to single-byte tokens.
            let t = &word[sym.start as usize..(sym.start + sym.len) as usize];
            out.extend(t.bytes().filter_map(|b| self.byte_fallback[b as usize]));
        }
        Ok(())
    }
}

#[derive(Default)]
struct Scratch {
    syms: Vec<Sym>,
    heap: BinaryHeap<Reverse<u64>>,
}
