//! The `wasi:nn@0.2.0-rc-2024-10-28` WIT glue.
//!
//! Like `wasmtime_wasi_nn::wit`, but it keeps the error code the backend
//! chose (`invalid-argument`, `too-large`, `timeout`, ...) instead of
//! reporting every backend failure as `runtime-error`, and it routes
//! `autodetect` to the GGML backend. Graphs, tensors and execution
//! contexts are wasmtime-wasi-nn's types, so any
//! `wasmtime_wasi_nn::backend` implementation plugs in here.

use std::sync::Arc;

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi_nn::{Backend, ExecutionContext, Graph, Registry, Tensor};

use crate::backend::GgmlBackend;
use crate::engine::GuestEnv;
use crate::error::{ErrorCode, NnError};
use crate::handles::HandleBudget;
use crate::registry::NnRegistry;

mod generated {
    wasmtime::component::bindgen!({
        world: "ml",
        path: "../../wit/deps/wasi-nn.wit",
        with: {
            "wasi:nn/graph.graph": wasmtime_wasi_nn::Graph,
            "wasi:nn/tensor.tensor": wasmtime_wasi_nn::Tensor,
            "wasi:nn/inference.graph-execution-context": wasmtime_wasi_nn::ExecutionContext,
            "wasi:nn/errors.error": super::GuestError,
        },
        imports: { default: trappable },
    });
}

use generated::wasi::nn as g;

/// The error resource a guest holds.
#[derive(Debug)]
pub struct GuestError {
    pub code: ErrorCode,
    pub data: String,
}

/// wasi-nn state of one store.
pub struct WasiNn {
    backend: Backend,
    registry: Registry,
    env: Arc<GuestEnv>,
    /// Data bytes of the tensors in the guest's resource table (inputs it
    /// made, outputs it was given and has not dropped).
    tensor_bytes: usize,
    /// Live wasi:nn and edgewasm:llm resources (`--max-handles`).
    handles: HandleBudget,
}

impl std::fmt::Debug for WasiNn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasiNn").finish_non_exhaustive()
    }
}

impl WasiNn {
    /// The GGML backend and the preloaded graphs, under `env`'s limits.
    pub fn new(env: &Arc<GuestEnv>) -> WasiNn {
        WasiNn {
            backend: Backend::from(GgmlBackend::new(Arc::clone(env))),
            registry: Registry::from(NnRegistry::new(env)),
            env: Arc::clone(env),
            tensor_bytes: 0,
            handles: HandleBudget::new(env.limits.max_handles),
        }
    }

    /// The guest's live-resource count, shared with edgewasm:llm.
    pub fn handles_mut(&mut self) -> &mut HandleBudget {
        &mut self.handles
    }

    /// Data bytes of the guest's live tensors.
    pub fn tensor_bytes(&self) -> usize {
        self.tensor_bytes
    }

    /// Counts `len` more tensor bytes, if the guest stays within
    /// `--max-tensor-memory`.
    fn reserve_tensor(&mut self, len: usize) -> Result<(), NnError> {
        let max = self.env.limits.max_tensor_bytes;
        match self.tensor_bytes.checked_add(len) {
            Some(t) if t <= max => {
                self.tensor_bytes = t;
                Ok(())
            }
            _ => Err(NnError::too_large(format!(
                "wasi:nn tensors of {len} more bytes would exceed the guest's limit of {max} bytes of live tensors (--max-tensor-memory; {} held)",
                self.tensor_bytes
            ))),
        }
    }
}

/// What the glue borrows from the store.
pub struct WasiNnView<'a> {
    pub nn: &'a mut WasiNn,
    pub table: &'a mut ResourceTable,
}

impl std::fmt::Debug for WasiNnView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasiNnView").finish_non_exhaustive()
    }
}

impl<'a> WasiNnView<'a> {
    pub fn new(table: &'a mut ResourceTable, nn: &'a mut WasiNn) -> Self {
        WasiNnView { nn, table }
    }

