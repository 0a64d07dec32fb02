//! A set of allowed token ids.

/// Which tokens of a vocabulary may come next: a bit set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenMask {
    bits: Vec<u64>,
    len: usize,
}

impl TokenMask {
    /// No token allowed, over a vocabulary of `len` tokens.
    pub fn none(len: usize) -> TokenMask {
        TokenMask {
            bits: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Allows `id` (ids past the vocabulary are ignored).
    pub fn allow(&mut self, id: u32) {
        if (id as usize) < self.len {
            self.bits[id as usize / 64] |= 1 << (id % 64);
        }
    }

    pub fn forbid(&mut self, id: u32) {
        if (id as usize) < self.len {
            self.bits[id as usize / 64] &= !(1 << (id % 64));
        }
    }

    pub fn allow_all(&mut self) {
        self.bits.iter_mut().for_each(|w| *w = !0);
        if self.len % 64 != 0 {
            if let Some(last) = self.bits.last_mut() {
                *last = (1 << (self.len % 64)) - 1;
            }
        }
    }

    pub fn allows(&self, id: u32) -> bool {
        (id as usize) < self.len && self.bits[id as usize / 64] >> (id % 64) & 1 == 1
    }

    /// Allows every token `other` allows (same vocabulary size).
    pub fn union_with(&mut self, other: &TokenMask) {
        self.bits
            .iter_mut()
            .zip(&other.bits)
            .for_each(|(a, b)| *a |= b);
    }

    /// Number of allowed tokens.
    pub fn count(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Sets the logits of tokens that are not allowed to −∞.
    pub fn apply(&self, logits: &mut [f32]) {
        for (i, l) in logits.iter_mut().enumerate() {
            if !self.allows(i as u32) {
                *l = f32::NEG_INFINITY;
            }
        }
    }
}
