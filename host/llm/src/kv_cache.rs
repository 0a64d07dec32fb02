//! The key/value cache of one inference context.
//!
//! Layout is `[layer][kv_head][position][head_dim]` so attention for one head
//! streams a contiguous block. Only layers with keys and values of their
//! own have a slot, each with its own head widths: the recurrent layers of
//! hybrid models keep a [`crate::recurrent::RecurrentState`] instead, and
//! Gemma 4's last layers read an earlier layer's slot ([`KvLayer::Shared`]). Memory is reserved up front for the context
//! size the caller asked for (an operator-bounded number), never grown
//! implicitly, so a guest cannot make it balloon.

use std::fmt;
use std::str::FromStr;

use edgewasm_gguf::GgmlType;
use half::f16;

use crate::alloc::zeroed;
use crate::ModelError;

/// How keys (or values) are stored. f16 halves the cache of f32 at no
/// measurable cost in quality, which is why it is llama.cpp's default and
/// ours; Q8_0 halves it again (34 bytes per 32 values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KvType {
    F32,
    #[default]
    F16,
    Q8_0,
}

impl KvType {
    pub const ALL: [KvType; 3] = [KvType::F32, KvType::F16, KvType::Q8_0];
    /// Names as the `--cache-type-k/-v` flags spell them (llama.cpp's).
    pub const NAMES: &'static str = "f32, f16, q8_0";

    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
        }
    }

    /// Values per block: a row's width must be a multiple of it.
    pub fn block(self) -> usize {
        match self {
            KvType::F32 | KvType::F16 => 1,
            KvType::Q8_0 => 32,
        }
    }

    /// Bytes of one row of `dim` values (`dim` a multiple of
    /// [`KvType::block`]); `None` on overflow.
    pub fn row_bytes(self, dim: usize) -> Option<usize> {
        match self {
            KvType::F32 => dim.checked_mul(4),
            KvType::F16 => dim.checked_mul(2),
            KvType::Q8_0 => (dim / 32).checked_mul(34),
        }
    }

    /// Storage units (elements of the backing vector) of one row.
    fn row_units(self, dim: usize) -> usize {
        match self {
            KvType::F32 | KvType::F16 => dim,
            KvType::Q8_0 => dim / 32 * 34,
        }
    }
}

impl fmt::Display for KvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KvType {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<KvType, ModelError> {
        KvType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ModelError::Unsupported { what: "KV cache type", name: s.to_string(), supported: KvType::NAMES })
    }
}

/// The storage types of keys and of values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvTypes {
    pub k: KvType,
    pub v: KvType,
}

impl KvTypes {
    /// Full precision: what the cross-engine tests compare, since it leaves
    /// only the engines' arithmetic to differ.
    pub const F32: KvTypes = KvTypes { k: KvType::F32, v: KvType::F32 };

    fn check(self, layout: &[KvLayer]) -> Result<(), ModelError> {
        for l in layout {
            if let KvLayer::Own { k_dim, v_dim } = *l {
                for (ty, dim) in [(self.k, k_dim), (self.v, v_dim)] {
                    if dim % ty.block() != 0 {
                        return Err(ModelError::KvTypeWidth { ty: ty.name(), dim, block: ty.block() });
                    }
                }
            }
        }
        Ok(())
    }
}

/// The backing store of keys or of values.
#[derive(Debug)]
enum Store {
    F32(Vec<f32>),
    F16(Vec<f16>),
    /// Q8_0 blocks, 34 bytes per 32 values.
    Q8_0(Vec<u8>),
}

impl Store {
    fn new(ty: KvType, units: usize) -> Option<Store> {
        Some(match ty {
            KvType::F32 => Store::F32(zeroed(units)?),
            KvType::F16 => Store::F16(zeroed(units)?),
            KvType::Q8_0 => Store::Q8_0(zeroed(units)?),
        })
    }
    fn bytes(&self) -> usize {
        match self {
            Store::F32(v) => v.len() * 4,
            Store::F16(v) => v.len() * 2,
            Store::Q8_0(v) => v.len(),
        }
    }
    /// Writes one row of `src.len()` values at unit offset `at`.
    /// Copies `units` storage units of `src` (the same type) from `from`
    /// to `to`.
    fn copy_from(&mut self, src: &Store, from: usize, to: usize, units: usize) {
        match (self, src) {
            (Store::F32(d), Store::F32(s)) => d[to..to + units].copy_from_slice(&s[from..from + units]),
            (Store::F16(d), Store::F16(s)) => d[to..to + units].copy_from_slice(&s[from..from + units]),
            (Store::Q8_0(d), Store::Q8_0(s)) => d[to..to + units].copy_from_slice(&s[from..from + units]),
            _ => unreachable!("copy_prefix_from checked that the types match"),
        }
    }