    fn err<T>(&mut self, e: NnError) -> wasmtime::Result<Result<T, Resource<GuestError>>> {
        if std::env::var_os("EDGEWASM_LOG").is_some() {
            log::warn!(target: "edgewasm-nn", "{e}");
        }
        // An error is a resource too: a guest that keeps failing and never
        // drops its errors is stopped, as it cannot be told any other way.
        self.nn.handles.acquire_error().map_err(|e| wasmtime::format_err!("wasi:nn: {e}"))?;
        let data = truncate(e.message, MAX_ERROR_DATA);
        let r = self.table.push(GuestError { code: e.code, data })?;
        Ok(Err(r))
    }

    /// Counts one more resource of kind `what` against `--max-handles`.
    fn acquire(&mut self, n: usize, what: &str) -> Result<(), NnError> {
        self.nn.handles.acquire(n, what)
    }

    /// Removes `t` from the table, with its bytes and its handle count.
    fn delete_tensor(&mut self, t: Resource<Tensor>) -> wasmtime::Result<Tensor> {
        let t = self.table.delete(t)?;
        self.nn.tensor_bytes = self.nn.tensor_bytes.saturating_sub(t.data.len());
        self.nn.handles.release();
        Ok(t)
    }
}

/// Most bytes of an error's text: messages may quote guest strings (a
/// model name of any length), and a guest may hold thousands of errors.
const MAX_ERROR_DATA: usize = 4096;

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// Recovers the guest-visible error from a backend error.
fn classify(e: wasmtime_wasi_nn::backend::BackendError) -> NnError {
    use wasmtime_wasi_nn::backend::BackendError as B;
    match e {
        B::BackendAccess(inner) => match inner.downcast_ref::<NnError>() {
            Some(nn) => nn.clone(),
            None => NnError::runtime(format!("{inner:#}")),
        },
        B::NotEnoughMemory(n) => NnError::too_large(format!("not enough memory for {n} bytes")),
        B::UnsupportedTensorType(t) => NnError::invalid(format!("unsupported tensor type {t}")),
        B::InvalidNumberOfBuilders(want, got) => NnError::invalid(format!("expected {want} graph builders, got {got}")),
        other => NnError::runtime(other.to_string()),
    }
}

/// Adds wasi:nn to `linker`.
pub fn add_to_linker<T: 'static>(
    l: &mut wasmtime::component::Linker<T>,
    f: fn(&mut T) -> WasiNnView<'_>,
) -> wasmtime::Result<()> {
    g::graph::add_to_linker::<_, HasWasiNn>(l, f)?;
    g::tensor::add_to_linker::<_, HasWasiNn>(l, f)?;
    g::inference::add_to_linker::<_, HasWasiNn>(l, f)?;
    g::errors::add_to_linker::<_, HasWasiNn>(l, f)?;
    Ok(())
}

struct HasWasiNn;

impl HasData for HasWasiNn {
    type Data<'a> = WasiNnView<'a>;
}

fn tensor_type_in(t: g::tensor::TensorType) -> wasmtime_wasi_nn::wit::TensorType {
    use g::tensor::TensorType as A;
    use wasmtime_wasi_nn::wit::TensorType as B;
    match t {
        A::Fp16 => B::Fp16,
        A::Fp32 => B::Fp32,
        A::Fp64 => B::Fp64,
        A::Bf16 => B::Bf16,
        A::U8 => B::U8,
        A::I32 => B::I32,
        A::I64 => B::I64,
    }
}

fn tensor_type_out(t: wasmtime_wasi_nn::wit::TensorType) -> g::tensor::TensorType {
    use g::tensor::TensorType as B;
    use wasmtime_wasi_nn::wit::TensorType as A;
    match t {
        A::Fp16 => B::Fp16,
        A::Fp32 => B::Fp32,
        A::Fp64 => B::Fp64,
        A::Bf16 => B::Bf16,
        A::U8 => B::U8,
        A::I32 => B::I32,
        A::I64 => B::I64,
    }
}

