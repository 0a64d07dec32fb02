//! The pushdown matcher: which grammar positions the text so far can be in.
//!
//! A *stack* is a path of positions through nested rules; its top is always
//! a character class or token element, the next thing the text must match.
//! Stacks are hash-consed into an arena (a node is a position plus the id of
//! the rest of the stack), so a stack is one `u32`, a matcher state is a
//! short sorted list of them, and "advance past the top of stack `s`" is
//! computed once per node and memoized: stepping a state over a character is
//! a few table lookups.

use std::collections::HashMap;
use std::sync::Arc;

use crate::parse::{Elem, Grammar};
use crate::trie::TokenTrie;
use crate::TokenMask;

/// The empty stack: the grammar has matched completely.
pub(crate) const DONE: u32 = u32::MAX;
/// Past this many arena nodes, the arena is rebuilt from the live stacks.
const GC_NODES: usize = 1 << 20;
/// Mask cache entries kept per matcher.
const MASK_CACHE: usize = 64;
/// Most live stacks after a step. Real grammars keep a handful; a
/// pathologically ambiguous one could keep thousands and make every step
/// (and every trie walk) slow, so past this the matcher gives up.
const MAX_STACKS: usize = 1024;
/// Most stack steps one trie walk may take (about a second of work).
const WALK_BUDGET: u64 = 1 << 27;

/// A UTF-8 character being assembled from token bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Partial {
    /// Bits of the code point so far.
    value: u32,
    /// Continuation bytes still expected (0: none pending).
    remaining: u8,
    /// Smallest code point the character's length may encode (so overlong
    /// forms are rejected).
    min: u32,
}

/// Hash-consed stacks and memoized transitions.
#[derive(Debug, Default)]
struct Arena {
    /// (position of the top element, id of the rest of the stack).
    nodes: Vec<(u32, u32)>,
    ids: HashMap<(u32, u32), u32>,
    /// Per node: range in `pool` of the stacks after its top is matched, or
    /// `u32::MAX` if not computed yet.
    after: Vec<(u32, u32)>,
    pool: Vec<u32>,
    /// Scratch for expansions.
    work: Vec<u32>,
    seen: HashMap<u32, ()>,
}

impl Arena {
    fn intern(&mut self, pos: u32, rest: u32) -> u32 {
        if let Some(&id) = self.ids.get(&(pos, rest)) {
            return id;
        }
        let id = self.nodes.len() as u32;
        self.nodes.push((pos, rest));
        self.after.push((u32::MAX, 0));
        self.ids.insert((pos, rest), id);
        id
    }

    /// The stack that remains once the element at `pos` is matched, with
    /// `rest` below it.
    fn next(&mut self, g: &Grammar, pos: u32, rest: u32) -> u32 {
        if g.elems[pos as usize + 1].ends_sequence() {
            rest
        } else {
            self.intern(pos + 1, rest)
        }
    }

    /// Expands `stack` until every resulting stack has a class or token on
    /// top (or is [`DONE`]), appending them to `out` (unsorted, may repeat).
    /// Iterative: a grammar's nesting must not be able to overflow the
    /// native stack.
    fn expand(&mut self, g: &Grammar, stack: u32, out: &mut Vec<u32>) {
        let mut work = std::mem::take(&mut self.work);
        self.seen.clear();
        work.clear();
        work.push(stack);
        while let Some(s) = work.pop() {
            if s == DONE {
                out.push(DONE);
                continue;
            }
            if self.seen.insert(s, ()).is_some() {
                continue;
            }
            let (pos, rest) = self.nodes[s as usize];
            match g.elems[pos as usize] {
                Elem::Rule(r) => {
                    let below = self.next(g, pos, rest);
                    for alt in g.alternatives(r) {
                        if g.elems[alt as usize].ends_sequence() {
                            work.push(below);
                        } else {
                            let id = self.intern(alt, below);
                            work.push(id);
                        }
                    }
                }
                Elem::Class(_) | Elem::Token(_) | Elem::NotToken(_) => out.push(s),
                Elem::End | Elem::Alt => unreachable!("end-of-sequence positions are never pushed"),
            }
        }
        self.work = work;
    }

    /// The stacks after the top of `s` (a class or token) is matched.
    fn after(&mut self, g: &Grammar, s: u32) -> (u32, u32) {
        let memo = self.after[s as usize];
        if memo.0 != u32::MAX {
            return memo;
        }
        let (pos, rest) = self.nodes[s as usize];
        let below = self.next(g, pos, rest);
        let mut out = Vec::new();
        self.expand(g, below, &mut out);
        out.sort_unstable();
        out.dedup();
        let range = (self.pool.len() as u32, out.len() as u32);
        self.pool.extend_from_slice(&out);
        self.after[s as usize] = range;
        range
    }
}

