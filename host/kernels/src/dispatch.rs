//! Which kernel path runs: chosen once from CPU features, or forced with
//! `EDGEWASM_KERNEL_PATH`.
//!
//! The choice is made at run time only (never from `target_feature` cfgs or
//! `-C target-cpu`): one binary runs everywhere and SIMD code is reached only
//! after [`KernelPath::is_available`] said yes.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// The environment variable that forces a path.
pub const KERNEL_PATH_ENV: &str = "EDGEWASM_KERNEL_PATH";

/// An instruction-set path through the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelPath {
    /// Portable reference code.
    Scalar,
    /// x86_64 AVX2 + FMA + F16C.
    Avx2,
    /// x86_64 AVX-512 F/BW/VL (+VNNI where present).
    Avx512,
    /// aarch64 NEON.
    Neon,
    /// aarch64 NEON with the dot-product extension (`sdot`).
    NeonDotprod,
}

impl KernelPath {
    /// Every path, whatever the architecture.
    pub const ALL: [KernelPath; 5] = [
        KernelPath::Scalar,
        KernelPath::Avx2,
        KernelPath::Avx512,
        KernelPath::Neon,
        KernelPath::NeonDotprod,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            KernelPath::Scalar => "scalar",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx512 => "avx512",
            KernelPath::Neon => "neon",
            KernelPath::NeonDotprod => "neon-dotprod",
        }
    }

    /// Whether this CPU can run the path (checked at run time).
    pub fn is_available(self) -> bool {
        match self {
            KernelPath::Scalar => true,
            KernelPath::Avx2 => x86::avx2(),
            KernelPath::Avx512 => x86::avx512(),
            KernelPath::Neon => arm::neon(),
            KernelPath::NeonDotprod => arm::dotprod(),
        }
    }
}

impl fmt::Display for KernelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a kernel path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown kernel path {0:?} (expected scalar, avx2, avx512, neon or neon-dotprod)")]
pub struct UnknownKernelPath(pub String);

impl FromStr for KernelPath {
    type Err = UnknownKernelPath;

    /// Case-insensitive; `_` and `-` are interchangeable (`neon_dotprod`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        Ok(match norm.as_str() {
            "scalar" | "generic" => KernelPath::Scalar,
            "avx2" => KernelPath::Avx2,
            "avx512" | "avx-512" => KernelPath::Avx512,
            "neon" => KernelPath::Neon,
            "neon-dotprod" | "dotprod" => KernelPath::NeonDotprod,
            _ => return Err(UnknownKernelPath(s.to_owned())),
        })
    }
}

/// The best path this CPU supports.
pub fn detect() -> KernelPath {
    if KernelPath::Avx512.is_available() {
        KernelPath::Avx512
    } else if KernelPath::Avx2.is_available() {
        KernelPath::Avx2
    } else if KernelPath::NeonDotprod.is_available() {
        KernelPath::NeonDotprod
    } else if KernelPath::Neon.is_available() {
        KernelPath::Neon
    } else {
        KernelPath::Scalar
    }
}

/// Every path this CPU can run, scalar first.
pub fn available_paths() -> Vec<KernelPath> {
    KernelPath::ALL
        .into_iter()
        .filter(|p| p.is_available())
        .collect()
}

/// Picks the path for an optional `EDGEWASM_KERNEL_PATH` value. Returns the
/// path and, when the request could not be honoured, a message saying why.
pub fn resolve_path(requested: Option<&str>) -> (KernelPath, Option<String>) {
    let best = detect();
    let Some(req) = requested.filter(|s| !s.trim().is_empty()) else {
        return (best, None);
    };
    match req.parse::<KernelPath>() {
        Ok(p) if p.is_available() => (p, None),
        Ok(p) => (
            best,
            Some(format!(
                "edgewasm-kernels: {KERNEL_PATH_ENV}={p} is not supported by this CPU; using {best}"
            )),
        ),
        Err(e) => (
            best,
            Some(format!(
                "edgewasm-kernels: {KERNEL_PATH_ENV}: {e}; using {best}"
            )),
        ),
    }
}

