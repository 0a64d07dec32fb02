//! `edgewasm quantize`: writes a model with other tensor types, as
//! llama.cpp's `llama-quantize --allow-requantize IN OUT TYPE` does without
//! an imatrix. The work is [`edgewasm_llm::quantize`]; this is the clap
//! glue and the report printed as it goes.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Parser;
use edgewasm_llm::quantize::{Ftype, Quantizer, TensorDone};

/// Quantize (or requantize) a GGUF model, tensor types chosen as llama-quantize chooses them.
#[derive(Parser, Debug)]
#[command(after_help = "Types (llama-quantize's names): q8_0 q4_0 q4_1 q5_0 q5_1 \
q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k f16 bf16 f32; \
q3_k, q4_k and q5_k are aliases of q3_k_m, q4_k_m and q5_k_m (as in llama.cpp).\n\
Without --pure, the output and tied token-embedding tensors get Q6_K (or Q8_0 when \
the row length does not fit) and the K mixtures give attn_v/ffn_down more bits, as \
llama.cpp does. Rows that do not fit a type's block fall back like llama.cpp \
(Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0, Q2_K/Q3_K→Q4_0, then F16).")]
pub struct QuantizeCommand {
    /// Input GGUF model (path, or a name in models/).
    input: String,
    /// Output GGUF file (must differ from the input).
    output: PathBuf,
    /// Target file type (see below).
    #[arg(long = "type", short = 't', value_name = "TYPE", value_parser = parse_ftype)]
    ftype: Ftype,
    /// Every quantizable tensor gets the type itself (llama-quantize --pure): no
    /// Q6_K output tensor, no K-quant mixture. Shape fallbacks still apply.
    #[arg(long)]
    pure: bool,
    /// Worker threads (default: all cores). The output does not depend on it.
    #[arg(long, short = 'j')]
    threads: Option<usize>,
    /// No per-tensor lines, only the summary.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_ftype(s: &str) -> Result<Ftype, String> {
    Ftype::from_name(s).ok_or_else(|| {
        let names: Vec<String> = Ftype::ALL.iter().map(|f| f.name().to_ascii_lowercase()).collect();
        format!("unknown type {s:?}; expected one of {} (or the aliases q3_k, q4_k, q5_k)", names.join(", "))
    })
}

impl QuantizeCommand {
    pub fn execute(self) -> Result<()> {
        let start = Instant::now();
        let threads = match self.threads.map(NonZeroUsize::new) {
            Some(None) => bail!("--threads must be at least 1"),
            Some(Some(n)) => n,
            None => NonZeroUsize::new(crate::models::default_threads()).unwrap_or(NonZeroUsize::MIN),
        };
        let input = crate::models::resolve(Some(&self.input))?;
        let q = Quantizer::new(&input, &self.output, self.ftype, self.pure)?;
        let n = q.n_tensors();
        let input_size = q.source().file_size();
        println!(
            "quantize: {} -> {} as {}{} (llama ftype {}), {n} tensors, {threads} thread{}",
            input.display(),
            self.output.display(),
            self.ftype,
            if self.pure { " --pure" } else { "" },
            self.ftype.id(),
            if threads.get() == 1 { "" } else { "s" }
        );
        let s = q.run(threads, |d| {
            if !self.quiet {
                print_line(d, n);
            }
        })?;
        let mib = |b: u64| b as f64 / 1048576.0;
        let bpw = |b: u64| b as f64 * 8.0 / s.n_elements.max(1) as f64;
        println!("quantize: {} of {n} tensors converted, {} copied", s.converted, n - s.converted);
        println!("quantize: model size {:8.2} MiB ({:.2} BPW)", mib(s.size_in), bpw(s.size_in));
        println!("quantize: quant size {:8.2} MiB ({:.2} BPW)", mib(s.size_out), bpw(s.size_out));
        println!(
            "quantize: wrote {} ({} bytes; input {input_size} bytes) in {:.2} s",
            self.output.display(),
            s.file_size,
            start.elapsed().as_secs_f64()
        );
        if s.fallbacks > 0 {
            println!(
                "quantize: warning: {} of {n} tensor(s) required fallback quantization (row length not a multiple of the block size)",
                s.fallbacks
            );
        }
        Ok(())
    }
}

fn print_line(d: &TensorDone<'_>, n: usize) {
    let (t, c) = (d.tensor, d.choice);
    let shape = t.dims.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let mib = |b: u64| b as f64 / 1048576.0;
    let what = if c.ty == t.ty {
        if c.allowed { "same type, copied" } else { "not quantized, copied" }
    } else {
        "converted"
    };
    let fallback = match c.fallback {
        Some((wanted, ncols)) => format!(" (wanted {wanted}: row length {ncols} is not a multiple of {})", wanted.block_size()),
        None => String::new(),
    };
    println!(
        "[{:>4}/{n}] {:<32} [{shape:>12}] {:>5} -> {:<5} {:8.3} -> {:8.3} MiB  {what} in {:.3} s{fallback}",
        d.index + 1,
        t.name,
        t.ty.name(),
        c.ty.name(),
        mib(t.size_bytes),
        mib(d.out_bytes as u64),
        d.elapsed.as_secs_f64()
    );
}
