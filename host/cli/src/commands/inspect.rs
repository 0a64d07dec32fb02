//! `edgewasm inspect`: a model file's metadata and tensor table, or the
//! machine's CPU features and kernel path.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use clap::Parser;
use edgewasm_gguf::{GgmlType, GgufFile};

use crate::models;

/// Show a model's metadata and tensors (or, with --system, this machine's kernel path).
#[derive(Parser, Debug)]
pub struct InspectCommand {
    /// Model file or name in models/ (default model when omitted).
    model: Option<String>,
    /// List every tensor, not only the per-type summary.
    #[arg(long)]
    tensors: bool,
    /// Show CPU features and the kernel path instead of a model.
    #[arg(long)]
    system: bool,
}

impl InspectCommand {
    pub fn execute(self) -> Result<()> {
        if self.system {
            print_system();
            return Ok(());
        }
        let path = models::resolve(self.model.as_deref())?;
        let g = GgufFile::open(&path).with_context(|| format!("reading {}", path.display()))?;
        println!("file: {}", path.display());
        println!("gguf version {}, alignment {}, {} bytes", g.version(), g.alignment(), g.file_size());
        println!("\nmetadata ({} keys):", g.metadata().len());
        for (k, v) in g.metadata() {
            println!("  {k:<44} {v}");
        }
        // Every ggml type is listed, including those the engine cannot run
        // (`generate` refuses them by name): inspecting such a file is how
        // to see why.
        let mut by_type: BTreeMap<GgmlType, (usize, u64, u64)> = BTreeMap::new();
        for t in g.tensors() {
            let e = by_type.entry(t.ty).or_default();
            e.0 += 1;
            e.1 += t.n_elements();
            e.2 += t.size_bytes;
        }
        println!("\ntensors ({}):", g.tensors().len());
        println!("  {:<7} {:>7} {:>14} {:>12}", "type", "count", "elements", "MiB");
        let (mut n, mut el, mut by) = (0, 0, 0);
        for (ty, (c, e, b)) in &by_type {
            println!("  {:<7} {:>7} {:>14} {:>12.2}", ty.name(), c, e, *b as f64 / 1048576.0);
            n += c;
            el += e;
            by += b;
        }
        println!("  {:<7} {:>7} {:>14} {:>12.2}", "total", n, el, by as f64 / 1048576.0);
        if self.tensors {
            println!();
            for t in g.tensors() {
                println!("  {:<40} {:<7} {:?}", t.name, t.ty.name(), t.dims);
            }
        }
        Ok(())
    }
}

/// CPU features and kernel paths (shared with `bench`).
pub fn print_system() {
    println!("arch: {}", std::env::consts::ARCH);
    println!("cpu features: {}", edgewasm_kernels::cpu_features().join(" "));
    let avail: Vec<_> = edgewasm_kernels::available_paths().iter().map(|p| p.name()).collect();
    println!("kernel paths available: {}", avail.join(" "));
    println!("kernel path in use: {}", edgewasm_kernels::active_path());
}
