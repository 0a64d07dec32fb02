//! Splitting text on special-token strings before tokenization
//! (llama.cpp's `tokenizer_st_partition`).
//!
//! llama.cpp walks the special tokens from longest to shortest text and, for
//! each, cuts every still-raw fragment at its leftmost non-overlapping
//! occurrences. We do the same, after a byte-trie pass that finds which
//! special tokens occur in the text at all, so that a vocabulary with
//! thousands of control tokens costs one linear scan instead of thousands.

use crate::fxhash::FxSet;

/// A piece of the input: raw text (a byte range) or a special token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fragment {
    Text(usize, usize),
    Token(u32),
}

#[derive(Debug, Default)]
struct Node {
    /// Sorted by byte.
    children: Vec<(u8, u32)>,
    token: Option<u32>,
}

/// The special tokens in partition order, with a trie over their texts.
#[derive(Debug)]
pub(crate) struct Specials {
    /// (id, text), longest text first (ties by id).
    order: Vec<(u32, Box<str>, bool)>,
    nodes: Vec<Node>,
}

impl Specials {
    /// `tokens`: (id, text, always) — `always` marks user-defined tokens,
    /// which are split out even when special parsing is off.
    pub(crate) fn new(mut tokens: Vec<(u32, Box<str>, bool)>) -> Specials {
        tokens.retain(|t| !t.1.is_empty());
        tokens.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        let mut nodes = vec![Node::default()];
        for (id, text, _) in &tokens {
            let mut n = 0usize;
            for &b in text.as_bytes() {
                n = match nodes[n].children.binary_search_by_key(&b, |c| c.0) {
                    Ok(i) => nodes[n].children[i].1 as usize,
                    Err(i) => {
                        let new = nodes.len() as u32;
                        nodes.push(Node::default());
                        nodes[n].children.insert(i, (b, new));
                        new as usize
                    }
                };
            }
            nodes[n].token.get_or_insert(*id);
        }
        Specials { order: tokens, nodes }
    }

    /// Ids of the special tokens whose text occurs somewhere in `text`.
    fn occurring(&self, text: &[u8]) -> FxSet<u32> {
        let mut found = FxSet::default();
        for start in 0..text.len() {
            let mut n = 0usize;
            for &b in &text[start..] {
                match self.nodes[n].children.binary_search_by_key(&b, |c| c.0) {
                    Ok(i) => n = self.nodes[n].children[i].1 as usize,
                    Err(_) => break,
                }
                if let Some(id) = self.nodes[n].token {
                    found.insert(id);
                }
            }
        }
        found
    }

    /// Splits `text` into raw fragments and special tokens.
    pub(crate) fn partition(&self, text: &str, parse_special: bool) -> Vec<Fragment> {
        let mut frags = vec![Fragment::Text(0, text.len())];
        if text.is_empty() {
            return Vec::new();
        }
        let present = self.occurring(text.as_bytes());
        if present.is_empty() {
            return frags;
        }
        let mut next = Vec::new();
        for (id, tok, always) in &self.order {
            if !(parse_special || *always) || !present.contains(id) {
                continue;
            }
            next.clear();
            for &f in &frags {
                let Fragment::Text(mut a, b) = f else {
                    next.push(f);
                    continue;
                };
                while let Some(m) = text[a..b].find(&**tok) {
                    if m > 0 {
                        next.push(Fragment::Text(a, a + m));
                    }
                    next.push(Fragment::Token(*id));
                    a += m + tok.len();
                }
                if a < b {
                    next.push(Fragment::Text(a, b));
                }
            }
            std::mem::swap(&mut frags, &mut next);
        }
        frags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Fragment::*;

    #[test]
    fn longest_first_and_user_defined_always() {
        let s = Specials::new(vec![
            (1, "<a>".into(), false),
            (2, "<a><b>".into(), false),
            (3, "\n\n".into(), true),
        ]);
        let t = "x<a><b>y<a>\n\n";
        assert_eq!(s.partition(t, true), vec![Text(0, 1), Token(2), Text(7, 8), Token(1), Token(3)]);
        assert_eq!(s.partition(t, false), vec![Text(0, 11), Token(3)]);
        assert_eq!(s.partition("", true), vec![]);
    }
}