impl g::graph::Host for WasiNnView<'_> {
    fn load(
        &mut self,
        builders: Vec<g::graph::GraphBuilder>,
        encoding: g::graph::GraphEncoding,
        target: g::graph::ExecutionTarget,
    ) -> wasmtime::Result<Result<Resource<Graph>, Resource<GuestError>>> {
        use g::graph::GraphEncoding as E;
        if !matches!(encoding, E::Ggml | E::Autodetect) {
            return self.err(NnError::new(
                ErrorCode::InvalidEncoding,
                format!("no backend for {encoding:?}: edgewasm serves GGUF models (encoding ggml)"),
            ));
        }
        let target = match target {
            g::graph::ExecutionTarget::Cpu => wasmtime_wasi_nn::wit::ExecutionTarget::Cpu,
            g::graph::ExecutionTarget::Gpu => wasmtime_wasi_nn::wit::ExecutionTarget::Gpu,
            g::graph::ExecutionTarget::Tpu => wasmtime_wasi_nn::wit::ExecutionTarget::Tpu,
        };
        if let Err(e) = self.acquire(1, "wasi:nn load") {
            return self.err(e);
        }
        let slices: Vec<&[u8]> = builders.iter().map(Vec::as_slice).collect();
        match self.nn.backend.load(&slices, target) {
            Ok(graph) => Ok(Ok(self.table.push(graph)?)),
            Err(e) => {
                self.nn.handles.release();
                self.err(classify(e))
            }
        }
    }

    fn load_by_name(&mut self, name: String) -> wasmtime::Result<Result<Resource<Graph>, Resource<GuestError>>> {
        match self.nn.registry.get(&name) {
            Some(graph) => {
                let graph = graph.clone();
                if let Err(e) = self.acquire(1, "wasi:nn load-by-name") {
                    return self.err(e);
                }
                Ok(Ok(self.table.push(graph)?))
            }
            None => self.err(NnError::not_found(format!("no graph named `{name}` (preload it with --model {name}=PATH)"))),
        }
    }
}

impl g::graph::HostGraph for WasiNnView<'_> {
    fn init_execution_context(
        &mut self,
        graph: Resource<Graph>,
    ) -> wasmtime::Result<Result<Resource<ExecutionContext>, Resource<GuestError>>> {
        self.table.get(&graph)?;
        if let Err(e) = self.acquire(1, "wasi:nn init-execution-context") {
            return self.err(e);
        }
        match self.table.get(&graph)?.init_execution_context() {
            Ok(ctx) => Ok(Ok(self.table.push(ctx)?)),
            Err(e) => {
                self.nn.handles.release();
                self.err(classify(e))
            }
        }
    }

    fn drop(&mut self, graph: Resource<Graph>) -> wasmtime::Result<()> {
        self.table.delete(graph)?;
        self.nn.handles.release();
        Ok(())
    }
}

