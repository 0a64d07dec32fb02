//! Fallible, lazily zeroed buffers for everything a context allocates from
//! a model's hyperparameters: a size the file (or a guest) chose must fail
//! with an error, never abort the host in `handle_alloc_error`.

use crate::ModelError;

/// A zero-filled vector from `alloc_zeroed`: fallible, and the OS hands out
/// zero pages lazily, so a buffer only costs resident memory for the part
/// actually written.
pub(crate) fn zeroed<T: bytemuck::Zeroable>(len: usize) -> Option<Vec<T>> {
    let layout = std::alloc::Layout::array::<T>(len).ok()?;
    if layout.size() == 0 {
        return Some(Vec::new());
    }
    // SAFETY: the layout has a non-zero size (checked above).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` comes from the global allocator with the layout of
    // `[T; len]`, so capacity == len matches; `T: Zeroable` means all-zero
    // bytes are a valid `T`, so all `len` elements are initialised.
    Some(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// [`zeroed`], failing with [`ModelError::OutOfMemory`] naming `what`.
pub(crate) fn try_zeroed<T: bytemuck::Zeroable>(what: &'static str, len: usize) -> Result<Vec<T>, ModelError> {
    zeroed(len).ok_or(ModelError::OutOfMemory { what, bytes: len.saturating_mul(size_of::<T>()) })
}
