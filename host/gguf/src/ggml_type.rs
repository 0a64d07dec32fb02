//! The ggml tensor type table: the type ids a GGUF file may name, and the
//! block geometry (elements per block, bytes per block) of each.
//!
//! This lives in the file-format crate because validating a tensor's byte
//! size needs it; the kernels crate builds its block structs on top of it and
//! asserts at compile time that the two agree.
//!
//! The table is every type of ggml's `enum ggml_type` (ggml.h), whether or
//! not the engine can compute with it: a file is readable (and `inspect`
//! can show it) whatever its types; running it is the model's decision.
//! Block sizes and bytes per block are written as ggml-common.h's
//! `static_assert`s on the `block_*` structs spell them, so each row can be
//! checked against ggml by eye.

use std::fmt;

/// Elements per block of the K-quants and the types built like them.
const QK_K: usize = 256;
/// ggml_half, the scale type of most blocks.
const HALF: usize = 2;

/// Declares [`GgmlType`] and its lookups from one row per type, so the id,
/// name and geometry of a type cannot drift apart.
macro_rules! ggml_types {
    ($($variant:ident = $id:literal, $name:literal, $block:expr, $size:expr;)*) => {
        /// A ggml tensor element type, numbered as in `ggml.h` (`enum
        /// ggml_type`). The ids ggml removed (4, 5, 31–33, 36–38) have no
        /// variant.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(non_camel_case_types)]
        #[repr(u32)]
        pub enum GgmlType {
            $($variant = $id,)*
        }

        impl GgmlType {
            /// Every type ggml defines, in id order.
            pub const ALL: [GgmlType; [$($id),*].len()] = [$(GgmlType::$variant),*];

            /// Looks up a type id; `None` for ids ggml removed or never had.
            pub const fn from_id(id: u32) -> Option<GgmlType> {
                Some(match id {
                    $($id => GgmlType::$variant,)*
                    _ => return None,
                })
            }

            /// ggml's name (`ggml_type_name`): lower case except the K of
            /// the K-quants (`"q4_K"`, `"iq4_xs"`, `"bf16"`...).
            pub const fn name(self) -> &'static str {
                match self {
                    $(GgmlType::$variant => $name,)*
                }
            }

            /// Elements per block (1 for the float and integer types).
            pub const fn block_size(self) -> usize {
                match self {
                    $(GgmlType::$variant => $block,)*
                }
            }

            /// Bytes per block, as `sizeof(block_xxx)` in ggml.
            pub const fn type_size(self) -> usize {
                match self {
                    $(GgmlType::$variant => $size,)*
                }
            }
        }
    };
}

ggml_types! {
    F32 = 0, "f32", 1, 4;
    F16 = 1, "f16", 1, HALF;
    Q4_0 = 2, "q4_0", 32, HALF + 32 / 2;
    Q4_1 = 3, "q4_1", 32, 2 * HALF + 32 / 2;
    Q5_0 = 6, "q5_0", 32, HALF + 4 + 32 / 2;
    Q5_1 = 7, "q5_1", 32, 2 * HALF + 4 + 32 / 2;
    Q8_0 = 8, "q8_0", 32, HALF + 32;
    Q8_1 = 9, "q8_1", 32, 2 * HALF + 32;
    Q2_K = 10, "q2_K", QK_K, 2 * HALF + QK_K / 16 + QK_K / 4;
    Q3_K = 11, "q3_K", QK_K, HALF + QK_K / 4 + QK_K / 8 + 12;
    Q4_K = 12, "q4_K", QK_K, 2 * HALF + 12 + QK_K / 2;
    Q5_K = 13, "q5_K", QK_K, 2 * HALF + 12 + QK_K / 2 + QK_K / 8;
    Q6_K = 14, "q6_K", QK_K, HALF + QK_K / 16 + 3 * QK_K / 4;
    Q8_K = 15, "q8_K", QK_K, 4 + QK_K + QK_K / 16 * 2;
    IQ2_XXS = 16, "iq2_xxs", QK_K, HALF + QK_K / 8 * 2;
    IQ2_XS = 17, "iq2_xs", QK_K, HALF + QK_K / 8 * 2 + QK_K / 32;
    IQ3_XXS = 18, "iq3_xxs", QK_K, HALF + 3 * (QK_K / 8);
    IQ1_S = 19, "iq1_s", QK_K, HALF + QK_K / 8 + QK_K / 16;
    IQ4_NL = 20, "iq4_nl", 32, HALF + 32 / 2;
    IQ3_S = 21, "iq3_s", QK_K, HALF + 13 * (QK_K / 32) + QK_K / 64;
    IQ2_S = 22, "iq2_s", QK_K, HALF + QK_K / 4 + QK_K / 16;
    IQ4_XS = 23, "iq4_xs", QK_K, HALF + 2 + QK_K / 64 + QK_K / 2;
    I8 = 24, "i8", 1, 1;
    I16 = 25, "i16", 1, 2;
    I32 = 26, "i32", 1, 4;
    I64 = 27, "i64", 1, 8;
    F64 = 28, "f64", 1, 8;
    IQ1_M = 29, "iq1_m", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32;
    BF16 = 30, "bf16", 1, 2;
    TQ1_0 = 34, "tq1_0", QK_K, HALF + QK_K / 64 + (QK_K - 4 * QK_K / 64) / 5;
    TQ2_0 = 35, "tq2_0", QK_K, HALF + QK_K / 4;
    MXFP4 = 39, "mxfp4", 32, 1 + 32 / 2;
    NVFP4 = 40, "nvfp4", 64, 64 / 16 + 64 / 2;
    Q1_0 = 41, "q1_0", 128, HALF + 128 / 8;
    Q2_0 = 42, "q2_0", 64, HALF + 64 / 4;
}

