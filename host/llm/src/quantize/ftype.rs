//! llama.cpp's file types (`enum llama_ftype`): what `--type` names.

use std::fmt;

use edgewasm_gguf::GgmlType;

/// A llama.cpp file type (`enum llama_ftype` in `llama.h`): the number
/// written to `general.file_type`, and the quantization mixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum Ftype {
    AllF32,
    F16,
    Q4_0,
    Q4_1,
    Q8_0,
    Q5_0,
    Q5_1,
    Q2_K,
    Q3_K_S,
    Q3_K_M,
    Q3_K_L,
    Q4_K_S,
    Q4_K_M,
    Q5_K_S,
    Q5_K_M,
    Q6_K,
    IQ4_NL,
    IQ4_XS,
    BF16,
}

impl Ftype {
    /// Every supported file type, in `llama_ftype` order.
    pub const ALL: [Ftype; 19] = [
        Ftype::AllF32,
        Ftype::F16,
        Ftype::Q4_0,
        Ftype::Q4_1,
        Ftype::Q8_0,
        Ftype::Q5_0,
        Ftype::Q5_1,
        Ftype::Q2_K,
        Ftype::Q3_K_S,
        Ftype::Q3_K_M,
        Ftype::Q3_K_L,
        Ftype::Q4_K_S,
        Ftype::Q4_K_M,
        Ftype::Q5_K_S,
        Ftype::Q5_K_M,
        Ftype::Q6_K,
        Ftype::IQ4_NL,
        Ftype::IQ4_XS,
        Ftype::BF16,
    ];

    /// The `LLAMA_FTYPE_*` number (`general.file_type`).
    pub const fn id(self) -> u32 {
        match self {
            Ftype::AllF32 => 0,
            Ftype::F16 => 1,
            Ftype::Q4_0 => 2,
            Ftype::Q4_1 => 3,
            Ftype::Q8_0 => 7,
            Ftype::Q5_0 => 8,
            Ftype::Q5_1 => 9,
            Ftype::Q2_K => 10,
            Ftype::Q3_K_S => 11,
            Ftype::Q3_K_M => 12,
            Ftype::Q3_K_L => 13,
            Ftype::Q4_K_S => 14,
            Ftype::Q4_K_M => 15,
            Ftype::Q5_K_S => 16,
            Ftype::Q5_K_M => 17,
            Ftype::Q6_K => 18,
            Ftype::IQ4_NL => 25,
            Ftype::IQ4_XS => 30,
            Ftype::BF16 => 32,
        }
    }

    /// The name llama-quantize uses (`QUANT_OPTIONS` in
    /// `tools/quantize/quantize.cpp`).
    pub const fn name(self) -> &'static str {
        match self {
            Ftype::AllF32 => "F32",
            Ftype::F16 => "F16",
            Ftype::Q4_0 => "Q4_0",
            Ftype::Q4_1 => "Q4_1",
            Ftype::Q8_0 => "Q8_0",
            Ftype::Q5_0 => "Q5_0",
            Ftype::Q5_1 => "Q5_1",
            Ftype::Q2_K => "Q2_K",
            Ftype::Q3_K_S => "Q3_K_S",
            Ftype::Q3_K_M => "Q3_K_M",
            Ftype::Q3_K_L => "Q3_K_L",
            Ftype::Q4_K_S => "Q4_K_S",
            Ftype::Q4_K_M => "Q4_K_M",
            Ftype::Q5_K_S => "Q5_K_S",
            Ftype::Q5_K_M => "Q5_K_M",
            Ftype::Q6_K => "Q6_K",
            Ftype::IQ4_NL => "IQ4_NL",
            Ftype::IQ4_XS => "IQ4_XS",
            Ftype::BF16 => "BF16",
        }
    }

    /// Parses a name case-insensitively, with llama-quantize's aliases:
    /// `Q3_K` is `Q3_K_M`, `Q4_K` is `Q4_K_M`, `Q5_K` is `Q5_K_M`.
    pub fn from_name(s: &str) -> Option<Ftype> {
        let alias = match s.to_ascii_uppercase().as_str() {
            "Q3_K" => Some(Ftype::Q3_K_M),
            "Q4_K" => Some(Ftype::Q4_K_M),
            "Q5_K" => Some(Ftype::Q5_K_M),
            _ => None,
        };
        alias.or_else(|| Ftype::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(s)))
    }

    /// The tensor type most weights get: `llama_ftype_get_default_type`.
    pub const fn default_type(self) -> GgmlType {
        match self {
            Ftype::AllF32 => GgmlType::F32,
            Ftype::F16 => GgmlType::F16,
            Ftype::BF16 => GgmlType::BF16,
            Ftype::Q4_0 => GgmlType::Q4_0,
            Ftype::Q4_1 => GgmlType::Q4_1,
            Ftype::Q5_0 => GgmlType::Q5_0,
            Ftype::Q5_1 => GgmlType::Q5_1,
            Ftype::Q8_0 => GgmlType::Q8_0,
            Ftype::Q2_K => GgmlType::Q2_K,
            Ftype::Q3_K_S | Ftype::Q3_K_M | Ftype::Q3_K_L => GgmlType::Q3_K,
            Ftype::Q4_K_S | Ftype::Q4_K_M => GgmlType::Q4_K,
            Ftype::Q5_K_S | Ftype::Q5_K_M => GgmlType::Q5_K,
            Ftype::Q6_K => GgmlType::Q6_K,
            Ftype::IQ4_NL => GgmlType::IQ4_NL,
            Ftype::IQ4_XS => GgmlType::IQ4_XS,
        }
    }
}

impl fmt::Display for Ftype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftype_names_ids_and_aliases() {
        assert_eq!(Ftype::from_name("q8_0"), Some(Ftype::Q8_0));
        assert_eq!(Ftype::from_name("Q4_K"), Some(Ftype::Q4_K_M));
        assert_eq!(Ftype::from_name("q5_k"), Some(Ftype::Q5_K_M));
        assert_eq!(Ftype::from_name("q4_k_s"), Some(Ftype::Q4_K_S));
        assert_eq!(Ftype::from_name("iq4_nl"), Some(Ftype::IQ4_NL));
        assert_eq!(Ftype::from_name("IQ4_XS").map(Ftype::id), Some(30));
        assert_eq!(Ftype::from_name("iq2_xxs"), None);
        assert_eq!(Ftype::Q8_0.id(), 7);
        assert_eq!(Ftype::Q4_0.id(), 2);
        assert_eq!(Ftype::Q4_K_M.id(), 15);
        assert_eq!(Ftype::BF16.id(), 32);
        for f in Ftype::ALL {
            assert_eq!(Ftype::from_name(f.name()), Some(f));
        }
    }
}