    fn write(&mut self, at: usize, src: &[f32]) {
        match self {
            Store::F32(v) => v[at..at + src.len()].copy_from_slice(src),
            Store::F16(v) => v[at..at + src.len()].iter_mut().zip(src).for_each(|(d, &s)| *d = f16::from_f32(s)),
            Store::Q8_0(v) => {
                let n = KvType::Q8_0.row_units(src.len());
                edgewasm_kernels::quantize_row(GgmlType::Q8_0, src, &mut v[at..at + n]);
            }
        }
    }
    fn rows(&self, at: usize, units: usize, dim: usize) -> KvRows<'_> {
        let data = match self {
            Store::F32(v) => RowData::F32(&v[at..at + units]),
            Store::F16(v) => RowData::F16(&v[at..at + units]),
            Store::Q8_0(v) => RowData::Q8_0(&v[at..at + units]),
        };
        KvRows { data, dim }
    }
}

#[derive(Clone, Copy, Debug)]
enum RowData<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    Q8_0(&'a [u8]),
}

/// Consecutive positions of one layer and KV head: keys or values in their
/// storage type, read as f32 a run at a time.
#[derive(Clone, Copy, Debug)]
pub struct KvRows<'a> {
    data: RowData<'a>,
    dim: usize,
}

impl<'a> KvRows<'a> {
    /// Rows `first..first + n` where they lie, if stored as f16.
    pub fn f16_rows(&self, first: usize, n: usize) -> Option<&'a [f16]> {
        match self.data {
            RowData::F16(v) => Some(&v[first * self.dim..(first + n) * self.dim]),
            _ => None,
        }
    }

    /// Rows `first..first + n` as f32: borrowed when stored as f32,
    /// otherwise widened (exactly, for f16) or dequantized into `buf`.
    pub fn f32_rows<'b>(&self, first: usize, n: usize, buf: &'b mut Vec<f32>) -> &'b [f32]
    where
        'a: 'b,
    {
        let d = self.dim;
        match self.data {
            RowData::F32(v) => &v[first * d..(first + n) * d],
            RowData::F16(v) => {
                buf.resize(n * d, 0.0);
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(&v[first * d..(first + n) * d], buf);
                buf
            }
            RowData::Q8_0(v) => {
                let u = KvType::Q8_0.row_units(d);
                buf.resize(n * d, 0.0);
                edgewasm_kernels::dequantize_row(GgmlType::Q8_0, &v[first * u..(first + n) * u], buf);
                buf
            }
        }
    }
}

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
    /// Offsets in storage units of `k`/`v`.
    slots: Vec<Slot>,
    n_kv_head: usize,
    capacity: usize,
    types: KvTypes,
    k: Store,
    v: Store,
    /// Positions filled (the next token goes here).
    len: usize,
}

impl KvCache {
    /// Reserves room for `capacity` positions of each layer with keys and
    /// values of its own (`layout`, one entry per layer; a shared layer
    /// must name an earlier layer with its own), stored as `types`. Fails
    /// rather than aborting if the allocation is impossible, and with
    /// [`ModelError::KvTypeWidth`] if a head width does not fit the type.
    pub fn new(layout: &[KvLayer], n_kv_head: usize, capacity: usize, types: KvTypes) -> Result<KvCache, ModelError> {
        types.check(layout)?;
        let too_large = || ModelError::ContextTooLarge { requested: capacity };
        let (mut slots, mut slot) = (Vec::new(), Vec::with_capacity(layout.len()));
        let (mut k_len, mut v_len) = (0usize, 0usize);
        for (l, kind) in layout.iter().enumerate() {
            slot.push(match *kind {
                KvLayer::None => None,
                KvLayer::Own { k_dim, v_dim } => {
                    slots.push(Slot { k_off: k_len, v_off: v_len, k_dim, v_dim });
                    let per = |ty: KvType, d: usize| n_kv_head.checked_mul(ty.row_units(d)).and_then(|x| x.checked_mul(capacity));
                    k_len = per(types.k, k_dim).and_then(|x| x.checked_add(k_len)).ok_or_else(too_large)?;
                    v_len = per(types.v, v_dim).and_then(|x| x.checked_add(v_len)).ok_or_else(too_large)?;
                    Some(slots.len() - 1)
                }
                KvLayer::Shared(src) => {
                    assert!(src < l && matches!(layout[src], KvLayer::Own { .. }), "layer {l} shares the KV of layer {src}, which has none of its own");
                    slot[src]
                }
            });
        }
        let k = Store::new(types.k, k_len).ok_or_else(too_large)?;
        let v = Store::new(types.v, v_len).ok_or_else(too_large)?;
        Ok(KvCache { slot, slots, n_kv_head, capacity, types, k, v, len: 0 })
    }

