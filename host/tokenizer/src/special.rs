//! Splitting text on special-token strings before tokenization
//! (llama.cpp's `tokenizer_st_partition`).
//!
//! llama.cpp walks the special tokens from longest to shortest text (we
//! break ties by id) and, for each, cuts every still-raw fragment at its
//! leftmost non-overlapping occurrences. That is the same as visiting every
//! occurrence in (token rank, position) order and taking it unless it
//! overlaps one already taken. Done literally it costs text length × number
//! of tokens (or × token length); a guest-supplied vocabulary makes that
//! minutes. Here:
//!
//! * one Aho–Corasick pass over the text, right to left, with the automaton
//!   of the reversed token texts, finds the longest token starting at each
//!   position (the tokens starting there are that token and its prefixes
//!   that are tokens, a chain);
//! * each position waits in a heap under the rank of its current candidate.
//!   Popped in (rank, position) order, a candidate is taken if its bytes are
//!   free; if a taken token starts inside it at `b`, every candidate of that
//!   position longer than `b - p` is blocked for good, so the position
//!   moves down its chain (by skip pointers) to the longest that fits.
//!   Blockers of one position are disjoint and each at least twice as far as
//!   the next, so a position is re-queued at most log2(longest token) times.
//!
//! Total: O(text · log(text) + special-token bytes), whatever the tokens.
//!
//! A token with `lstrip` / `rstrip` (Phi-3's, `<mask>` of some BERTs) also
//! removes the ASCII whitespace (C `isspace`) before / after it, up to the
//! neighbouring cut, when it is taken: that whitespace is then taken too
//! (by nothing), exactly as llama.cpp trims the remaining fragment before
//! the next, shorter tokens look at it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::{Interrupted, CHECK_EVERY};

/// A piece of the input: raw text (a byte range) or a special token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fragment {
    Text(usize, usize),
    Token(u32),
}

const NONE: u32 = u32::MAX;
/// The rank of a removed (stripped) stretch of whitespace in `taken`.
const REMOVED: u32 = u32::MAX;

/// C's `isspace` in the C locale, on one byte.
fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

#[derive(Debug, Default)]
struct Node {
    /// Sorted by byte.
    children: Vec<(u8, u32)>,
    /// Longest proper suffix of this node's string that is a trie node.
    fail: u32,
    /// Rank of the longest token (reversed) that is a suffix of this node's
    /// string, this node included; `NONE` if there is none.
    out: u32,
}

impl Node {
    fn child(&self, b: u8) -> Option<u32> {
        self.children.binary_search_by_key(&b, |c| c.0).ok().map(|i| self.children[i].1)
    }
}

/// The matcher for one set of special tokens.
#[derive(Debug, Default)]
struct Matcher {
    /// Per rank (longest text first, ties by id): token id, text length,
    /// and whether it strips whitespace on its left / right.
    ids: Vec<u32>,
    lens: Vec<usize>,
    lstrip: Vec<bool>,
    rstrip: Vec<bool>,
    /// Per rank, then one virtual root at index `ids.len()` (length 0): the
    /// next shorter token that is a prefix of this one, and a skip pointer
    /// to a farther such ancestor (Myers' jump pointers: O(log) to any).
    parent: Vec<u32>,
    jump: Vec<u32>,
    /// Aho–Corasick automaton over the reversed token texts; node 0 is the root.
    nodes: Vec<Node>,
}

