//! A growable byte buffer aligned to 64 bytes, for activation rows.

use std::fmt;

/// Alignment of [`AlignedBuf`] (a cache line, and an AVX-512 vector).
pub const BUF_ALIGN: usize = 64;

#[repr(C, align(64))]
#[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
struct Line([u8; BUF_ALIGN]);

/// A byte buffer whose start is 64-byte aligned, so it can hold rows of any
/// block type (or f32s) and be cast with `bytemuck`. Resizing zero-fills.
#[derive(Clone, Default)]
pub struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBuf {
    pub const fn new() -> Self {
        AlignedBuf {
            lines: Vec::new(),
            len: 0,
        }
    }

    /// A zeroed buffer of `len` bytes.
    pub fn zeroed(len: usize) -> Self {
        let mut b = AlignedBuf::new();
        b.resize(len);
        b
    }

    /// Sets the length to `len` bytes; new bytes are zero. Keeps capacity
    /// when shrinking, so reusing one buffer for rows of varying size does
    /// not allocate after the first, largest, row.
    pub fn resize(&mut self, len: usize) {
        let lines = len.div_ceil(BUF_ALIGN);
        if len > self.len {
            // Zero the tail of the last used line that may hold old bytes.
            let old = self.len;
            self.lines.resize(lines, Line([0; BUF_ALIGN]));
            let bytes = bytemuck::cast_slice_mut::<Line, u8>(&mut self.lines);
            bytes[old..len].fill(0);
        } else {
            self.lines.truncate(lines);
        }
        self.len = len;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<Line, u8>(&self.lines)[..self.len]
    }

    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<Line, u8>(&mut self.lines)[..self.len]
    }

    /// The bytes as f32s (`len` must be a multiple of 4).
    pub fn as_f32(&self) -> &[f32] {
        bytemuck::cast_slice(self.as_bytes())
    }

    /// The bytes as f32s (`len` must be a multiple of 4).
    pub fn as_f32_mut(&mut self) -> &mut [f32] {
        bytemuck::cast_slice_mut(self.as_bytes_mut())
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_bytes_mut()
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_zero_filled() {
        let mut b = AlignedBuf::zeroed(100);
        assert_eq!(b.as_ptr() as usize % BUF_ALIGN, 0);
        assert!(b.iter().all(|&x| x == 0));
        b.fill(7);
        b.resize(10);
        b.resize(200);
        assert_eq!(b.len(), 200);
        assert!(b[..10].iter().all(|&x| x == 7));
        assert!(b[10..].iter().all(|&x| x == 0));
        assert_eq!(b.as_ptr() as usize % BUF_ALIGN, 0);
        b.resize(8);
        assert_eq!(b.as_f32().len(), 2);
        assert!(AlignedBuf::new().is_empty());
    }
}
