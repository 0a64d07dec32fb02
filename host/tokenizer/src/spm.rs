//! SentencePiece-style BPE (llama.cpp's `llm_tokenizer_spm_session`):
//! start from single UTF-8 chars and repeatedly merge the adjacent pair whose
//! concatenation is the vocabulary token with the highest score (ties:
//! leftmost). Symbols that end up as no token fall back to `<0xNN>` byte tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::{Interrupted, CHECK_EVERY};

#[derive(Clone, Copy)]
struct Sym {
    start: u32,
    len: u32,
    prev: i32,
    next: i32,
}

struct Bigram {
    score: f32,
    left: u32,
    right: u32,
    size: u32,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Max-heap order: higher score first, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then_with(|| other.left.cmp(&self.left))
    }
}

/// Tokenizes `text` (spaces already escaped to `▁`).
/// `lookup` maps a string to its token, `score` gives a token's score and
/// `byte_token` the fallback token of a byte; `stop` is asked every
/// [`CHECK_EVERY`] merge steps.
pub(crate) fn tokenize(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<u32>,
    score: &dyn Fn(u32) -> f32,
    byte_token: &dyn Fn(u8) -> Option<u32>,
    stop: &dyn Fn() -> bool,
    out: &mut Vec<u32>,
) -> Result<(), Interrupted> {
    let mut syms: Vec<Sym> = text
        .char_indices()
        .enumerate()
        .map(|(i, (start, c))| Sym { start: start as u32, len: c.len_utf8() as u32, prev: i as i32 - 1, next: i as i32 + 1 })
        .collect();
    if let Some(last) = syms.last_mut() {
        last.next = -1;
    }
    let span = |syms: &[Sym], l: usize, r: usize| &text[syms[l].start as usize..(syms[r].start + syms[r].len) as usize];
    let mut heap = BinaryHeap::new();
    let try_add = |syms: &[Sym], heap: &mut BinaryHeap<Bigram>, l: i32, r: i32| {
        if l < 0 || r < 0 {
            return;
        }
        let t = span(syms, l as usize, r as usize);
        if let Some(id) = lookup(t) {
            heap.push(Bigram { score: score(id), left: l as u32, right: r as u32, size: t.len() as u32 });
        }
    };
    for i in 1..syms.len() as i32 {
        try_add(&syms, &mut heap, i - 1, i);
    }
    let mut steps = 0usize;
    while let Some(b) = heap.pop() {
        steps += 1;
        if steps.is_multiple_of(CHECK_EVERY) && stop() {
            return Err(Interrupted);
        }
        let (l, r) = (b.left as usize, b.right as usize);
        let (ll, rl) = (syms[l].len, syms[r].len);
        if ll == 0 || rl == 0 || ll + rl != b.size {
            continue;
        }
        let rnext = syms[r].next;
        syms[l].len += rl;
        syms[l].next = rnext;
        syms[r].len = 0;
        if rnext >= 0 {
            syms[rnext as usize].prev = l as i32;
        }
        let lprev = syms[l].prev;
        try_add(&syms, &mut heap, lprev, l as i32);
        try_add(&syms, &mut heap, l as i32, rnext);
    }
    let mut i = if syms.is_empty() { -1 } else { 0 };
    while i >= 0 {
        let sym = syms[i as usize];
        let t = &text[sym.start as usize..(sym.start + sym.len) as usize];
        match lookup(t) {
            Some(id) => out.push(id),
            None => out.extend(t.bytes().filter_map(byte_token)),
        }
        i = sym.next;
    }
    Ok(())
}
