//! The key/value cache of one inference context.
//!
//! Layout is `[layer][kv_head][position][head_dim]` so attention for one head
//! streams a contiguous block. Only attending layers have a slot: the
//! recurrent layers of hybrid models keep a [`crate::recurrent::RecurrentState`]
//! instead. Memory is reserved up front for the context
//! size the caller asked for (an operator-bounded number), never grown
//! implicitly, so a guest cannot make it balloon.

use crate::alloc::zeroed;
use crate::ModelError;

/// Keys and values for up to `capacity` positions of every layer.
#[derive(Debug)]
pub struct KvCache {
    /// Each layer's slot in the cache, `None` for layers without one.
    slot: Vec<Option<usize>>,
    /// Layers with a slot.
    n_layer: usize,
    n_kv_head: usize,
    k_dim: usize,
    v_dim: usize,
    capacity: usize,
    k: Vec<f32>,
    v: Vec<f32>,
    /// Positions filled (the next token goes here).
    len: usize,
}

impl KvCache {
    /// Reserves room for `capacity` positions of each layer whose
    /// `kv_layers` entry is true. Fails rather than aborting if the
    /// allocation is impossible.
    pub fn new(
        kv_layers: &[bool],
        n_kv_head: usize,
        k_dim: usize,
        v_dim: usize,
        capacity: usize,
    ) -> Result<KvCache, ModelError> {
        let mut n_layer = 0;
        let slot = kv_layers
            .iter()
            .map(|&has| {
                n_layer += usize::from(has);
                has.then_some(n_layer - 1)
            })
            .collect();
        let per_pos = n_layer * n_kv_head;
        let k_len = per_pos
            .checked_mul(k_dim)
            .and_then(|x| x.checked_mul(capacity))
            .ok_or(ModelError::ContextTooLarge { requested: capacity })?;
        let v_len = per_pos
            .checked_mul(v_dim)
            .and_then(|x| x.checked_mul(capacity))
            .ok_or(ModelError::ContextTooLarge { requested: capacity })?;
        let too_large = || ModelError::ContextTooLarge { requested: capacity };
        let k = zeroed(k_len).ok_or_else(too_large)?;
        let v = zeroed(v_len).ok_or_else(too_large)?;
        Ok(KvCache { slot, n_layer, n_kv_head, k_dim, v_dim, capacity, k, v, len: 0 })
    }

    /// Bytes held by the keys and values.
    pub fn bytes(&self) -> usize {
        (self.k.len() + self.v.len()) * size_of::<f32>()
    }

    /// Bytes [`KvCache::new`] reserves for these dimensions; `None` on
    /// overflow.
    pub fn bytes_for(n_layer: usize, n_kv_head: usize, k_dim: usize, v_dim: usize, capacity: usize) -> Option<usize> {
        n_layer
            .checked_mul(n_kv_head)?
            .checked_mul(k_dim.checked_add(v_dim)?)?
            .checked_mul(capacity)?
            .checked_mul(size_of::<f32>())
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
    fn slot(&self, layer: usize) -> usize {
        self.slot[layer].expect("attention in a layer without a KV slot")
    }
    fn k_base(&self, layer: usize, head: usize) -> usize {
        ((self.slot(layer) * self.n_kv_head + head) * self.capacity) * self.k_dim
    }
    fn v_base(&self, layer: usize, head: usize) -> usize {
        ((self.slot(layer) * self.n_kv_head + head) * self.capacity) * self.v_dim
    }

    /// Stores `k`/`v` (all KV heads back to back) of position `pos`.
    pub(crate) fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        for h in 0..self.n_kv_head {
            let kb = self.k_base(layer, h) + pos * self.k_dim;
            self.k[kb..kb + self.k_dim].copy_from_slice(&k[h * self.k_dim..(h + 1) * self.k_dim]);
            let vb = self.v_base(layer, h) + pos * self.v_dim;
            self.v[vb..vb + self.v_dim].copy_from_slice(&v[h * self.v_dim..(h + 1) * self.v_dim]);
        }
    }

    /// Keys of positions `0..n` for one layer and KV head.
    pub(crate) fn keys(&self, layer: usize, head: usize, n: usize) -> &[f32] {
        let b = self.k_base(layer, head);
        &self.k[b..b + n * self.k_dim]
    }
    /// Values of positions `0..n` for one layer and KV head.
    pub(crate) fn values(&self, layer: usize, head: usize, n: usize) -> &[f32] {
        let b = self.v_base(layer, head);
        &self.v[b..b + n * self.v_dim]
    }

    /// Layers with keys and values.
    pub fn n_layer(&self) -> usize {
        self.n_layer
    }
}