/// Where a grammar stands after some text: the live stacks and any pending
/// partial UTF-8 character. Cheap to step; see [`Matcher::fill_mask`] for
/// the allowed next tokens.
#[derive(Debug)]
pub struct Matcher {
    g: Arc<Grammar>,
    arena: Arena,
    /// Live stacks, sorted and deduplicated; empty means the text so far is
    /// not a prefix of anything in the language.
    stacks: Vec<u32>,
    partial: Partial,
    masks: HashMap<(Vec<u32>, Partial), Arc<TokenMask>>,
    /// Scratch for stepping.
    scratch: Vec<u32>,
    /// Set when the grammar needed more stacks or walk steps than allowed.
    overloaded: bool,
}

impl Matcher {
    /// A matcher at the start of the grammar's root rule.
    pub fn new(g: Arc<Grammar>) -> Matcher {
        let mut m = Matcher {
            g,
            arena: Arena::default(),
            stacks: Vec::new(),
            partial: Partial::default(),
            masks: HashMap::new(),
            scratch: Vec::new(),
            overloaded: false,
        };
        m.reset();
        m
    }

    /// Back to the start of the grammar.
    pub fn reset(&mut self) {
        self.arena = Arena::default();
        self.masks.clear();
        self.partial = Partial::default();
        let g = Arc::clone(&self.g);
        // A stack whose top is the root rule reference is not expressible
        // as an element, so expand the root's alternatives directly.
        let mut out = Vec::new();
        for alt in g.alternatives(g.root) {
            if g.elems[alt as usize].ends_sequence() {
                out.push(DONE);
            } else {
                let id = self.arena.intern(alt, DONE);
                self.arena.expand(&g, id, &mut out);
            }
        }
        out.sort_unstable();
        out.dedup();
        self.stacks = out;
    }

    /// The grammar being matched.
    pub fn grammar(&self) -> &Arc<Grammar> {
        &self.g
    }

    /// Whether the text so far is a prefix of some text in the language.
    pub fn is_alive(&self) -> bool {
        !self.stacks.is_empty()
    }

