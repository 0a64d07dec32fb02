//! `edgewasm quantize`: writes a model with other tensor types, as
//! llama.cpp's `llama-quantize --allow-requantize IN OUT TYPE` does without
//! an imatrix.
//!
//! Per-tensor types come from [`crate::quant_rules`] (llama.cpp's
//! `llama_tensor_get_type`). A tensor whose type changes is expanded to f32
//! with the source type's dequantize (ggml's `dequantize_row_*`) and
//! quantized with the target's scalar reference (ggml's
//! `quantize_row_*_ref`, which is what `ggml_quantize_chunk` runs without an
//! imatrix); a tensor whose type stays is copied byte for byte. Tensors are
//! written in llama.cpp's order and all metadata is copied in order, with
//! `general.quantization_version` and `general.file_type` set (and moved to
//! the end) as llama.cpp sets them: for the same input and type the output
//! file is byte-identical to llama-quantize's.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context as _, Result};
use clap::Parser;
use edgewasm_gguf::{Array, GgmlType, GgufFile, GgufWriter, TensorInfo, Value};
use edgewasm_kernels::{kernels_for_path, AlignedBuf, KernelPath, TypeKernels};

use crate::quant_rules::{choose_types, llama_order, Choice, Ftype, ModelInfo, TensorDesc};

/// `general.quantization_version`: ggml's `GGML_QNT_VERSION`.
pub const GGML_QNT_VERSION: u32 = 2;
const KEY_FILE_TYPE: &str = "general.file_type";
const KEY_QNT_VERSION: &str = "general.quantization_version";

/// Rows converted at a time per thread (bounds the f32 scratch memory).
const SLAB_ELEMENTS: usize = 1 << 20;

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
        let input = crate::models::resolve(Some(&self.input))?;
        ensure_distinct(&input, &self.output)?;
        let threads = match self.threads {
            Some(0) => bail!("--threads must be at least 1"),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let src = GgufFile::open(&input).with_context(|| format!("reading {}", input.display()))?;
        let model = model_info(&src).with_context(|| format!("reading the hyper-parameters of {}", input.display()))?;

        // llama.cpp's visiting (and writing) order.
        let mut order: Vec<&TensorInfo> = src.tensors().iter().collect();
        order.sort_by(|a, b| llama_order(&a.name, &b.name));
        let descs: Vec<TensorDesc> =
            order.iter().map(|t| TensorDesc { name: t.name.clone(), dims: t.dims.clone(), ty: t.ty }).collect();
        let choices = choose_types(&model, self.ftype, self.pure, &descs)?;

        // GGUF v3, as llama.cpp writes.
        let mut w = GgufWriter::new();
        copy_metadata(&src, &mut w, self.ftype)?;

        println!(
            "quantize: {} -> {} as {}{} (llama ftype {}), {} tensors, {threads} thread{}",
            input.display(),
            self.output.display(),
            self.ftype,
            if self.pure { " --pure" } else { "" },
            self.ftype.id(),
            order.len(),
            if threads == 1 { "" } else { "s" }
        );
        let (mut size_in, mut size_out, mut n_elements) = (0u64, 0u64, 0u64);
        let (mut n_converted, mut n_fallback) = (0usize, 0usize);
        for (i, (t, c)) in order.iter().zip(&choices).enumerate() {
            let t0 = Instant::now();
            let data = convert_tensor(&src, t, c.ty, threads)
                .with_context(|| format!("converting {} from {} to {}", t.name, t.ty, c.ty))?;
            size_in += t.size_bytes;
            size_out += data.len() as u64;
            n_elements += t.n_elements();
            n_converted += usize::from(c.ty != t.ty);
            n_fallback += usize::from(c.fallback.is_some());
            if !self.quiet {
                print_line(i, order.len(), t, c, data.len(), t0.elapsed().as_secs_f64());
            }
            w.add_tensor(t.name.clone(), c.ty, &t.dims, data)
                .with_context(|| format!("adding {} to the output", t.name))?;
        }

        // Written next to the output and renamed, so a failed run leaves no
        // truncated model behind.
        let partial = partial_path(&self.output);
        let written = w
            .write_file(&partial)
            .with_context(|| format!("writing {}", partial.display()))
            .and_then(|()| {
                std::fs::rename(&partial, &self.output)
                    .with_context(|| format!("renaming {} to {}", partial.display(), self.output.display()))
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written?;

        let mib = |b: u64| b as f64 / 1048576.0;
        let bpw = |b: u64| b as f64 * 8.0 / n_elements.max(1) as f64;
        println!(
            "quantize: {} of {} tensors converted, {} copied",
            n_converted,
            order.len(),
            order.len() - n_converted
        );
        println!("quantize: model size {:8.2} MiB ({:.2} BPW)", mib(size_in), bpw(size_in));
        println!("quantize: quant size {:8.2} MiB ({:.2} BPW)", mib(size_out), bpw(size_out));
        let file_size = std::fs::metadata(&self.output).map(|m| m.len()).unwrap_or(0);
        println!(
            "quantize: wrote {} ({} bytes; input {} bytes) in {:.2} s",
            self.output.display(),
            file_size,
            src.file_size(),
            start.elapsed().as_secs_f64()
        );
        if n_fallback > 0 {
            println!(
                "quantize: warning: {n_fallback} of {} tensor(s) required fallback quantization (row length not a multiple of the block size)",
                order.len()
            );
        }
        Ok(())
    }
}

fn print_line(i: usize, n: usize, t: &TensorInfo, c: &Choice, out_bytes: usize, secs: f64) {
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
        i + 1,
        t.name,
        t.ty.name(),
        c.ty.name(),
        mib(t.size_bytes),
        mib(out_bytes as u64),
        secs
    );
}

