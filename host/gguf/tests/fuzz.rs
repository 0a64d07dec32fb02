//! Random corruption of a valid file must give `Ok` or `Err`, never a panic
//! (proptest reports a panic as a failure), and anything that does parse must
//! be self-consistent.

mod common;

use common::*;
use edgewasm_gguf::GgufFile;
use proptest::prelude::*;

/// Checks the invariants the reader promises for every file it accepts.
fn check_invariants(f: &GgufFile) {
    assert!(matches!(f.version(), 2 | 3));
    assert!(f.alignment().is_power_of_two());
    assert!(f.data_offset() <= f.file_size());
    for t in f.tensors() {
        assert_eq!(t.offset % f.alignment(), 0);
        assert!(!t.dims.is_empty() && t.dims.len() <= 4);
        assert_eq!(
            t.size_bytes,
            t.ty.row_bytes(t.row_len()).unwrap() * t.n_rows()
        );
        assert_eq!(f.tensor_data(t).len() as u64, t.size_bytes);
        assert_eq!(f.tensor(&t.name), Some(t));
    }
    for (k, v) in f.metadata() {
        // The very entry, not an equal one: a mutated F32 value may be NaN,
        // which no value equals (seen: `Array(F32([0.5, NaN]))`).
        assert!(f.get(k).is_some_and(|got| std::ptr::eq(got, v)), "{k}");
        let _ = v.to_string();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<Option<prop::sample::Index>>(),
    ) {
        let mut bytes = sample_bytes();
        for (i, b) in edits {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(f) = GgufFile::from_bytes(&bytes) {
            check_invariants(&f);
        }
    }

    /// Edits confined to the header, where every byte matters, with values
    /// biased towards the interesting extremes.
    #[test]
    fn header_mutations_never_panic(
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), prop_oneof![Just(0u8), Just(1), Just(0xff), Just(0x80), any::<u8>()]),
            1..6,
        ),
    ) {
        let mut bytes = sample_bytes();
        let header_len = GgufFile::from_bytes(&bytes).unwrap().data_offset() as usize;
        for (i, b) in edits {
            bytes[i.index(header_len)] = b;
        }
        if let Ok(f) = GgufFile::from_bytes(&bytes) {
            check_invariants(&f);
        }
    }

    /// Completely random input.
    #[test]
    fn random_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = b"GGUF\x03\0\0\0".to_vec();
        bytes.extend_from_slice(&tail);
        if let Ok(f) = GgufFile::from_bytes(&bytes) {
            check_invariants(&f);
        }
    }
}