    /// Whether the grammar proved too ambiguous to follow (more than 1024
    /// live stacks) or a mask too costly to compute; the matcher is then
    /// dead, or the last mask incomplete.
    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }

    /// Whether the text so far is a complete text of the language.
    pub fn can_end(&self) -> bool {
        self.partial.remaining == 0 && self.stacks.contains(&DONE)
    }

    /// Whether the text so far can be followed by more text.
    pub fn can_continue(&self) -> bool {
        self.stacks.iter().any(|&s| s != DONE)
    }

    /// Steps over `bytes` (which may end inside a UTF-8 character).
    /// Returns false, leaving the matcher dead, if they cannot continue the
    /// text.
    pub fn accept_bytes(&mut self, bytes: &[u8]) -> bool {
        let g = Arc::clone(&self.g);
        let mut stacks = std::mem::take(&mut self.stacks);
        let mut partial = self.partial;
        for &b in bytes {
            match step_byte(&g, &mut self.arena, &stacks, partial, b, &mut self.scratch) {
                Some(Step::Partial(p)) => partial = p,
                Some(Step::Char) if self.scratch.len() > MAX_STACKS => {
                    self.overloaded = true;
                    stacks.clear();
                    break;
                }
                Some(Step::Char) => {
                    partial = Partial::default();
                    std::mem::swap(&mut stacks, &mut self.scratch);
                }
                None => {
                    stacks.clear();
                    break;
                }
            }
        }
        self.stacks = stacks;
        self.partial = partial;
        self.maybe_gc();
        self.is_alive()
    }

    /// Steps over one sampled token: whole-token elements match its id,
    /// character elements match its bytes. Returns false (the matcher is then
    /// dead) if the grammar does not allow it.
    pub fn accept_token(&mut self, id: u32, bytes: &[u8]) -> bool {
        if !self.g.has_tokens {
            return !bytes.is_empty() && self.accept_bytes(bytes);
        }
        let g = Arc::clone(&self.g);
        let mut by_token = Vec::new();
        if self.partial.remaining == 0 {
            for &s in &self.stacks {
                if s != DONE && token_matches(&g, &self.arena, s, id) {
                    let (start, len) = self.arena.after(&g, s);
                    by_token.extend_from_slice(
                        &self.arena.pool[start as usize..(start + len) as usize],
                    );
                }
            }
        }
        let saved = (self.stacks.clone(), self.partial);
        let by_bytes = !bytes.is_empty() && self.accept_bytes(bytes);
        if !by_bytes {
            self.stacks.clear();
            self.partial = Partial::default();
        } else if !by_token.is_empty() && self.partial != saved.1 {
            // Both paths matched but disagree on a pending partial
            // character: keep the whole-token reading, which ends cleanly.
            self.stacks.clear();
            self.partial = Partial::default();
        }
        self.stacks.extend(by_token);
        self.stacks.sort_unstable();
        self.stacks.dedup();
        self.is_alive()
    }

    /// Whether the grammar allows token `id` with `bytes` next, without
    /// changing the matcher.
    pub fn allows_token(&mut self, id: u32, bytes: &[u8]) -> bool {
        let (stacks, partial) = (self.stacks.clone(), self.partial);
        let ok = self.accept_token(id, bytes);
        self.stacks = stacks;
        self.partial = partial;
        ok
    }

    /// Steps over token `id` if the grammar allows it; otherwise returns
    /// false and leaves the matcher as it was.
    pub fn try_accept_token(&mut self, id: u32, bytes: &[u8]) -> bool {
        let (stacks, partial) = (self.stacks.clone(), self.partial);
        if self.accept_token(id, bytes) {
            return true;
        }
        self.stacks = stacks;
        self.partial = partial;
        false
    }

    /// The tokens of `trie` the grammar allows next; `eog` are the
    /// end-of-generation tokens, allowed exactly when the text can end here.
    /// Results are cached per matcher state, so a grammar that revisits a
    /// state (the inside of a JSON string) pays for its walk once.
    pub fn fill_mask(&mut self, trie: &TokenTrie, eog: &[u32]) -> Arc<TokenMask> {
        let key = (self.stacks.clone(), self.partial);
        if let Some(m) = self.masks.get(&key) {
            return Arc::clone(m);
        }
        let mut mask = TokenMask::none(trie.vocab_size());
        if self.can_end() {
            eog.iter().for_each(|&t| mask.allow(t));
        }
        let g = Arc::clone(&self.g);
        self.walk_trie(&g, trie, &mut mask);
        if g.has_tokens && self.partial.remaining == 0 {
            // Union over stacks: `Token(t)` allows t, `NotToken(t)` every
            // token but t; the text walk's tokens stay allowed either way.
            let mut by_id = TokenMask::none(trie.vocab_size());
            for &s in &self.stacks {
                if s == DONE {
                    continue;
                }
                match g.elems[self.arena.nodes[s as usize].0 as usize] {
                    Elem::Token(t) => by_id.allow(t),
                    Elem::NotToken(t) => {
                        let mut all_but = TokenMask::none(trie.vocab_size());
                        all_but.allow_all();
                        all_but.forbid(t);
                        by_id.union_with(&all_but);
                    }
                    _ => {}
                }
            }
            mask.union_with(&by_id);
        }
        // An end-of-generation token ends the text, whatever its bytes:
        // only where the grammar's text may end.
        if !self.can_end() {
            eog.iter().for_each(|&t| mask.forbid(t));
        }
        let mask = Arc::new(mask);
        if self.overloaded {
            return mask;
        }
        if self.masks.len() >= MASK_CACHE {
            self.masks.clear();
        }
        self.masks.insert(key, Arc::clone(&mask));
        mask
    }

    /// Depth-first over the trie, stepping the state along each edge and
    /// pruning subtrees whose prefix the grammar rejects.
    fn walk_trie(&mut self, g: &Grammar, trie: &TokenTrie, mask: &mut TokenMask) {
        // States live in `pool`, one range per frame, popped with the frame.
        let mut pool: Vec<u32> = self.stacks.clone();
        struct Frame {
            child: u32,
            start: usize,
            len: usize,
            partial: Partial,
        }
        let mut frames = vec![Frame {
            child: trie.first_child(0),
            start: 0,
            len: pool.len(),
            partial: self.partial,
        }];
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut budget = WALK_BUDGET;
        while let Some(f) = frames.last_mut() {
            let node = f.child;
            if node == TokenTrie::NONE {
                let start = f.start;
                frames.pop();
                pool.truncate(start);
                continue;
            }
            f.child = trie.next_sibling(node);
            let (start, len, partial) = (f.start, f.len, f.partial);
            budget = budget.saturating_sub(len as u64 + 1);
            if budget == 0 {
                self.overloaded = true;
                break;
            }
            let step = step_byte(
                g,
                &mut self.arena,
                &pool[start..start + len],
                partial,
                trie.byte(node),
                &mut scratch,
            );
            let Some(step) = step else { continue };
            for &t in trie.tokens(node) {
                mask.allow(t);
            }
            let child = trie.first_child(node);
            if child == TokenTrie::NONE {
                continue;
            }
            let s = pool.len();
            let partial = match step {
                Step::Partial(p) => {
                    pool.extend_from_within(start..start + len);
                    p
                }
                Step::Char if scratch.len() > MAX_STACKS => {
                    self.overloaded = true;
                    continue;
                }
                Step::Char => {
                    pool.extend_from_slice(&scratch);
                    Partial::default()
                }
            };
            frames.push(Frame {
                child,
                start: s,
                len: pool.len() - s,
                partial,
            });
        }
        self.scratch = scratch;
    }

    /// Rebuilds the arena from the live stacks once it has grown large
    /// (long generations through deeply nested rules).
    fn maybe_gc(&mut self) {
        if self.arena.nodes.len() < GC_NODES {
            return;
        }
        let mut fresh = Arena::default();
        let mut map: HashMap<u32, u32> = HashMap::new();
        let old = std::mem::take(&mut self.arena);
        let stacks: Vec<u32> = self
            .stacks
            .iter()
            .map(|&s| copy_stack(&old, &mut fresh, &mut map, s))
            .collect();
        self.arena = fresh;
        self.stacks = stacks;
        self.stacks.sort_unstable();
        self.masks.clear();
    }
}

