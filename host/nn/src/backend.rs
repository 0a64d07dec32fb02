//! The wasmtime-wasi-nn backend traits over the engine logic: tensor
//! conversion and input/output naming only.
//!
//! Text mode: inputs `prompt` (u8, UTF-8) and optional `config` (u8, JSON)
//! → outputs `text` (u8) and `metadata` (u8, JSON). Token mode: input
//! `tokens` (i32 or i64) and optional `n-past` → output `logits` (f32
//! `[n_vocab]`, last position). See wit/README.md.

use std::sync::Arc;

use edgewasm_llm::Model;
use wasmtime_wasi_nn::backend::{BackendError, BackendExecutionContext, BackendFromDir, BackendGraph, BackendInner, Id, NamedTensor};
use wasmtime_wasi_nn::wit::{ExecutionTarget, GraphEncoding, TensorType};
use wasmtime_wasi_nn::{ExecutionContext, Graph, Tensor};

use crate::config::TextConfig;
use crate::engine::{GuestEnv, LlmContext};
use crate::error::{NnError, NnResult};

/// The GGUF magic, little-endian `GGUF`.
pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// Wraps a guest-visible error for the backend traits (recovered by
/// [`crate::wit`] with a downcast, so the guest sees the right code).
pub fn backend_error(e: NnError) -> BackendError {
    BackendError::BackendAccess(wasmtime::Error::from(e))
}

/// The backend: loads GGUF models from guest bytes (encoding `ggml`, or
/// `autodetect` with the GGUF magic).
#[derive(Debug)]
pub struct GgmlBackend {
    env: Arc<GuestEnv>,
}

impl GgmlBackend {
    pub fn new(env: Arc<GuestEnv>) -> GgmlBackend {
        GgmlBackend { env }
    }

    /// Loads a model from guest bytes, under the `load` size limit.
    pub fn load_bytes(&self, builders: &[&[u8]]) -> NnResult<Graph> {
        let [bytes] = builders else {
            return Err(NnError::invalid(format!("expected one graph builder (a GGUF file), got {}", builders.len())));
        };
        let model = self.env.load_guest_bytes(bytes)?;
        Ok(graph(&self.env, model))
    }
}

impl BackendInner for GgmlBackend {
    fn encoding(&self) -> GraphEncoding {
        GraphEncoding::Ggml
    }
    fn load(&mut self, builders: &[&[u8]], target: ExecutionTarget) -> Result<Graph, BackendError> {
        if !matches!(target, ExecutionTarget::Cpu) {
            // No accelerators: run on the CPU (as WasmEdge's AUTO does).
        }
        self.load_bytes(builders).map_err(backend_error)
    }
    fn as_dir_loadable(&mut self) -> Option<&mut dyn BackendFromDir> {
        None
    }
}

/// A graph: one shared model.
#[derive(Debug)]
pub struct LlmGraph {
    env: Arc<GuestEnv>,
    model: Arc<Model>,
}

/// Wraps `model` as a wasi-nn graph for a guest.
pub fn graph(env: &Arc<GuestEnv>, model: Arc<Model>) -> Graph {
    Graph::from(Box::new(LlmGraph { env: Arc::clone(env), model }) as Box<dyn BackendGraph>)
}

impl BackendGraph for LlmGraph {
    fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
        let ctx = LlmContext::new(&self.env, Arc::clone(&self.model), None).map_err(backend_error)?;
        Ok(ExecutionContext::from(
            Box::new(LlmExecutionContext { ctx, inputs: Vec::new(), outputs: Vec::new() }) as Box<dyn BackendExecutionContext>
        ))
    }
}

/// An execution context: a KV cache that persists across `compute` calls.
#[derive(Debug)]
pub struct LlmExecutionContext {
    ctx: LlmContext,
    /// Inputs and outputs of the witx (preview1) path.
    inputs: Vec<(String, Tensor)>,
    outputs: Vec<(String, Tensor)>,
}

/// Canonical input names; WasmEdge-style indices map to them.
fn input_name(id: &Id) -> String {
    match id {
        Id::Name(n) => n.clone(),
        Id::Index(0) => "prompt".into(),
        Id::Index(1) => "config".into(),
        Id::Index(i) => i.to_string(),
    }
}

