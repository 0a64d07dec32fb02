//! Loading components and core modules: compiling `.wasm` (through an
//! on-disk cache of compiled code) or deserializing precompiled `.cwasm`.
//!
//! Cache entries live in `$EDGEWASM_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/edgewasm`, else `~/.cache/edgewasm`, named by the
//! SHA-256 of the wasmtime version, the target, the engine's compilation
//! settings and the component's bytes.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module, Precompiled, Result};

/// How a component was obtained (for `--verbose`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadKind {
    /// Deserialized a `.cwasm` given on the command line.
    Precompiled,
    /// Deserialized from the compile cache.
    CacheHit,
    /// Compiled (and stored in the cache unless disabled).
    Compiled,
}

/// The cache directory, if one can be determined.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("EDGEWASM_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("edgewasm"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/edgewasm"))
}

/// The cache key of `bytes` for `engine`.
pub fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    let mut h = Sha256::new();
    h.update(b"edgewasm-component-cache-v1\0");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(b"\0wasmtime-48.0.8\0");
    h.update(std::env::consts::ARCH.as_bytes());
    h.update(std::env::consts::OS.as_bytes());
    h.update(settings.finish().to_le_bytes());
    h.update(bytes);
    hex::encode(h.finalize())
}

/// Loads the component at `path`: a `.cwasm` is deserialized, a `.wasm`
/// compiled or taken from the cache (`cache: false` skips the cache).
pub fn load_component(engine: &Engine, path: &Path, cache: bool) -> Result<(Component, LoadKind)> {
    let bytes = std::fs::read(path).map_err(|e| wasmtime::format_err!("reading {}: {e}", path.display()))?;
    match Engine::detect_precompiled(&bytes) {
        Some(Precompiled::Component) => {
            // SAFETY: the user handed us this file as a precompiled component
            // produced by `edgewasm compile`; wasmtime checks the version and
            // engine settings in its header before using it.
            let c = unsafe { Component::deserialize(engine, &bytes) }
                .map_err(|e| wasmtime::format_err!("{}: not loadable by this edgewasm build ({e}); recompile it with `edgewasm compile`", path.display()))?;
            return Ok((c, LoadKind::Precompiled));
        }
        Some(Precompiled::Module) => {
            wasmtime::bail!("{} is a precompiled core module; edgewasm runs components", path.display())
        }
        None => {}
    }
    if !bytes.starts_with(b"\0asm") {
        wasmtime::bail!("{} is not a WebAssembly component (.wasm) or precompiled component (.cwasm)", path.display());
    }
    // Layer byte: 0x01 (component) vs 0x00 (core module) in the version field.
    if bytes.len() >= 8 && bytes[6] == 0 && bytes[7] == 0 {
        wasmtime::bail!(
            "{} is a core wasm module; edgewasm runs components (build for wasm32-wasip2, or wrap with `wasm-tools component new`)",
            path.display()
        );
    }
    let entry = if cache { cache_dir().map(|d| d.join(format!("{}.cwasm", cache_key(engine, &bytes)))) } else { None };
    if let Some(entry) = &entry {
        if entry.is_file() {
            // SAFETY: cache entries are written only by `store` below from
            // `Component::serialize` of this same engine configuration (the
            // key covers version, target and settings); wasmtime re-checks the
            // header. A corrupt entry fails to deserialize and is recompiled.
            match unsafe { Component::deserialize_file(engine, entry) } {
                Ok(c) => return Ok((c, LoadKind::CacheHit)),
                Err(_) => {
                    let _ = std::fs::remove_file(entry);
                }
            }
        }
    }
    let component = Component::new(engine, &bytes)?;
    if let Some(entry) = &entry {
        if let Ok(ser) = component.serialize() {
            let _ = store(entry, &ser);
        }
    }
    Ok((component, LoadKind::Compiled))
}

/// What a `.wasm` or `.cwasm` file holds.
#[derive(Debug)]
pub enum Loaded {
    Component(Component),
    /// A core module (wasm32-wasip1, e.g. a WasmEdge/LlamaEdge app).
    Module(Module),
}

/// Whether `bytes` are a core wasm module (version 1, layer 0) rather than
/// a component (layer 1).
pub fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes.starts_with(b"\0asm") && bytes[6] == 0 && bytes[7] == 0
}