impl Matcher {
    /// `tokens`: non-empty and distinct texts.
    fn new(mut tokens: Vec<&SpecialToken>) -> Matcher {
        tokens.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.id.cmp(&b.id)));
        let mut nodes = vec![Node { children: Vec::new(), fail: 0, out: NONE }];
        let mut ends = Vec::with_capacity(tokens.len());
        for (rank, SpecialToken { text, .. }) in tokens.iter().enumerate() {
            let mut n = 0usize;
            for &b in text.as_bytes().iter().rev() {
                n = match nodes[n].children.binary_search_by_key(&b, |c| c.0) {
                    Ok(i) => nodes[n].children[i].1 as usize,
                    Err(i) => {
                        let new = nodes.len() as u32;
                        nodes.push(Node { children: Vec::new(), fail: 0, out: NONE });
                        nodes[n].children.insert(i, (b, new));
                        new as usize
                    }
                };
            }
            // Texts are distinct (the vocabulary rejects duplicates), but
            // keep the first rank anyway, as llama.cpp's first cut would.
            if nodes[n].out == NONE {
                nodes[n].out = rank as u32;
            }
            ends.push(n);
        }
        // Failure links and outputs, breadth first (a node's failure target
        // is shallower, so already done).
        let mut queue = std::collections::VecDeque::from([0u32]);
        while let Some(u) = queue.pop_front() {
            for ci in 0..nodes[u as usize].children.len() {
                let (b, v) = nodes[u as usize].children[ci];
                let fail = if u == 0 {
                    0
                } else {
                    let mut f = nodes[u as usize].fail;
                    loop {
                        if let Some(w) = nodes[f as usize].child(b) {
                            break w;
                        }
                        if f == 0 {
                            break 0;
                        }
                        f = nodes[f as usize].fail;
                    }
                };
                let inherited = nodes[fail as usize].out;
                let node = &mut nodes[v as usize];
                node.fail = fail;
                if node.out == NONE {
                    node.out = inherited;
                }
                queue.push_back(v);
            }
        }
        // A token's longest proper prefix that is a token is the output of
        // its end node's failure target (reversed: longest proper suffix).
        let root = tokens.len() as u32;
        let mut parent: Vec<u32> = ends.iter().map(|&n| nodes[nodes[n].fail as usize].out).collect();
        parent.iter_mut().for_each(|p| *p = if *p == NONE { root } else { *p });
        parent.push(root);
        // Parents have larger ranks (shorter texts): fill from the back.
        let mut depth = vec![0u32; tokens.len() + 1];
        let mut jump = vec![root; tokens.len() + 1];
        for r in (0..tokens.len()).rev() {
            let p = parent[r] as usize;
            depth[r] = depth[p] + 1;
            let j = jump[p] as usize;
            let jj = jump[j] as usize;
            jump[r] = if p != root as usize && depth[p] - depth[j] == depth[j] - depth[jj] { jj as u32 } else { p as u32 };
        }
        let (ids, mut lens): (Vec<u32>, Vec<usize>) = tokens.iter().map(|t| (t.id, t.text.len())).unzip();
        lens.push(0);
        let lstrip = tokens.iter().map(|t| t.lstrip).collect();
        let rstrip = tokens.iter().map(|t| t.rstrip).collect();
        Matcher { ids, lens, lstrip, rstrip, parent, jump, nodes }
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The longest of rank `r` and its prefix-token ancestors no longer than
    /// `max` bytes; `None` if there is none.
    fn fit(&self, mut r: usize, max: usize) -> Option<usize> {
        // The root has length 0, so the walk ends there at the latest.
        while self.lens[r] > max {
            let j = self.jump[r] as usize;
            r = if self.lens[j] > max { j } else { self.parent[r] as usize };
        }
        (r != self.ids.len()).then_some(r)
    }

    /// Splits `text`; see the module comment.
    fn partition(&self, text: &[u8], stop: &dyn Fn() -> bool) -> Result<Vec<Fragment>, Interrupted> {
        // 1. The longest token starting at each position, right to left.
        let mut queue = Vec::new();
        let mut state = 0usize;
        for (i, &b) in text.iter().enumerate().rev() {
            if i % CHECK_EVERY == 0 && stop() {
                return Err(Interrupted);
            }
            state = loop {
                if let Some(v) = self.nodes[state].child(b) {
                    break v as usize;
                }
                if state == 0 {
                    break 0;
                }
                state = self.nodes[state].fail as usize;
            };
            let r = self.nodes[state].out;
            if r != NONE {
                queue.push(Reverse((r, i)));
            }
        }
        // 2. Candidates in (rank, position) order; taken: start → (end, rank).
        let mut heap = BinaryHeap::from(queue);
        let mut taken: BTreeMap<usize, (usize, u32)> = BTreeMap::new();
        let mut steps = 0usize;
        while let Some(Reverse((r, p))) = heap.pop() {
            steps += 1;
            if steps.is_multiple_of(CHECK_EVERY) && stop() {
                return Err(Interrupted);
            }
            if taken.range(..=p).next_back().is_some_and(|(_, &(end, _))| end > p) {
                continue; // p itself is taken: so is every candidate here
            }
            let end = p + self.lens[r as usize];
            match taken.range(p + 1..end).next() {
                None => {
                    taken.insert(p, (end, r));
                    let r = r as usize;
                    if self.rstrip[r] {
                        let limit = taken.range(end..).next().map_or(text.len(), |(&s, _)| s);
                        let mut q = end;
                        while q < limit && c_isspace(text[q]) {
                            q += 1;
                        }
                        if q > end {
                            taken.insert(end, (q, REMOVED));
                        }
                    }
                    if self.lstrip[r] {
                        let base = taken.range(..p).next_back().map_or(0, |(_, &(e, _))| e);
                        let mut s = p;
                        while s > base && c_isspace(text[s - 1]) {
                            s -= 1;
                        }
                        if s < p {
                            taken.insert(s, (p, REMOVED));
                        }
                    }
                }
                Some((&b, _)) => {
                    if let Some(next) = self.fit(self.parent[r as usize] as usize, b - p) {
                        heap.push(Reverse((next as u32, p)));
                    }
                }
            }
        }
        // 3. Taken tokens and the text between them.
        let mut frags = Vec::with_capacity(2 * taken.len() + 1);
        let mut at = 0;
        for (start, (end, r)) in taken {
            if start > at {
                frags.push(Fragment::Text(at, start));
            }
            if r != REMOVED {
                frags.push(Fragment::Token(self.ids[r as usize]));
            }
            at = end;
        }
        if at < text.len() {
            frags.push(Fragment::Text(at, text.len()));
        }
        Ok(frags)
    }
}

