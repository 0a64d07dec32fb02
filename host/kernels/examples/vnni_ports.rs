//! How many `vpdpbusd` (512-bit) a core issues per cycle, alone and mixed
//! with f32 multiplies: the question behind the AVX-512 tile kernels'
//! operation counts (`src/arch/x86_64/avx512/gemm.rs`). The clock comes from
//! a chain of dependent `imul` (3 cycles each on every x86 core of the last
//! decade). Prints rates; compare them with the clock.
//!
//!     cargo run --release -p edgewasm-kernels --example vnni_ports

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;
    use std::arch::x86_64::*;
    use std::time::Instant;

    /// Twelve independent `vpdpbusd` chains, `n` rounds.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn vnni(n: usize, a: __m512i, b: __m512i) -> __m512i {
        let mut s = [_mm512_setzero_si512(); 12];
        for _ in 0..n {
            for s in &mut s {
                *s = _mm512_dpbusd_epi32(*s, a, b);
            }
        }
        s.into_iter().fold(_mm512_setzero_si512(), |t, s| _mm512_add_epi32(t, s))
    }

    /// Eight `vpdpbusd` chains and four `vmulps` chains, `n` rounds.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn mixed(n: usize, a: __m512i, b: __m512i) -> (__m512i, __m512) {
        let mut s = [_mm512_setzero_si512(); 8];
        let mut f = [_mm512_set1_ps(1.0); 4];
        let x = _mm512_set1_ps(1.000_000_1);
        for _ in 0..n {
            for s in &mut s {
                *s = _mm512_dpbusd_epi32(*s, a, b);
            }
            for f in &mut f {
                *f = _mm512_mul_ps(*f, x);
            }
        }
        let t = s.into_iter().fold(_mm512_setzero_si512(), |t, s| _mm512_add_epi32(t, s));
        (t, f.into_iter().fold(_mm512_setzero_ps(), |t, f| _mm512_add_ps(t, f)))
    }

    /// Dependent `imul`s per second: a third of the clock. `n` is at least
    /// 4 (the loop counts down by four to zero).
    fn imul_chain(n: u64) -> f64 {
        let n = n.max(4) / 4 * 4;
        let t = Instant::now();
        let mut x: u64 = 3;
        // SAFETY: register arithmetic only; `n` counts down to zero.
        unsafe {
            asm!("2:", "imul {x}, {x}", "imul {x}, {x}", "imul {x}, {x}", "imul {x}, {x}", "sub {n}, 4", "jnz 2b",
                 x = inout(reg) x, n = inout(reg) n => _)
        };
        std::hint::black_box(x);
        n as f64 / t.elapsed().as_secs_f64()
    }

    pub fn run() {
        if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512vnni")) {
            println!("no AVX-512 VNNI on this CPU");
            return;
        }
        let n = 50_000_000;
        // SAFETY: the features were detected above (here and below).
        let (a, b) = unsafe { (_mm512_set1_epi8(3), _mm512_set1_epi8(5)) };
        for _ in 0..3 {
            let clock = 3.0 * imul_chain(1 << 30);
            let t = Instant::now();
            let r = unsafe { vnni(n, a, b) };
            let v = (12 * n) as f64 / t.elapsed().as_secs_f64();
            let t = Instant::now();
            let (r2, f) = unsafe { mixed(n, a, b) };
            let m = (12 * n) as f64 / t.elapsed().as_secs_f64();
            std::hint::black_box((r, r2, f));
            println!(
                "clock {:.2} GHz | vpdpbusd alone {:.2} per cycle | 8 vpdpbusd + 4 vmulps: {:.2} operations per cycle",
                clock / 1e9,
                v / clock,
                m / clock
            );
        }
    }
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    x86::run();
    #[cfg(not(target_arch = "x86_64"))]
    println!("x86_64 only");
}
