//! Whole-model (re)quantization: a GGUF model written with other tensor
//! types, as llama.cpp's `llama-quantize --allow-requantize IN OUT TYPE`
//! does without an imatrix (`edgewasm quantize` is a thin layer over
//! [`Quantizer`]).
//!
//! It lives in this crate, not in `edgewasm-kernels` or `edgewasm-gguf`,
//! because the decisions are model-level: which type a tensor gets depends
//! on the architecture's hyper-parameters (layers, heads, experts), on the
//! tensor's role in the model (attention V, FFN down, tied embeddings) and
//! on the order llama.cpp visits the layers (`rules.rs`). The two crates
//! below only provide the pieces: the kernels' scalar reference
//! dequantize/quantize per row, and the GGUF reader and writer.
//!
//! Per-tensor types come from [`choose_types`] (llama.cpp's
//! `llama_tensor_get_type`). A tensor whose type changes is expanded to f32
//! and quantized with the target's scalar reference; a tensor whose type
//! stays is copied byte for byte. Tensors are written in llama.cpp's order
//! ([`llama_order`]) and all metadata is copied in order, with
//! `general.quantization_version` and `general.file_type` set (and moved to
//! the end) as llama.cpp sets them: for the same input and type the output
//! file is byte-identical to llama-quantize's.

mod convert;
mod ftype;
mod rules;

use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgewasm_gguf::{
    Array, GgmlType, GgufError, GgufFile, GgufWriter, TensorInfo, Value, KEY_SPLIT_COUNT, KEY_SPLIT_NO,
    KEY_SPLIT_TENSORS_COUNT,
};

pub use convert::ConvertError;
pub use ftype::Ftype;
pub use rules::{choose_types, llama_order, Choice, ModelInfo, RuleError, TensorDesc};

/// `general.quantization_version`: ggml's `GGML_QNT_VERSION`.
pub const GGML_QNT_VERSION: u32 = 2;
const KEY_FILE_TYPE: &str = "general.file_type";
const KEY_QNT_VERSION: &str = "general.quantization_version";

/// Everything that can stop a quantization. The `Display` of each variant
/// is its own step only; the cause is the [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    /// A file-system step (resolving a path, renaming the output) failed.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("output path {0} has no file name")]
    NoFileName(PathBuf),
    #[error("the output {0} is the input file; write to another path")]
    SameFile(PathBuf),
    #[error("the output {0} is a directory")]
    OutputIsDir(PathBuf),
    /// The input is not a readable GGUF file.
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: GgufError,
    },
    /// The hyper-parameters the type rules need are missing or malformed.
    #[error("reading the hyper-parameters of {path}")]
    Hyperparameters {
        path: PathBuf,
        #[source]
        source: HyperparameterError,
    },
    #[error(transparent)]
    Rules(#[from] RuleError),
    #[error("converting {tensor} from {from} to {to}")]
    Convert {
        tensor: String,
        from: GgmlType,
        to: GgmlType,
        #[source]
        source: ConvertError,
    },
    /// Building or writing the output GGUF failed (`context` says which step).
    #[error("{context}")]
    Write {
        context: String,
        #[source]
        source: GgufError,
    },
}

/// A hyper-parameter the type rules read ([`ModelInfo`]) is unusable.
#[derive(Debug, thiserror::Error)]
pub enum HyperparameterError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("missing {0}")]
    Missing(String),
    #[error("metadata {key} = {value} is not a u32 (or an array of them)")]
    NotU32 { key: String, value: String },
}

/// One tensor converted (or copied), reported as [`Quantizer::run`] goes.
#[derive(Debug)]
pub struct TensorDone<'a> {
    /// Position in the output (llama.cpp's order), from 0.
    pub index: usize,
    pub tensor: &'a TensorInfo,
    pub choice: &'a Choice,
    /// Bytes of the tensor in the output.
    pub out_bytes: usize,
    pub elapsed: Duration,
}

/// Totals of a finished run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub tensors: usize,
    /// Tensors whose type changed.
    pub converted: usize,
    /// Tensors that got a fallback type (row length not a multiple of the
    /// wanted type's block).
    pub fallbacks: usize,
    pub n_elements: u64,
    /// Tensor data bytes in the input and in the output.
    pub size_in: u64,
    pub size_out: u64,
    /// Size of the written output file.
    pub file_size: u64,
}

