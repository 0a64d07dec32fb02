//! The per-ISA test harness shared by the test files. A *runner* is a
//! function `fn(KernelPath)` that checks one kernel path against the scalar
//! reference; `per_path!(runner)` makes a module `runner` with one
//! `#[test]` per SIMD path of the target architecture (`runner::avx2`,
//! `runner::avx512`, `runner::neon`, `runner::neon_dotprod`), each calling
//! the runner on its path, so a failure names its ISA. `per_path!(scalar
//! and runner)` adds `runner::scalar`, for runners that check something
//! other than agreement with the reference (goldens, error bounds).
//!
//! A path the CPU lacks is reported on stderr and not run (the qemu run
//! with `QEMU_CPU=cortex-a53` has no dotprod, for instance).

macro_rules! per_path {
    (scalar and $runner:ident) => {
        per_path!(@module $runner, #[test] fn scalar() { run(KernelPath::Scalar) });
    };
    ($runner:ident) => {
        per_path!(@module $runner,);
    };
    (@module $runner:ident, $($extra:item)?) => {
        mod $runner {
            use edgewasm_kernels::KernelPath;

            fn run(path: KernelPath) {
                if path.is_available() {
                    super::$runner(path)
                } else {
                    eprintln!(concat!(stringify!($runner), ": {} is not available on this CPU; not run"), path);
                }
            }

            $($extra)?

            #[cfg(target_arch = "x86_64")]
            #[test]
            fn avx2() {
                run(KernelPath::Avx2)
            }

            #[cfg(target_arch = "x86_64")]
            #[test]
            fn avx512() {
                run(KernelPath::Avx512)
            }

            #[cfg(target_arch = "aarch64")]
            #[test]
            fn neon() {
                run(KernelPath::Neon)
            }

            #[cfg(target_arch = "aarch64")]
            #[test]
            fn neon_dotprod() {
                run(KernelPath::NeonDotprod)
            }
        }
    };
}