/// Refuses to overwrite the input: compares canonical paths (the output's
/// parent directory canonicalized when the file does not exist yet).
fn ensure_distinct(input: &Path, output: &Path) -> Result<()> {
    let canon_in = input.canonicalize().with_context(|| format!("resolving {}", input.display()))?;
    let canon_out = match output.canonicalize() {
        Ok(p) => p,
        Err(_) => {
            let name = output.file_name().with_context(|| format!("output path {} has no file name", output.display()))?;
            let parent = match output.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let parent = parent
                .canonicalize()
                .with_context(|| format!("the output directory {} does not exist", parent.display()))?;
            parent.join(name)
        }
    };
    ensure!(canon_in != canon_out, "the output {} is the input file; write to another path", output.display());
    ensure!(!canon_out.is_dir(), "the output {} is a directory", output.display());
    Ok(())
}

fn partial_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

/// An integer key, or the first element of a per-layer integer array.
fn first_u32(g: &GgufFile, key: &str) -> Result<Option<u32>> {
    let Some(v) = g.get(key) else { return Ok(None) };
    let n = match v {
        Value::Array(Array::U32(a)) => a.first().copied(),
        Value::Array(Array::I32(a)) => a.first().and_then(|&x| u32::try_from(x).ok()),
        v => v.as_u32(),
    };
    n.map(Some).with_context(|| format!("metadata {key} = {v} is not a u32 (or an array of them)"))
}

/// The hyper-parameters the type rules need.
fn model_info(g: &GgufFile) -> Result<ModelInfo> {
    let arch = g.architecture()?.to_owned();
    let n_layer = first_u32(g, &format!("{arch}.block_count"))?
        .with_context(|| format!("missing {arch}.block_count"))?;
    let n_head = first_u32(g, &format!("{arch}.attention.head_count"))?.unwrap_or(0);
    let n_head_kv = first_u32(g, &format!("{arch}.attention.head_count_kv"))?.unwrap_or(n_head);
    let n_expert = first_u32(g, &format!("{arch}.expert_count"))?.unwrap_or(0);
    Ok(ModelInfo { arch, n_layer, n_head, n_head_kv, n_expert })
}

/// Every metadata pair in order, then `general.quantization_version` and
/// `general.file_type`: llama.cpp copies the pairs (`gguf_set_kv`) and then
/// sets those two with `gguf_set_val_u32`, which removes a key and appends
/// it, so they move to the end. With llama.cpp's tensor order and types this
/// makes the whole file byte-identical to llama-quantize's.
fn copy_metadata(src: &GgufFile, w: &mut GgufWriter, ftype: Ftype) -> Result<()> {
    for (k, v) in src.metadata() {
        if k != KEY_FILE_TYPE && k != KEY_QNT_VERSION {
            w.add_metadata(k.clone(), v.clone()).with_context(|| format!("copying metadata {k}"))?;
        }
    }
    w.add_metadata(KEY_QNT_VERSION, Value::U32(GGML_QNT_VERSION))?;
    w.add_metadata(KEY_FILE_TYPE, Value::U32(ftype.id()))?;
    Ok(())
}