/// A planned quantization of one file into another: paths checked, types
/// chosen, metadata copied. [`Quantizer::run`] converts and writes.
#[derive(Debug)]
pub struct Quantizer {
    src: GgufFile,
    output: PathBuf,
    /// Indices into `src.tensors()`, in llama.cpp's order.
    order: Vec<usize>,
    choices: Vec<Choice>,
    writer: GgufWriter,
}

impl Quantizer {
    /// Refuses an `output` that is `input` (or a directory, or in a missing
    /// directory), opens `input`, reads the hyper-parameters and chooses
    /// every tensor's type for `ftype` (`pure`: llama-quantize's `--pure`).
    pub fn new(input: &Path, output: &Path, ftype: Ftype, pure: bool) -> Result<Quantizer, QuantizeError> {
        ensure_distinct(input, output)?;
        let src = GgufFile::open(input).map_err(|source| QuantizeError::Read { path: input.to_owned(), source })?;
        // A split input is read from all its shards (and written as one
        // file, as llama-quantize does without --keep-split): none of them
        // may be the output either.
        for shard in &src.shards()[1..] {
            ensure_distinct(shard.path(), output)?;
        }
        let model = model_info(&src)
            .map_err(|source| QuantizeError::Hyperparameters { path: input.to_owned(), source })?;
        let tensors = src.tensors();
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by(|&a, &b| llama_order(&tensors[a].name, &tensors[b].name));
        let descs: Vec<TensorDesc> = order
            .iter()
            .map(|&i| TensorDesc { name: tensors[i].name.clone(), dims: tensors[i].dims.clone(), ty: tensors[i].ty })
            .collect();
        let choices = choose_types(&model, ftype, pure, &descs)?;
        // GGUF v3 (the writer's default), as llama.cpp writes.
        let mut writer = GgufWriter::new();
        copy_metadata(&src, &mut writer, ftype)?;
        Ok(Quantizer { src, output: output.to_owned(), order, choices, writer })
    }

    /// The input file.
    pub fn source(&self) -> &GgufFile {
        &self.src
    }

    /// How many tensors the output will have (as many as the input).
    pub fn n_tensors(&self) -> usize {
        self.order.len()
    }