impl GgmlType {
    /// The numeric id used in GGUF tensor infos.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// Bytes needed for a row of `n` elements, or `None` if `n` is not a
    /// multiple of the block size or the size overflows.
    pub const fn row_bytes(self, n: u64) -> Option<u64> {
        let bs = self.block_size() as u64;
        if !n.is_multiple_of(bs) {
            return None;
        }
        (n / bs).checked_mul(self.type_size() as u64)
    }

    /// Parses a name case-insensitively (`"Q4_K"`, `"q4_k"`, `"bf16"`).
    pub fn from_name(s: &str) -> Option<GgmlType> {
        GgmlType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
    }

    /// True for the block-quantized formats (ggml's `is_quantized`: in its
    /// table, exactly the types with blocks of more than one element).
    pub const fn is_quantized(self) -> bool {
        self.block_size() > 1
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
            assert_eq!(GgmlType::from_name(t.name()), Some(t));
            assert_eq!(GgmlType::from_name(&t.name().to_uppercase()), Some(t));
        }
        assert_eq!(GgmlType::from_id(u32::MAX), None);
    }

    #[test]
    fn all_is_every_id_ggml_has_in_order() {
        let removed = [4, 5, 31, 32, 33, 36, 37, 38];
        let expected: Vec<u32> = (0..=42).filter(|id| !removed.contains(id)).collect();
        let ids: Vec<u32> = GgmlType::ALL.iter().map(|t| t.id()).collect();
        assert_eq!(ids, expected);
        for id in removed.into_iter().chain(43..64) {
            assert_eq!(GgmlType::from_id(id), None, "id {id}");
        }
    }

    #[test]
    fn geometry_matches_ggml() {
        // sizeof(block_*) as the peer's ggml-common.h compiles them, for
        // the types the kernels have no struct to check against.
        let sizes = [
            (GgmlType::IQ2_XXS, 256, 66),
            (GgmlType::IQ2_XS, 256, 74),
            (GgmlType::IQ3_XXS, 256, 98),
            (GgmlType::IQ1_S, 256, 50),
            (GgmlType::IQ4_NL, 32, 18),
            (GgmlType::IQ3_S, 256, 110),
            (GgmlType::IQ2_S, 256, 82),
            (GgmlType::IQ4_XS, 256, 136),
            (GgmlType::IQ1_M, 256, 56),
            (GgmlType::TQ1_0, 256, 54),
            (GgmlType::TQ2_0, 256, 66),
            (GgmlType::MXFP4, 32, 17),
            (GgmlType::NVFP4, 64, 36),
            (GgmlType::Q1_0, 128, 18),
            (GgmlType::Q2_0, 64, 18),
            (GgmlType::F64, 1, 8),
            (GgmlType::I64, 1, 8),
        ];
        for (t, block, size) in sizes {
            assert_eq!((t.block_size(), t.type_size()), (block, size), "{t}");
        }
        for t in GgmlType::ALL {
            let float = matches!(t, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 | GgmlType::F64);
            let int = t.name().starts_with('i') && !t.name().starts_with("iq");
            assert_eq!(t.is_quantized(), !(float || int), "{t}");
        }
    }

    #[test]
    fn row_bytes_checks_block_multiple() {
        assert_eq!(GgmlType::Q4_1.row_bytes(576), Some(18 * 20));
        assert_eq!(GgmlType::Q4_1.row_bytes(577), None);
        assert_eq!(GgmlType::F32.row_bytes(3), Some(12));
        assert_eq!(GgmlType::F32.row_bytes(u64::MAX), None);
        assert_eq!(GgmlType::IQ4_XS.row_bytes(512), Some(2 * 136));
        assert_eq!(GgmlType::IQ4_XS.row_bytes(32), None);
    }
}