/// Copies stack `s` of `old` into `new`, bottom first.
fn copy_stack(old: &Arena, new: &mut Arena, map: &mut HashMap<u32, u32>, s: u32) -> u32 {
    let mut chain = Vec::new();
    let mut cur = s;
    while cur != DONE && !map.contains_key(&cur) {
        chain.push(cur);
        cur = old.nodes[cur as usize].1;
    }
    let mut below = if cur == DONE { DONE } else { map[&cur] };
    for &n in chain.iter().rev() {
        below = new.intern(old.nodes[n as usize].0, below);
        map.insert(n, below);
    }
    below
}

fn token_matches(g: &Grammar, arena: &Arena, s: u32, id: u32) -> bool {
    match g.elems[arena.nodes[s as usize].0 as usize] {
        Elem::Token(t) => t == id,
        Elem::NotToken(t) => t != id,
        _ => false,
    }
}

enum Step {
    /// A character was completed; the new stacks are in the scratch buffer.
    Char,
    /// A multi-byte character is still incomplete; stacks are unchanged.
    Partial(Partial),
}

/// Steps `stacks` over one byte. `None` if the byte cannot continue them.
fn step_byte(
    g: &Grammar,
    arena: &mut Arena,
    stacks: &[u32],
    partial: Partial,
    b: u8,
    out: &mut Vec<u32>,
) -> Option<Step> {
    let (value, remaining, min) = if partial.remaining == 0 {
        match b {
            0x00..=0x7F => (b as u32, 0, 0),
            0xC2..=0xDF => ((b & 0x1F) as u32, 1, 0x80),
            0xE0..=0xEF => ((b & 0x0F) as u32, 2, 0x800),
            0xF0..=0xF4 => ((b & 0x07) as u32, 3, 0x10000),
            _ => return None,
        }
    } else {
        if b & 0xC0 != 0x80 {
            return None;
        }
        (
            partial.value << 6 | (b & 0x3F) as u32,
            partial.remaining - 1,
            partial.min,
        )
    };
    let shift = 6 * remaining as u32;
    let (lo, hi) = (
        (value << shift).max(min),
        (value << shift) | ((1 << shift) - 1),
    );
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if hi < lo || lo > 0x10FFFF || (0xD800..=0xDFFF).contains(&lo) && hi <= 0xDFFF {
        return None;
    }
    if remaining > 0 {
        // Some completion of the character must be matchable.
        let feasible = stacks
            .iter()
            .any(|&s| s != DONE && class_overlaps(g, arena, s, lo, hi.min(0x10FFFF)));
        return feasible.then_some(Step::Partial(Partial {
            value,
            remaining,
            min,
        }));
    }
    out.clear();
    for &s in stacks {
        if s == DONE {
            continue;
        }
        let Elem::Class(c) = g.elems[arena.nodes[s as usize].0 as usize] else {
            continue;
        };
        if class_contains(g.class(c), value) {
            let (start, len) = arena.after(g, s);
            out.extend_from_slice(&arena.pool[start as usize..(start + len) as usize]);
        }
    }
    if out.is_empty() {
        return None;
    }
    out.sort_unstable();
    out.dedup();
    Some(Step::Char)
}

fn class_contains(ranges: &[(u32, u32)], c: u32) -> bool {
    match ranges.binary_search_by(|&(lo, _)| lo.cmp(&c)) {
        Ok(_) => true,
        Err(0) => false,
        Err(i) => ranges[i - 1].1 >= c,
    }
}

fn class_overlaps(g: &Grammar, arena: &Arena, s: u32, lo: u32, hi: u32) -> bool {
    let Elem::Class(c) = g.elems[arena.nodes[s as usize].0 as usize] else {
        return false;
    };
    g.class(c).iter().any(|&(a, b)| a <= hi && lo <= b)
}