/// One special token (control, user-defined or unknown).
#[derive(Clone, Debug)]
pub(crate) struct SpecialToken {
    pub id: u32,
    pub text: Box<str>,
    /// Split out even when special parsing is off (user-defined tokens).
    pub always: bool,
    /// Removes the whitespace before / after it (`LLAMA_TOKEN_ATTR_LSTRIP` / `RSTRIP`).
    pub lstrip: bool,
    pub rstrip: bool,
}

/// The special tokens of a vocabulary, ready to split text on.
#[derive(Debug)]
pub(crate) struct Specials {
    /// Every special token (used when special parsing is on).
    all: Matcher,
    /// User-defined tokens only (split out even when it is off).
    always: Matcher,
}

impl Specials {
    pub(crate) fn new(tokens: Vec<SpecialToken>) -> Specials {
        let tokens: Vec<&SpecialToken> = tokens.iter().filter(|t| !t.text.is_empty()).collect();
        Specials {
            all: Matcher::new(tokens.clone()),
            always: Matcher::new(tokens.iter().copied().filter(|t| t.always).collect()),
        }
    }

    /// Splits `text` into raw fragments and special tokens, calling `stop`
    /// every [`CHECK_EVERY`] steps and giving up if it returns `true`.
    pub(crate) fn partition(
        &self,
        text: &str,
        parse_special: bool,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<Fragment>, Interrupted> {
        let m = if parse_special { &self.all } else { &self.always };
        if text.is_empty() {
            return Ok(Vec::new());
        }
        if m.is_empty() {
            return Ok(vec![Fragment::Text(0, text.len())]);
        }
        // Token texts are UTF-8, so every match starts and ends on a char
        // boundary and the fragments slice `text` safely.
        m.partition(text.as_bytes(), stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Fragment::*;

    fn st(id: u32, text: &str, always: bool) -> SpecialToken {
        SpecialToken { id, text: text.into(), always, lstrip: false, rstrip: false }
    }

    /// llama.cpp's algorithm, literally: each token in rank order cuts the
    /// raw fragments at its leftmost non-overlapping occurrences, trimming
    /// the neighbouring remainders' whitespace if it strips.
    fn reference(tokens: &[SpecialToken], text: &str, parse_special: bool) -> Vec<Fragment> {
        let mut order: Vec<_> = tokens.iter().filter(|t| !t.text.is_empty() && (parse_special || t.always)).collect();
        order.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.id.cmp(&b.id)));
        let bytes = text.as_bytes();
        let mut frags = if text.is_empty() { vec![] } else { vec![Text(0, text.len())] };
        for t in order {
            let tok = &*t.text;
            let mut next = Vec::new();
            for &f in &frags {
                let Text(mut a, b) = f else {
                    next.push(f);
                    continue;
                };
                while let Some(m) = text[a..b].find(tok) {
                    let mut left_end = a + m;
                    if t.lstrip {
                        while left_end > a && c_isspace(bytes[left_end - 1]) {
                            left_end -= 1;
                        }
                    }
                    if left_end > a {
                        next.push(Text(a, left_end));
                    }
                    next.push(Token(t.id));
                    a += m + tok.len();
                    if t.rstrip {
                        while a < b && c_isspace(bytes[a]) {
                            a += 1;
                        }
                    }
                }
                if a < b {
                    next.push(Text(a, b));
                }
            }
            frags = next;
        }
        frags
    }

    fn never() -> bool {
        false
    }

    #[test]
    fn longest_first_and_user_defined_always() {
        let s = Specials::new(vec![st(1, "<a>", false), st(2, "<a><b>", false), st(3, "\n\n", true)]);
        let t = "x<a><b>y<a>\n\n";
        assert_eq!(s.partition(t, true, &never).unwrap(), vec![Text(0, 1), Token(2), Text(7, 8), Token(1), Token(3)]);
        assert_eq!(s.partition(t, false, &never).unwrap(), vec![Text(0, 11), Token(3)]);
        assert_eq!(s.partition("", true, &never).unwrap(), vec![]);
    }

    /// Rank order, not leftmost-longest: `bcd` (longer) wins over `ab` at 0.
    #[test]
    fn priority_beats_position() {
        let toks = vec![st(1, "ab", false), st(2, "bcd", false), st(3, "aa", false)];
        let s = Specials::new(toks.clone());
        for t in ["abcd", "aaa", "aabcdaab", "xaaaa"] {
            assert_eq!(s.partition(t, true, &never).unwrap(), reference(&toks, t, true), "{t:?}");
        }
        assert_eq!(s.partition("abcd", true, &never).unwrap(), vec![Text(0, 1), Token(2)]);
    }

    #[test]
    fn strips_whitespace() {
        let toks = vec![
            SpecialToken { rstrip: true, ..st(1, "<|user|>", false) },
            SpecialToken { lstrip: true, ..st(2, "<mask>", true) },
        ];
        let s = Specials::new(toks);
        assert_eq!(s.partition("<|user|>\n hi", true, &never).unwrap(), vec![Token(1), Text(10, 12)]);
        assert_eq!(s.partition("a  <mask> b", false, &never).unwrap(), vec![Text(0, 1), Token(2), Text(9, 11)]);
        assert_eq!(s.partition(" <|user|> ", true, &never).unwrap(), vec![Text(0, 1), Token(1)]);
    }

    #[test]
    fn stop_interrupts() {
        let s = Specials::new(vec![st(1, "a", false)]);
        let text = "a".repeat(4 * CHECK_EVERY);
        assert_eq!(s.partition(&text, true, &|| true), Err(Interrupted));
    }

    /// Texts and token sets over a tiny alphabet, so tokens overlap, nest
    /// and repeat themselves; one multi-byte char keeps UTF-8 honest.
    fn token_set(alphabet: &'static str) -> impl Strategy<Value = Vec<SpecialToken>> {
        proptest::collection::vec((alphabet, any::<bool>(), 0u8..4), 0..12).prop_map(|v| {
            let mut seen = std::collections::HashSet::new();
            v.into_iter()
                .filter(|(t, _, _)| seen.insert(t.clone()))
                .enumerate()
                // Distinct ids (as in a vocabulary) in an order unlike the texts'.
                .map(|(i, (t, always, strip))| SpecialToken {
                    id: i as u32 * 7 % 13,
                    text: t.into_boxed_str(),
                    always,
                    lstrip: strip & 1 != 0,
                    rstrip: strip & 2 != 0,
                })
                .collect::<Vec<_>>()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn same_as_llama_cpp(tokens in token_set("[abé]{1,6}"), text in "[abéx]{0,40}", parse_special in any::<bool>()) {
            let tokens: Vec<_> = tokens.into_iter().map(|t| SpecialToken { lstrip: false, rstrip: false, ..t }).collect();
            let s = Specials::new(tokens.clone());
            prop_assert_eq!(s.partition(&text, parse_special, &never).unwrap(), reference(&tokens, &text, parse_special));
        }

        /// Stripping tokens, and tokens that begin or end with whitespace.
        #[test]
        fn same_as_llama_cpp_with_strips(tokens in token_set("[ab \n]{1,4}"), text in "[ab \nx]{0,40}", parse_special in any::<bool>()) {
            let s = Specials::new(tokens.clone());
            prop_assert_eq!(s.partition(&text, parse_special, &never).unwrap(), reference(&tokens, &text, parse_special));
        }

        /// Self-similar tokens (runs of one letter, with a tail) on long runs.
        #[test]
        fn same_on_runs(lens in proptest::collection::btree_set(1usize..24, 1..8), tail in any::<bool>(), n in 0usize..200) {
            let tokens: Vec<SpecialToken> = lens
                .iter()
                .enumerate()
                .map(|(i, &l)| st(i as u32, &format!("{}{}", "a".repeat(l), if tail && i % 2 == 1 { "b" } else { "" }), true))
                .collect();
            let text = "a".repeat(n) + "b" + &"a".repeat(n / 3);
            let s = Specials::new(tokens.clone());
            prop_assert_eq!(s.partition(&text, true, &never).unwrap(), reference(&tokens, &text, true));
        }
    }
}