/// Loads `path` as a component or, by its header, a core module; both go
/// through the same compile cache.
pub fn load(engine: &Engine, path: &Path, cache: bool) -> Result<(Loaded, LoadKind)> {
    let bytes = std::fs::read(path).map_err(|e| wasmtime::format_err!("reading {}: {e}", path.display()))?;
    let core = match Engine::detect_precompiled(&bytes) {
        Some(Precompiled::Module) => true,
        Some(Precompiled::Component) => false,
        None => is_core_module(&bytes),
    };
    if !core {
        let (c, kind) = load_component(engine, path, cache)?;
        return Ok((Loaded::Component(c), kind));
    }
    if Engine::detect_precompiled(&bytes).is_some() {
        // SAFETY: as for components above: a `.cwasm` the user handed us,
        // produced by `edgewasm compile`; wasmtime checks the version and
        // engine settings in its header before using it.
        let m = unsafe { Module::deserialize(engine, &bytes) }
            .map_err(|e| wasmtime::format_err!("{}: not loadable by this edgewasm build ({e}); recompile it with `edgewasm compile`", path.display()))?;
        return Ok((Loaded::Module(m), LoadKind::Precompiled));
    }
    let entry = if cache { cache_dir().map(|d| d.join(format!("{}.cwasm", cache_key(engine, &bytes)))) } else { None };
    if let Some(entry) = &entry {
        if entry.is_file() {
            // SAFETY: cache entries are written only by `store` below from
            // `Module::serialize` of this same engine configuration (the key
            // covers version, target, settings and the bytes); wasmtime
            // re-checks the header. A corrupt entry is recompiled.
            match unsafe { Module::deserialize_file(engine, entry) } {
                Ok(m) => return Ok((Loaded::Module(m), LoadKind::CacheHit)),
                Err(_) => {
                    let _ = std::fs::remove_file(entry);
                }
            }
        }
    }
    let module = Module::new(engine, &bytes)?;
    if let Some(entry) = &entry {
        if let Ok(ser) = module.serialize() {
            let _ = store(entry, &ser);
        }
    }
    Ok((Loaded::Module(module), LoadKind::Compiled))
}

/// Writes `data` to `path` atomically (temp file + rename).
fn store(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), path.file_name().unwrap_or_default().to_string_lossy()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// Compiles `input` (a component or a core module) to a precompiled
/// `.cwasm` at `output`.
pub fn precompile(engine: &Engine, input: &Path, output: &Path) -> Result<std::time::Duration> {
    let bytes = std::fs::read(input).map_err(|e| wasmtime::format_err!("reading {}: {e}", input.display()))?;
    let t = Instant::now();
    let ser = if is_core_module(&bytes) { engine.precompile_module(&bytes)? } else { engine.precompile_component(&bytes)? };
    let took = t.elapsed();
    std::fs::write(output, ser).map_err(|e| wasmtime::format_err!("writing {}: {e}", output.display()))?;
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_depends_on_content_only_for_one_engine() {
        let e = crate::engine().unwrap();
        assert_eq!(cache_key(&e, b"abc"), cache_key(&e, b"abc"));
        assert_ne!(cache_key(&e, b"abc"), cache_key(&e, b"abd"));
        assert_eq!(cache_key(&e, b"").len(), 64);
    }

    #[test]
    fn core_modules_and_junk_are_rejected() {
        let e = crate::engine().unwrap();
        let dir = std::env::temp_dir().join(format!("edgewasm-cache-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let core = dir.join("core.wasm");
        std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
        let err = load_component(&e, &core, false).err().unwrap().to_string();
        assert!(err.contains("core wasm module"), "{err}");
        let junk = dir.join("junk.wasm");
        std::fs::write(&junk, b"hello").unwrap();
        assert!(load_component(&e, &junk, false).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn core_modules_load_and_cache() {
        let e = crate::engine().unwrap();
        let dir = std::env::temp_dir().join(format!("edgewasm-cache-test-core-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let core = dir.join("core.wasm");
        std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
        assert!(is_core_module(b"\0asm\x01\0\0\0"));
        assert!(!is_core_module(b"\0asm\x0d\0\x01\0"));
        let (m, kind) = load(&e, &core, false).unwrap();
        assert!(matches!(m, Loaded::Module(_)) && kind == LoadKind::Compiled);
        let cwasm = dir.join("core.cwasm");
        precompile(&e, &core, &cwasm).unwrap();
        let (m, kind) = load(&e, &cwasm, false).unwrap();
        assert!(matches!(m, Loaded::Module(_)) && kind == LoadKind::Precompiled);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
