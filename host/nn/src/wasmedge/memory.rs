//! Checked access to a guest's linear memory: every pointer and length the
//! guest passes is range-checked (with overflow checks) before use; a bad
//! one is an `InvalidArgument` code, never a host fault.

use std::ops::Range;

use super::abi::{CallError, CallResult, Errno};

/// A guest's memory for the duration of one host call.
#[derive(Debug)]
pub struct GuestMemory<'a> {
    bytes: &'a mut [u8],
}

impl<'a> GuestMemory<'a> {
    pub fn new(bytes: &'a mut [u8]) -> GuestMemory<'a> {
        GuestMemory { bytes }
    }

    /// The byte range `[ptr, ptr + len)`, if it lies inside memory.
    fn range(&self, ptr: u32, len: u32, what: &str) -> CallResult<Range<usize>> {
        let start = ptr as usize;
        match start.checked_add(len as usize) {
            Some(end) if end <= self.bytes.len() => Ok(start..end),
            _ => Err(CallError::invalid(format!(
                "{what}: {len} bytes at {ptr:#x} lie outside guest memory ({} bytes)",
                self.bytes.len()
            ))),
        }
    }

    /// `len` bytes at `ptr`.
    pub fn slice(&self, ptr: u32, len: u32, what: &str) -> CallResult<&[u8]> {
        let r = self.range(ptr, len, what)?;
        Ok(&self.bytes[r])
    }

    /// `count` elements of `size` bytes at `ptr`.
    pub fn array(&self, ptr: u32, count: u32, size: u32, what: &str) -> CallResult<&[u8]> {
        let len = count
            .checked_mul(size)
            .ok_or_else(|| CallError::invalid(format!("{what}: {count} elements of {size} bytes overflow")))?;
        self.slice(ptr, len, what)
    }

    pub fn read_u32(&self, ptr: u32, what: &str) -> CallResult<u32> {
        Ok(le_u32(self.slice(ptr, 4, what)?, 0))
    }

    /// Fails unless a u32 can be written at `ptr` (checked before work
    /// whose result would be lost).
    pub fn check_u32(&self, ptr: u32, what: &str) -> CallResult<()> {
        self.range(ptr, 4, what).map(|_| ())
    }

    pub fn write_u32(&mut self, ptr: u32, value: u32, what: &str) -> CallResult<()> {
        let r = self.range(ptr, 4, what)?;
        self.bytes[r].copy_from_slice(&value.to_le_bytes());
        Ok(())
    }

    /// Copies `data` into the guest buffer `[ptr, ptr + cap)`; `TooLarge`
    /// (nothing written) when it does not fit. Returns the bytes written.
    pub fn write_output(&mut self, ptr: u32, cap: u32, data: &[u8]) -> CallResult<u32> {
        let r = self.range(ptr, cap, "output buffer")?;
        if data.len() > r.len() {
            return Err(CallError::new(
                Errno::TooLarge,
                format!("the output has {} bytes, the buffer holds {cap}", data.len()),
            ));
        }
        self.bytes[r.start..r.start + data.len()].copy_from_slice(data);
        // The length fits: it is at most `cap`.
        Ok(data.len() as u32)
    }
}

/// The little-endian u32 at `off` of `b` (callers pass in-bounds offsets
/// of checked slices).
pub fn le_u32(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: CallResult<impl std::fmt::Debug>) -> Errno {
        match r {
            Err(CallError::Code { errno, .. }) => errno,
            other => panic!("expected an error code, got {other:?}"),
        }
    }

    #[test]
    fn bounds_and_overflow() {
        let mut buf = vec![0u8; 64];
        let mut m = GuestMemory::new(&mut buf);
        assert_eq!(m.slice(60, 4, "x").unwrap().len(), 4);
        assert_eq!(m.slice(64, 0, "x").unwrap().len(), 0);
        assert_eq!(code(m.slice(61, 4, "x")), Errno::InvalidArgument);
        assert_eq!(code(m.slice(u32::MAX, 2, "x")), Errno::InvalidArgument);
        assert_eq!(code(m.slice(1, u32::MAX, "x")), Errno::InvalidArgument);
        assert_eq!(code(m.array(0, u32::MAX, 8, "x")), Errno::InvalidArgument);
        assert_eq!(code(m.write_u32(62, 1, "x")), Errno::InvalidArgument);
        m.write_u32(60, 0xdead_beef, "x").unwrap();
        assert_eq!(m.read_u32(60, "x").unwrap(), 0xdead_beef);
    }

    #[test]
    fn outputs_that_do_not_fit_are_too_large() {
        let mut buf = vec![0u8; 16];
        let mut m = GuestMemory::new(&mut buf);
        assert_eq!(code(m.write_output(0, 4, b"hello")), Errno::TooLarge);
        assert_eq!(m.write_output(8, 8, b"hello").unwrap(), 5);
        assert_eq!(code(m.write_output(8, 9, b"hi")), Errno::InvalidArgument);
        assert_eq!(&buf[8..13], b"hello");
    }
}