/// The scalar reference kernels of `ty` (its `to_float` is ggml's
/// `dequantize_row_*`, its `from_float` ggml's `quantize_row_*_ref`).
fn reference_kernels(ty: GgmlType) -> Result<TypeKernels> {
    kernels_for_path(ty, KernelPath::Scalar).with_context(|| format!("no {ty} kernels"))
}

/// The tensor's data in type `to`: a copy when the type is unchanged, else
/// dequantized and requantized row by row, in slabs, on `threads` threads.
fn convert_tensor(src: &GgufFile, t: &TensorInfo, to: GgmlType, threads: usize) -> Result<Vec<u8>> {
    let data = src.tensor_data(t);
    ensure!(data.len() as u64 == t.size_bytes, "tensor data is truncated");
    if to == t.ty {
        return Ok(data.to_vec());
    }
    ensure!(
        !matches!(to, GgmlType::Q8_1 | GgmlType::Q8_K),
        "{to} is an activation format, not a weight type"
    );
    let n_per_row = usize::try_from(t.row_len())?;
    let n_rows = usize::try_from(t.n_rows())?;
    let row_in = usize::try_from(t.row_bytes())?;
    let row_out = to
        .row_bytes(t.row_len())
        .with_context(|| format!("row length {n_per_row} is not a multiple of the {to} block size {}", to.block_size()))?;
    let row_out = usize::try_from(row_out)?;
    let dequant = reference_kernels(t.ty)?;
    let quant = reference_kernels(to)?;
    let mut out = vec![0u8; n_rows.checked_mul(row_out).context("output size overflows")?];
    if n_rows == 0 || row_out == 0 {
        return Ok(out);
    }
    let slab_rows = (SLAB_ELEMENTS / n_per_row.max(1)).max(1);
    let rows_per_thread = n_rows.div_ceil(threads.max(1)).max(1);
    let work = |first_row: usize, dst: &mut [u8]| -> Result<()> {
        let mut f32_buf = vec![0f32; slab_rows.min(dst.len() / row_out) * n_per_row];
        let mut in_buf = AlignedBuf::new();
        let mut q_buf = AlignedBuf::new();
        for (k, dst) in dst.chunks_mut(slab_rows * row_out).enumerate() {
            let rows = dst.len() / row_out;
            let r0 = first_row + k * slab_rows;
            let src_bytes = &data[r0 * row_in..(r0 + rows) * row_in];
            // Mapped tensor data is aligned; a file with general.alignment < 4
            // might not be, and the kernels need aligned blocks.
            let src_bytes = if (src_bytes.as_ptr() as usize).is_multiple_of(4) {
                src_bytes
            } else {
                in_buf.resize(src_bytes.len());
                in_buf.as_bytes_mut().copy_from_slice(src_bytes);
                in_buf.as_bytes()
            };
            let f = &mut f32_buf[..rows * n_per_row];
            for (r, (s, d)) in src_bytes.chunks_exact(row_in).zip(f.chunks_exact_mut(n_per_row)).enumerate() {
                (dequant.to_float)(s, d);
                if let Some(j) = d.iter().position(|x| !x.is_finite()) {
                    bail!("row {} element {j} is {} (non-finite values cannot be quantized)", r0 + r, d[j]);
                }
            }
            q_buf.resize(dst.len());
            for (s, d) in f.chunks_exact(n_per_row).zip(q_buf.as_bytes_mut().chunks_exact_mut(row_out)) {
                (quant.from_float)(s, d);
            }
            dst.copy_from_slice(q_buf.as_bytes());
        }
        Ok(())
    };
    if threads <= 1 || n_rows <= rows_per_thread {
        work(0, &mut out)?;
    } else {
        std::thread::scope(|s| -> Result<()> {
            let handles: Vec<_> = out
                .chunks_mut(rows_per_thread * row_out)
                .enumerate()
                .map(|(i, chunk)| {
                    let work = &work;
                    s.spawn(move || work(i * rows_per_thread, chunk))
                })
                .collect();
            for h in handles {
                match h.join() {
                    Ok(r) => r?,
                    Err(_) => bail!("a quantization thread panicked"),
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}