impl LlmExecutionContext {
    fn run(&mut self, inputs: Vec<(String, Tensor)>) -> NnResult<Vec<(String, Tensor)>> {
        let find = |name: &str, alias: &str| inputs.iter().find(|(n, _)| n == name || n == alias).map(|(_, t)| t);
        if let Some(t) = find("tokens", "input_ids") {
            let tokens = token_ids(t)?;
            let keep = match find("n-past", "n_past") {
                Some(t) => {
                    let v = token_ids(t).map_err(|_| NnError::invalid("`n-past` must be one i32/i64 value"))?;
                    match v.as_slice() {
                        [n] => Some(*n as usize),
                        _ => return Err(NnError::invalid("`n-past` must be one i32/i64 value")),
                    }
                }
                None => None,
            };
            let logits = self.ctx.eval_tokens(&tokens, keep)?;
            let data: Vec<u8> = logits.iter().flat_map(|x| x.to_le_bytes()).collect();
            return Ok(vec![("logits".into(), Tensor::new(vec![logits.len() as u32], TensorType::Fp32, data))]);
        }
        let prompt = match find("prompt", "0") {
            Some(t) => Some(utf8(t, "prompt")?),
            None => None,
        };
        let config = match find("config", "1") {
            Some(t) => {
                bytes_of(t, "config")?;
                let (c, unknown) = TextConfig::parse(&t.data)?;
                for k in unknown {
                    log::warn!(target: "edgewasm-nn", "ignoring unknown config key `{k}`");
                }
                c
            }
            None => TextConfig::default(),
        };
        if let Some((n, _)) = inputs
            .iter()
            .find(|(n, _)| !["prompt", "0", "config", "1"].contains(&n.as_str()))
        {
            return Err(NnError::invalid(format!(
                "unknown input `{n}` (text mode: `prompt`, `config`; token mode: `tokens`, `n-past`)"
            )));
        }
        if prompt.is_none() && config.messages.is_none() {
            return Err(NnError::invalid("no input: give `prompt` (text mode) or `tokens` (token mode)"));
        }
        let out = self.ctx.complete_text(prompt.as_deref(), &config)?;
        let text = out.text.into_bytes();
        let meta = serde_json::to_vec(&out.metadata).unwrap_or_default();
        Ok(vec![
            ("text".into(), Tensor::new(vec![text.len() as u32], TensorType::U8, text)),
            ("metadata".into(), Tensor::new(vec![meta.len() as u32], TensorType::U8, meta)),
        ])
    }
}

fn bytes_of<'a>(t: &'a Tensor, name: &str) -> NnResult<&'a [u8]> {
    if t.ty != TensorType::U8 {
        return Err(NnError::invalid(format!("`{name}` must be a u8 tensor, got {:?}", t.ty)));
    }
    Ok(&t.data)
}

fn utf8(t: &Tensor, name: &str) -> NnResult<String> {
    let b = bytes_of(t, name)?;
    String::from_utf8(b.to_vec()).map_err(|_| NnError::invalid(format!("`{name}` is not valid UTF-8")))
}

/// Element count from dimensions, rejecting overflow.
fn element_count(dims: &[u32]) -> NnResult<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
        .ok_or_else(|| NnError::invalid(format!("tensor dimensions {dims:?} overflow")))
}

/// Token ids from an i32 or i64 tensor whose dimensions match its data.
fn token_ids(t: &Tensor) -> NnResult<Vec<u32>> {
    let width = match t.ty {
        TensorType::I32 => 4,
        TensorType::I64 => 8,
        other => return Err(NnError::invalid(format!("`tokens` must be an i32 or i64 tensor, got {other:?}"))),
    };
    let n = element_count(&t.dimensions)?;
    if n.checked_mul(width) != Some(t.data.len()) {
        return Err(NnError::invalid(format!(
            "tensor dimensions {:?} ({n} elements of {width} bytes) do not match its {} data bytes",
            t.dimensions,
            t.data.len()
        )));
    }
    t.data
        .chunks_exact(width)
        .map(|c| {
            let v = if width == 4 { i32::from_le_bytes(c.try_into().unwrap()) as i64 } else { i64::from_le_bytes(c.try_into().unwrap()) };
            u32::try_from(v).map_err(|_| NnError::invalid(format!("token id {v} is out of range")))
        })
        .collect()
}

impl BackendExecutionContext for LlmExecutionContext {
    fn set_input(&mut self, id: Id, tensor: &Tensor) -> Result<(), BackendError> {
        let name = input_name(&id);
        self.inputs.retain(|(n, _)| *n != name);
        self.inputs.push((name, tensor.clone()));
        Ok(())
    }

    fn get_output(&mut self, id: Id) -> Result<Tensor, BackendError> {
        let found = match &id {
            Id::Name(n) => self.outputs.iter().find(|(m, _)| m == n),
            Id::Index(i) => self.outputs.get(*i as usize),
        };
        found
            .map(|(_, t)| t.clone())
            .ok_or_else(|| backend_error(NnError::invalid(format!("no output {id:?} (run compute first)"))))
    }

    fn compute(&mut self, inputs: Option<Vec<NamedTensor>>) -> Result<Option<Vec<NamedTensor>>, BackendError> {
        match inputs {
            Some(inputs) => {
                let inputs = inputs.into_iter().map(|t| (t.name, t.tensor)).collect();
                let out = self.run(inputs).map_err(backend_error)?;
                Ok(Some(out.into_iter().map(|(name, tensor)| NamedTensor { name, tensor }).collect()))
            }
            None => {
                let inputs = std::mem::take(&mut self.inputs);
                self.outputs = self.run(inputs).map_err(backend_error)?;
                Ok(None)
            }
        }
    }
}
