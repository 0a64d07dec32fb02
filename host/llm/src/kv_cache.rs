//! The key/value cache of one inference context.
//!
//! Layout is `[layer][kv_head][position][head_dim]` so attention for one head
//! streams a contiguous block. Only layers with keys and values of their
//! own have a slot, each with its own head widths: the recurrent layers of
//! hybrid models keep a [`crate::recurrent::RecurrentState`] instead, and
//! Gemma 4's last layers read an earlier layer's slot ([`KvLayer::Shared`]). Memory is reserved up front for the context
//! size the caller asked for (an operator-bounded number), never grown
//! implicitly, so a guest cannot make it balloon.

use crate::alloc::zeroed;
use crate::ModelError;

/// What one layer keeps in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvLayer {
    /// Nothing: a recurrent layer.
    None,
    /// Its own keys and values, `k_dim` and `v_dim` per KV head.
    Own { k_dim: usize, v_dim: usize },
    /// Layer `.0`'s keys and values, which that (earlier) layer wrote
    /// (Gemma 4's last layers).
    Shared(usize),
}

/// Where one slot's keys and values start, and their widths.
#[derive(Clone, Copy, Debug)]
struct Slot {
    k_off: usize,
    v_off: usize,
    k_dim: usize,
    v_dim: usize,
}

/// Keys and values for up to `capacity` positions of every layer.
#[derive(Debug)]
pub struct KvCache {
    /// Each layer's slot in `slots`, `None` for layers without one.
    slot: Vec<Option<usize>>,
    slots: Vec<Slot>,
    n_kv_head: usize,
    capacity: usize,
    k: Vec<f32>,
    v: Vec<f32>,
    /// Positions filled (the next token goes here).
    len: usize,
}

impl KvCache {
    /// Reserves room for `capacity` positions of each layer with keys and
    /// values of its own (`layout`, one entry per layer; a shared layer
    /// must name an earlier layer with its own). Fails rather than
    /// aborting if the allocation is impossible.
    pub fn new(layout: &[KvLayer], n_kv_head: usize, capacity: usize) -> Result<KvCache, ModelError> {
        let too_large = || ModelError::ContextTooLarge { requested: capacity };
        let (mut slots, mut slot) = (Vec::new(), Vec::with_capacity(layout.len()));
        let (mut k_len, mut v_len) = (0usize, 0usize);
        for (l, kind) in layout.iter().enumerate() {
            slot.push(match *kind {
                KvLayer::None => None,
                KvLayer::Own { k_dim, v_dim } => {
                    slots.push(Slot { k_off: k_len, v_off: v_len, k_dim, v_dim });
                    let per = |d: usize| n_kv_head.checked_mul(d).and_then(|x| x.checked_mul(capacity));
                    k_len = per(k_dim).and_then(|x| x.checked_add(k_len)).ok_or_else(too_large)?;
                    v_len = per(v_dim).and_then(|x| x.checked_add(v_len)).ok_or_else(too_large)?;
                    Some(slots.len() - 1)
                }
                KvLayer::Shared(src) => {
                    assert!(src < l && matches!(layout[src], KvLayer::Own { .. }), "layer {l} shares the KV of layer {src}, which has none of its own");
                    slot[src]
                }
            });
        }
        let k = zeroed(k_len).ok_or_else(too_large)?;
        let v = zeroed(v_len).ok_or_else(too_large)?;
        Ok(KvCache { slot, slots, n_kv_head, capacity, k, v, len: 0 })
    }

    /// Bytes held by the keys and values.
    pub fn bytes(&self) -> usize {
        (self.k.len() + self.v.len()) * size_of::<f32>()
    }

    /// Bytes [`KvCache::new`] reserves for this layout; `None` on overflow.
    pub fn bytes_for(layout: &[KvLayer], n_kv_head: usize, capacity: usize) -> Option<usize> {
        layout.iter().try_fold(0usize, |acc, l| match *l {
            KvLayer::Own { k_dim, v_dim } => n_kv_head.checked_mul(k_dim.checked_add(v_dim)?)?.checked_mul(capacity)?.checked_mul(size_of::<f32>())?.checked_add(acc),
            _ => Some(acc),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets positions from `len` on (rewind for prefix reuse).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Marks `n` more positions as filled (after a forward pass wrote them).
    pub(crate) fn advance(&mut self, n: usize) {
        debug_assert!(self.len + n <= self.capacity);
        self.len += n;
    }

    /// The slot of `layer`; a layer without one is a caller bug.
    fn slot(&self, layer: usize) -> &Slot {
        &self.slots[self.slot[layer].expect("attention in a layer without a KV slot")]
    }
    fn k_base(&self, layer: usize, head: usize) -> usize {
        let s = self.slot(layer);
        s.k_off + head * self.capacity * s.k_dim
    }
    fn v_base(&self, layer: usize, head: usize) -> usize {
        let s = self.slot(layer);
        s.v_off + head * self.capacity * s.v_dim
    }

    /// Stores `k`/`v` (all KV heads back to back) of position `pos`.
    pub(crate) fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let Slot { k_dim, v_dim, .. } = *self.slot(layer);
        for h in 0..self.n_kv_head {
            let kb = self.k_base(layer, h) + pos * k_dim;
            self.k[kb..kb + k_dim].copy_from_slice(&k[h * k_dim..(h + 1) * k_dim]);
            let vb = self.v_base(layer, h) + pos * v_dim;
            self.v[vb..vb + v_dim].copy_from_slice(&v[h * v_dim..(h + 1) * v_dim]);
        }
    }

    /// Keys of positions `0..n` for one layer and KV head.
    pub(crate) fn keys(&self, layer: usize, head: usize, n: usize) -> &[f32] {
        let b = self.k_base(layer, head);
        &self.k[b..b + n * self.slot(layer).k_dim]
    }
    /// Values of positions `0..n` for one layer and KV head.
    pub(crate) fn values(&self, layer: usize, head: usize, n: usize) -> &[f32] {
        let b = self.v_base(layer, head);
        &self.v[b..b + n * self.slot(layer).v_dim]
    }

    /// Layers with keys and values of their own.
    pub fn n_layer(&self) -> usize {
        self.slots.len()
    }
}