impl g::inference::HostGraphExecutionContext for WasiNnView<'_> {
    fn compute(
        &mut self,
        ctx: Resource<ExecutionContext>,
        inputs: Vec<g::inference::NamedTensor>,
    ) -> wasmtime::Result<Result<Vec<g::inference::NamedTensor>, Resource<GuestError>>> {
        self.table.get(&ctx)?;
        // The inputs are `own` tensors: the guest gave them up with the
        // call (its handles are gone), so they leave the table here, as in
        // wasmtime-wasi-nn, whatever the outcome.
        let mut named = Vec::with_capacity(inputs.len());
        for (name, t) in inputs {
            let tensor = self.delete_tensor(t)?;
            named.push(wasmtime_wasi_nn::backend::NamedTensor { name, tensor });
        }
        for t in &named {
            if let Err(e) = self.nn.env.limits.check_prompt_bytes(&format!("input `{}`", t.name), t.tensor.data.len()) {
                return self.err(e);
            }
        }
        let ctx = self.table.get_mut(&ctx)?;
        match ctx.compute_with_io(named) {
            Ok(outputs) => {
                if let Err(e) = self.acquire(outputs.len(), "wasi:nn compute outputs") {
                    return self.err(e);
                }
                let total = outputs.iter().map(|t| t.tensor.data.len()).sum();
                if let Err(e) = self.nn.reserve_tensor(total) {
                    for _ in 0..outputs.len() {
                        self.nn.handles.release();
                    }
                    return self.err(e);
                }
                let mut out = Vec::with_capacity(outputs.len());
                for t in outputs {
                    out.push((t.name, self.table.push(t.tensor)?));
                }
                Ok(Ok(out))
            }
            Err(e) => self.err(classify(e)),
        }
    }

    fn drop(&mut self, ctx: Resource<ExecutionContext>) -> wasmtime::Result<()> {
        self.table.delete(ctx)?;
        self.nn.handles.release();
        Ok(())
    }
}

impl g::tensor::HostTensor for WasiNnView<'_> {
    fn new(
        &mut self,
        dimensions: g::tensor::TensorDimensions,
        ty: g::tensor::TensorType,
        data: g::tensor::TensorData,
    ) -> wasmtime::Result<Resource<Tensor>> {
        // The constructor has no error result: over a limit, the guest traps.
        let trap = |e: NnError| wasmtime::format_err!("wasi:nn tensor constructor: {e}");
        self.acquire(1, "new tensor").map_err(trap)?;
        self.nn.reserve_tensor(data.len()).map_err(trap)?;
        Ok(self.table.push(Tensor::new(dimensions, tensor_type_in(ty), data))?)
    }

    fn dimensions(&mut self, t: Resource<Tensor>) -> wasmtime::Result<g::tensor::TensorDimensions> {
        Ok(self.table.get(&t)?.dimensions.clone())
    }

    fn ty(&mut self, t: Resource<Tensor>) -> wasmtime::Result<g::tensor::TensorType> {
        Ok(tensor_type_out(self.table.get(&t)?.ty))
    }

    fn data(&mut self, t: Resource<Tensor>) -> wasmtime::Result<g::tensor::TensorData> {
        Ok(self.table.get(&t)?.data.clone())
    }

    fn drop(&mut self, t: Resource<Tensor>) -> wasmtime::Result<()> {
        self.delete_tensor(t)?;
        Ok(())
    }
}

impl g::errors::HostError for WasiNnView<'_> {
    fn code(&mut self, e: Resource<GuestError>) -> wasmtime::Result<g::errors::ErrorCode> {
        use g::errors::ErrorCode as C;
        Ok(match self.table.get(&e)?.code {
            ErrorCode::InvalidArgument => C::InvalidArgument,
            ErrorCode::InvalidEncoding => C::InvalidEncoding,
            ErrorCode::Timeout => C::Timeout,
            ErrorCode::RuntimeError => C::RuntimeError,
            ErrorCode::UnsupportedOperation => C::UnsupportedOperation,
            ErrorCode::TooLarge => C::TooLarge,
            ErrorCode::NotFound => C::NotFound,
            ErrorCode::Security => C::Security,
            ErrorCode::Unknown => C::Unknown,
        })
    }

    fn data(&mut self, e: Resource<GuestError>) -> wasmtime::Result<String> {
        Ok(self.table.get(&e)?.data.clone())
    }

    fn drop(&mut self, e: Resource<GuestError>) -> wasmtime::Result<()> {
        self.table.delete(e)?;
        self.nn.handles.release();
        Ok(())
    }
}
impl g::tensor::Host for WasiNnView<'_> {}
impl g::inference::Host for WasiNnView<'_> {}
impl g::errors::Host for WasiNnView<'_> {}
