//! Scalar number conversions exactly as ggml's C code performs them.
//!
//! These are ports of `ggml_compute_fp32_to_fp16`, `ggml_compute_fp16_to_fp32`
//! (ggml-impl.h, from the FP16 library) and `ggml_compute_fp32_to_bf16`, plus
//! the float→small-int casts of `ggml-quants.c` with the behaviour they have
//! when that C code is compiled for x86_64 (where ggml's golden files are made).

/// `ggml_compute_fp32_to_fp16`: round to nearest even; NaN becomes `0x7E00`
/// with the input's sign; overflow becomes infinity.
#[inline]
pub fn fp32_to_fp16_bits(f: f32) -> u16 {
    let scale_to_inf = f32::from_bits(0x7780_0000); // 0x1.0p+112
    let scale_to_zero = f32::from_bits(0x0880_0000); // 0x1.0p-110
    let mut base = (f.abs() * scale_to_inf) * scale_to_zero;
    let w = f.to_bits();
    let shl1_w = w.wrapping_add(w);
    let sign = w & 0x8000_0000;
    let mut bias = shl1_w & 0xFF00_0000;
    if bias < 0x7100_0000 {
        bias = 0x7100_0000;
    }
    base += f32::from_bits((bias >> 1) + 0x0780_0000);
    let bits = base.to_bits();
    let exp_bits = (bits >> 13) & 0x0000_7C00;
    let mantissa_bits = bits & 0x0000_0FFF;
    let nonsign = exp_bits + mantissa_bits;
    ((sign >> 16)
        | if shl1_w > 0xFF00_0000 {
            0x7E00
        } else {
            nonsign
        }) as u16
}

/// `ggml_compute_fp16_to_fp32` (exact for every non-NaN input).
#[inline]
pub fn fp16_bits_to_fp32(h: u16) -> f32 {
    let w = (h as u32) << 16;
    let sign = w & 0x8000_0000;
    let two_w = w.wrapping_add(w);
    let exp_offset = 0xE0u32 << 23;
    let exp_scale = f32::from_bits(0x0780_0000); // 0x1.0p-112
    let normalized = f32::from_bits((two_w >> 4) + exp_offset) * exp_scale;
    let magic_mask = 126u32 << 23;
    let denormalized = f32::from_bits((two_w >> 17) | magic_mask) - 0.5;
    let cutoff = 1u32 << 27;
    let result = sign
        | if two_w < cutoff {
            denormalized.to_bits()
        } else {
            normalized.to_bits()
        };
    f32::from_bits(result)
}

/// [`fp32_to_fp16_bits`] as a `half::f16`.
#[inline]
pub fn f16_from_f32(f: f32) -> half::f16 {
    half::f16::from_bits(fp32_to_fp16_bits(f))
}

/// [`fp16_bits_to_fp32`] of a `half::f16`.
#[inline]
pub fn f16_to_f32(h: half::f16) -> f32 {
    fp16_bits_to_fp32(h.to_bits())
}

/// `ggml_compute_fp32_to_bf16`: round to nearest even, NaN forced quiet
/// (`(bits >> 16) | 64`), subnormals kept.
#[inline]
pub fn fp32_to_bf16_bits(f: f32) -> u16 {
    let i = f.to_bits();
    if i & 0x7fff_ffff > 0x7f80_0000 {
        return ((i >> 16) | 64) as u16;
    }
    (i.wrapping_add(0x7fff + ((i >> 16) & 1)) >> 16) as u16
}

/// `ggml_compute_bf16_to_fp32`.
#[inline]
pub fn bf16_bits_to_fp32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// The C conversion `(int32_t)f` as x86_64 executes it (`cvttss2si`):
/// truncation toward zero, and `i32::MIN` for NaN and out-of-range values.
/// ggml casts floats to `int8_t`/`uint8_t` through this instruction and keeps
/// the low byte, so `c_cast_i32(v) as i8` reproduces its bytes even for the
/// degenerate blocks (infinite inverse scales) where C leaves it undefined.
/// The SIMD twins use `cvttps2dq`, which behaves identically.
#[inline]
pub fn c_cast_i32(f: f32) -> i32 {
    // 2^31 is exactly representable; anything >= it (or < -2^31) is invalid.
    if !(-2_147_483_648.0..2_147_483_648.0).contains(&f) {
        i32::MIN
    } else {
        f as i32
    }
}

/// C's `roundf` (half away from zero) followed by the `int8_t` store of
/// `y.qs[j] = roundf(x)` with x86_64 semantics (see [`c_cast_i32`]).
#[inline]
pub fn roundf_to_i8(f: f32) -> i8 {
    c_cast_i32(f.round()) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp16_matches_half_on_non_nan() {
        // Every f16 bit pattern round-trips, and agrees with `half`.
        for h in 0..=u16::MAX {
            let hf = half::f16::from_bits(h);
            if hf.is_nan() {
                assert!(fp16_bits_to_fp32(h).is_nan());
                continue;
            }
            let f = fp16_bits_to_fp32(h);
            assert_eq!(f.to_bits(), hf.to_f32().to_bits(), "{h:#06x}");
            assert_eq!(fp32_to_fp16_bits(f), h, "{h:#06x}");
        }
        // Rounding of values between f16s, ties to even.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let f = f32::from_bits(x);
            if f.is_nan() {
                assert_eq!(fp32_to_fp16_bits(f) & 0x7fff, 0x7E00);
                continue;
            }
            assert_eq!(
                fp32_to_fp16_bits(f),
                half::f16::from_f32(f).to_bits(),
                "{f:e}"
            );
        }
    }

    #[test]
    fn bf16_rounding() {
        assert_eq!(fp32_to_bf16_bits(1.0), 0x3f80);
        // 1 + 2^-8 is a tie between 1.0 and 1 + 2^-7: even is 1.0.
        assert_eq!(fp32_to_bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(fp32_to_bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(fp32_to_bf16_bits(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(fp32_to_bf16_bits(f32::from_bits(0xff80_0001)), 0xffc0);
        assert_eq!(bf16_bits_to_fp32(0x3f80), 1.0);
    }

    #[test]
    fn c_casts() {
        assert_eq!(c_cast_i32(f32::NAN), i32::MIN);
        assert_eq!(c_cast_i32(f32::INFINITY), i32::MIN);
        assert_eq!(c_cast_i32(-2_147_483_648.0), i32::MIN);
        assert_eq!(c_cast_i32(-1.9), -1);
        assert_eq!(roundf_to_i8(2.5), 3);
        assert_eq!(roundf_to_i8(-2.5), -3);
        assert_eq!(roundf_to_i8(0.499_999_97), 0);
        assert_eq!(roundf_to_i8(f32::INFINITY), 0);
        assert_eq!(roundf_to_i8(200.0), -56);
    }
}