    /// Converts every tensor on `threads` threads (the output does not
    /// depend on the count), calling `progress` after each, and writes the
    /// output next to its final path and renames it, so a failed run leaves
    /// no truncated model behind.
    pub fn run(
        mut self,
        threads: NonZeroUsize,
        mut progress: impl FnMut(&TensorDone<'_>),
    ) -> Result<Summary, QuantizeError> {
        let mut sum = Summary { tensors: self.order.len(), converted: 0, fallbacks: 0, n_elements: 0, size_in: 0, size_out: 0, file_size: 0 };
        for (index, (&i, choice)) in self.order.iter().zip(&self.choices).enumerate() {
            let t0 = Instant::now();
            let t = &self.src.tensors()[i];
            let data = convert::convert_tensor(&self.src, t, choice.ty, threads).map_err(|source| {
                QuantizeError::Convert { tensor: t.name.clone(), from: t.ty, to: choice.ty, source }
            })?;
            sum.size_in += t.size_bytes;
            sum.size_out += data.len() as u64;
            sum.n_elements += t.n_elements();
            sum.converted += usize::from(choice.ty != t.ty);
            sum.fallbacks += usize::from(choice.fallback.is_some());
            progress(&TensorDone { index, tensor: t, choice, out_bytes: data.len(), elapsed: t0.elapsed() });
            self.writer.add_tensor(t.name.clone(), choice.ty, &t.dims, data).map_err(|source| {
                QuantizeError::Write { context: format!("adding {} to the output", t.name), source }
            })?;
        }
        let partial = partial_path(&self.output);
        let written = self
            .writer
            .write_file(&partial)
            .map_err(|source| QuantizeError::Write { context: format!("writing {}", partial.display()), source })
            .and_then(|()| {
                std::fs::rename(&partial, &self.output).map_err(|source| QuantizeError::Io {
                    context: format!("renaming {} to {}", partial.display(), self.output.display()),
                    source,
                })
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written?;
        sum.file_size = std::fs::metadata(&self.output).map(|m| m.len()).unwrap_or(0);
        Ok(sum)
    }
}

/// Refuses to overwrite the input: compares canonical paths (the output's
/// parent directory canonicalized when the file does not exist yet).
fn ensure_distinct(input: &Path, output: &Path) -> Result<(), QuantizeError> {
    let io_err = |context: String| move |source| QuantizeError::Io { context, source };
    let canon_in = input.canonicalize().map_err(io_err(format!("resolving {}", input.display())))?;
    let canon_out = match output.canonicalize() {
        Ok(p) => p,
        Err(_) => {
            let name = output.file_name().ok_or_else(|| QuantizeError::NoFileName(output.to_owned()))?;
            let parent = match output.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let parent = parent
                .canonicalize()
                .map_err(io_err(format!("the output directory {} does not exist", parent.display())))?;
            parent.join(name)
        }
    };
    if canon_in == canon_out {
        return Err(QuantizeError::SameFile(output.to_owned()));
    }
    if canon_out.is_dir() {
        return Err(QuantizeError::OutputIsDir(output.to_owned()));
    }
    Ok(())
}

fn partial_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

/// An integer key, or the first element of a per-layer integer array.
fn first_u32(g: &GgufFile, key: &str) -> Result<Option<u32>, HyperparameterError> {
    let Some(v) = g.get(key) else { return Ok(None) };
    let n = match v {
        Value::Array(Array::U32(a)) => a.first().copied(),
        Value::Array(Array::I32(a)) => a.first().and_then(|&x| u32::try_from(x).ok()),
        v => v.as_u32(),
    };
    n.map(Some).ok_or_else(|| HyperparameterError::NotU32 { key: key.to_owned(), value: v.to_string() })
}

/// The hyper-parameters the type rules need.
fn model_info(g: &GgufFile) -> Result<ModelInfo, HyperparameterError> {
    let arch = g.architecture()?.to_owned();
    let block_count = format!("{arch}.block_count");
    let n_layer = first_u32(g, &block_count)?.ok_or(HyperparameterError::Missing(block_count))?;
    let n_head = first_u32(g, &format!("{arch}.attention.head_count"))?.unwrap_or(0);
    let n_head_kv = first_u32(g, &format!("{arch}.attention.head_count_kv"))?.unwrap_or(n_head);
    let n_expert = first_u32(g, &format!("{arch}.expert_count"))?.unwrap_or(0);
    Ok(ModelInfo { arch, n_layer, n_head, n_head_kv, n_expert })
}

/// Every metadata pair in order, then `general.quantization_version` and
/// `general.file_type`: llama.cpp copies the pairs (`gguf_set_kv`) and then
/// sets those two with `gguf_set_val_u32`, which removes a key and appends
/// it, so they move to the end. With llama.cpp's tensor order and types this
/// makes the whole file byte-identical to llama-quantize's. The `split.*`
/// keys of a split input are dropped, as llama.cpp drops them: the output
/// is one file.
fn copy_metadata(src: &GgufFile, w: &mut GgufWriter, ftype: Ftype) -> Result<(), QuantizeError> {
    let add = |w: &mut GgufWriter, k: &str, v: Value| {
        w.add_metadata(k.to_owned(), v)
            .map(|_| ())
            .map_err(|source| QuantizeError::Write { context: format!("copying metadata {k}"), source })
    };
    for (k, v) in src.metadata() {
        let split = [KEY_SPLIT_NO, KEY_SPLIT_COUNT, KEY_SPLIT_TENSORS_COUNT].contains(&k.as_str());
        if k != KEY_FILE_TYPE && k != KEY_QNT_VERSION && !split {
            add(w, k, v.clone())?;
        }
    }
    add(w, KEY_QNT_VERSION, Value::U32(GGML_QNT_VERSION))?;
    add(w, KEY_FILE_TYPE, Value::U32(ftype.id()))
}
