//! A byte trie over a vocabulary, so a grammar walk steps once per shared
//! prefix instead of once per token.

/// Tokens by their bytes. Control tokens (no bytes) are left out: a grammar
/// can only allow them as end-of-generation tokens or by id.
#[derive(Clone, Debug)]
pub struct TokenTrie {
    /// Node 0 is the root (no byte).
    nodes: Vec<Node>,
    /// Token ids, grouped by the node they end at.
    ids: Vec<u32>,
    vocab_size: usize,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    first_child: u32,
    next_sibling: u32,
    /// Range of `ids` ending here.
    ids_start: u32,
    ids_len: u32,
    byte: u8,
}

impl TokenTrie {
    /// No node.
    pub const NONE: u32 = u32::MAX;

    /// Builds the trie of `vocab_size` tokens from `bytes(id)` (empty or
    /// `None` for tokens that have no text).
    pub fn new<'a>(vocab_size: usize, bytes: impl Fn(u32) -> Option<&'a [u8]>) -> TokenTrie {
        let mut sorted: Vec<(&[u8], u32)> = (0..vocab_size as u32)
            .filter_map(|id| bytes(id).filter(|b| !b.is_empty()).map(|b| (b, id)))
            .collect();
        sorted.sort_unstable();
        let root = Node {
            first_child: Self::NONE,
            next_sibling: Self::NONE,
            ids_start: 0,
            ids_len: 0,
            byte: 0,
        };
        let mut nodes = vec![root];
        let mut ids = Vec::with_capacity(sorted.len());
        // Path of node ids for the previous token; `last_child[d]` is the
        // most recent child added under `path[d]`, for sibling links.
        let mut path: Vec<u32> = vec![0];
        let mut last_child: Vec<u32> = vec![Self::NONE];
        let mut prev: &[u8] = &[];
        for (b, id) in sorted {
            let common = prev.iter().zip(b).take_while(|(x, y)| x == y).count();
            path.truncate(common + 1);
            last_child.truncate(common + 1);
            for &byte in &b[common..] {
                let parent = *path.last().unwrap();
                let n = nodes.len() as u32;
                nodes.push(Node {
                    first_child: Self::NONE,
                    next_sibling: Self::NONE,
                    ids_start: 0,
                    ids_len: 0,
                    byte,
                });
                let lc = last_child.last_mut().unwrap();
                if *lc == Self::NONE {
                    nodes[parent as usize].first_child = n;
                } else {
                    nodes[*lc as usize].next_sibling = n;
                }
                *lc = n;
                path.push(n);
                last_child.push(Self::NONE);
            }
            let end = *path.last().unwrap() as usize;
            // Sorted input: tokens with equal bytes are adjacent.
            if nodes[end].ids_len == 0 {
                nodes[end].ids_start = ids.len() as u32;
            }
            nodes[end].ids_len += 1;
            ids.push(id);
            prev = b;
        }
        TokenTrie {
            nodes,
            ids,
            vocab_size,
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Number of nodes, the root included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn first_child(&self, n: u32) -> u32 {
        self.nodes[n as usize].first_child
    }

    pub(crate) fn next_sibling(&self, n: u32) -> u32 {
        self.nodes[n as usize].next_sibling
    }

    pub(crate) fn byte(&self, n: u32) -> u8 {
        self.nodes[n as usize].byte
    }

    /// Tokens whose bytes end at node `n`.
    pub(crate) fn tokens(&self, n: u32) -> &[u32] {
        let node = &self.nodes[n as usize];
        &self.ids[node.ids_start as usize..(node.ids_start + node.ids_len) as usize]
    }
}
