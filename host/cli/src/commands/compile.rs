//! `edgewasm compile`: precompile a component to `.cwasm` for this
//! edgewasm build and CPU (loads in milliseconds with `edgewasm run`).

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Parser;

/// Precompile a component (`APP.wasm` → `APP.cwasm`).
#[derive(Parser, Debug)]
pub struct CompileCommand {
    /// The component to compile.
    #[arg(value_name = "APP.wasm")]
    input: PathBuf,
    /// Output file (default: the input with extension .cwasm).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

impl CompileCommand {
    pub fn execute(self) -> Result<()> {
        let output = self.output.clone().unwrap_or_else(|| self.input.with_extension("cwasm"));
        let engine = edgewasm_runtime::engine().map_err(anyhow::Error::from)?;
        let took = edgewasm_runtime::cache::precompile(&engine, &self.input, &output)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling {}", self.input.display()))?;
        eprintln!("compiled {} → {} in {:.2} s", self.input.display(), output.display(), took.as_secs_f64());
        Ok(())
    }
}