    /// Bytes held by the keys and values.
    pub fn bytes(&self) -> usize {
        self.k.bytes() + self.v.bytes()
    }

    /// Bytes [`KvCache::new`] reserves for this layout and types; `None` on
    /// overflow.
    pub fn bytes_for(layout: &[KvLayer], n_kv_head: usize, capacity: usize, types: KvTypes) -> Option<usize> {
        layout.iter().try_fold(0usize, |acc, l| match *l {
            KvLayer::Own { k_dim, v_dim } => {
                let row = types.k.row_bytes(k_dim)?.checked_add(types.v.row_bytes(v_dim)?)?;
                n_kv_head.checked_mul(row)?.checked_mul(capacity)?.checked_add(acc)
            }
            _ => Some(acc),
        })
    }

    pub fn types(&self) -> KvTypes {
        self.types
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
    /// Unit offset of position 0 of `head`'s keys, and units per row.
    fn k_base(&self, layer: usize, head: usize) -> (usize, usize) {
        let s = self.slot(layer);
        let row = self.types.k.row_units(s.k_dim);
        (s.k_off + head * self.capacity * row, row)
    }
    fn v_base(&self, layer: usize, head: usize) -> (usize, usize) {
        let s = self.slot(layer);
        let row = self.types.v.row_units(s.v_dim);
        (s.v_off + head * self.capacity * row, row)
    }

    /// Stores `k`/`v` (all KV heads back to back) of position `pos`.
    pub(crate) fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let Slot { k_dim, v_dim, .. } = *self.slot(layer);
        for h in 0..self.n_kv_head {
            let (kb, kr) = self.k_base(layer, h);
            self.k.write(kb + pos * kr, &k[h * k_dim..(h + 1) * k_dim]);
            let (vb, vr) = self.v_base(layer, h);
            self.v.write(vb + pos * vr, &v[h * v_dim..(h + 1) * v_dim]);
        }
    }

    /// Keys of positions `0..n` for one layer and KV head.
    pub(crate) fn keys(&self, layer: usize, head: usize, n: usize) -> KvRows<'_> {
        let (b, r) = self.k_base(layer, head);
        self.k.rows(b, n * r, self.slot(layer).k_dim)
    }
    /// Values of positions `0..n` for one layer and KV head.
    pub(crate) fn values(&self, layer: usize, head: usize, n: usize) -> KvRows<'_> {
        let (b, r) = self.v_base(layer, head);
        self.v.rows(b, n * r, self.slot(layer).v_dim)
    }

    /// Layers with keys and values of their own.
    pub fn n_layer(&self) -> usize {
        self.slots.len()
    }

    /// Copies positions `0..n` of `src` (a cache of the same model and
    /// types) into this one, which then holds exactly those `n`; `false`
    /// (and nothing changed) if the layouts or types differ, `src` holds
    /// fewer than `n`, or this cache has no room for them.
    pub fn copy_prefix_from(&mut self, src: &KvCache, n: usize) -> bool {
        let same_layout = self.slot == src.slot
            && self.n_kv_head == src.n_kv_head
            && self.types == src.types
            && self.slots.iter().zip(&src.slots).all(|(a, b)| (a.k_dim, a.v_dim) == (b.k_dim, b.v_dim));
        if !same_layout || n > src.len || n > self.capacity {
            return false;
        }
        for layer in 0..self.slot.len() {
            // Each slot once: shared layers name an earlier layer's.
            let Some(idx) = self.slot[layer] else { continue };
            if self.slot[..layer].contains(&Some(idx)) {
                continue;
            }
            for h in 0..self.n_kv_head {
                let ((db, dr), (sb, _)) = (self.k_base(layer, h), src.k_base(layer, h));
                self.k.copy_from(&src.k, sb, db, n * dr);
                let ((db, dr), (sb, _)) = (self.v_base(layer, h), src.v_base(layer, h));
                self.v.copy_from(&src.v, sb, db, n * dr);
            }
        }
        self.len = n;
        true
    }
}