/// The path every [`crate::kernels_for`] table uses: [`detect`]ed, or forced
/// by `EDGEWASM_KERNEL_PATH` when the CPU supports the forced path (if not,
/// the best available one is used and a line says so on stderr, once).
/// Resolved on first call and cached.
pub fn active_path() -> KernelPath {
    static ACTIVE: OnceLock<KernelPath> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        let env = std::env::var(KERNEL_PATH_ENV).ok();
        let (path, warning) = resolve_path(env.as_deref());
        if let Some(w) = warning {
            log::warn!(target: "edgewasm", "{w}");
        }
        path
    })
}

/// The SIMD-relevant CPU features present, for bench reports.
pub fn cpu_features() -> Vec<&'static str> {
    let mut v = Vec::new();
    x86::features(&mut v);
    arm::features(&mut v);
    v
}

/// AVX-512 VNNI (`vpdpbusd`), used by the AVX-512 path when present.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512vnni() -> bool {
    x86::avx512vnni()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    pub fn avx2() -> bool {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    }
    pub fn avx512() -> bool {
        avx2()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
    }
    pub fn avx512vnni() -> bool {
        avx512() && is_x86_feature_detected!("avx512vnni")
    }
    pub fn features(v: &mut Vec<&'static str>) {
        macro_rules! check {
            ($($f:tt),*) => {$(
                if is_x86_feature_detected!($f) {
                    v.push($f);
                }
            )*};
        }
        check!(
            "sse4.1",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512dq",
            "avx512vnni",
            "avx512bf16",
            "avxvnni"
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    pub fn avx2() -> bool {
        false
    }
    pub fn avx512() -> bool {
        false
    }
    pub fn features(_: &mut Vec<&'static str>) {}
}

#[cfg(target_arch = "aarch64")]
mod arm {
    pub fn neon() -> bool {
        std::arch::is_aarch64_feature_detected!("neon")
    }
    pub fn dotprod() -> bool {
        neon() && std::arch::is_aarch64_feature_detected!("dotprod")
    }
    pub fn features(v: &mut Vec<&'static str>) {
        macro_rules! check {
            ($($f:tt),*) => {$(
                if std::arch::is_aarch64_feature_detected!($f) {
                    v.push($f);
                }
            )*};
        }
        check!("neon", "dotprod", "fp16", "i8mm", "bf16", "sve", "sve2");
    }
}

#[cfg(not(target_arch = "aarch64"))]
mod arm {
    pub fn neon() -> bool {
        false
    }
    pub fn dotprod() -> bool {
        false
    }
    pub fn features(_: &mut Vec<&'static str>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in KernelPath::ALL {
            assert_eq!(p.name().parse::<KernelPath>(), Ok(p));
            assert_eq!(p.name().to_uppercase().parse::<KernelPath>(), Ok(p));
        }
        assert_eq!("neon_dotprod".parse(), Ok(KernelPath::NeonDotprod));
        assert!("sse2".parse::<KernelPath>().is_err());
    }

    #[test]
    fn detection_is_consistent() {
        let paths = available_paths();
        eprintln!(
            "available paths: {paths:?}; cpu features: {:?}",
            cpu_features()
        );
        assert_eq!(paths[0], KernelPath::Scalar);
        assert!(paths.contains(&detect()));
        assert!(paths.contains(&active_path()));
        if KernelPath::Avx512.is_available() {
            assert!(KernelPath::Avx2.is_available());
        }
        if KernelPath::NeonDotprod.is_available() {
            assert!(KernelPath::Neon.is_available());
        }
    }

    #[test]
    fn env_override_resolution() {
        assert_eq!(resolve_path(None), (detect(), None));
        assert_eq!(resolve_path(Some("")), (detect(), None));
        assert_eq!(resolve_path(Some("scalar")), (KernelPath::Scalar, None));
        let (p, w) = resolve_path(Some("bogus"));
        assert_eq!(p, detect());
        assert!(w.unwrap().contains("unknown kernel path"));
        // A path of the other architecture is never available.
        let foreign = if cfg!(target_arch = "x86_64") {
            KernelPath::Neon
        } else {
            KernelPath::Avx2
        };
        let (p, w) = resolve_path(Some(foreign.name()));
        assert_eq!(p, detect());
        assert!(w.unwrap().contains("not supported"));
    }
}
