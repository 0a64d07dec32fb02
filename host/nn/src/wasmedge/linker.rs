//! The `wasi_ephemeral_nn` host functions for a core-module
//! `wasmtime::Linker`: decode the guest's pointers through [`GuestMemory`]
//! (every one range-checked), call [`WasmEdgeNn`], write results back.
//!
//! Signatures (all i32, returning an error code):
//! `load(builders, n, encoding, target, *graph)`,
//! `load_by_name(name, len, *graph)`,
//! `load_by_name_with_config(name, len, config, len, *graph)`,
//! `init_execution_context(graph, *ctx)`, `set_input(ctx, index, *tensor)`,
//! `compute(ctx)`, `compute_single(ctx)`, `fini_single(ctx)`,
//! `get_output(ctx, index, buf, len, *written)`,
//! `get_output_single(ctx, index, buf, len, *written)`, `unload(graph)`,
//! `finalize_execution_context(ctx)`.

use wasmtime::{Caller, Extern, Linker};

use super::abi::{CallError, CallResult, Errno, BUILDER_SIZE, MODULE, TENSOR_SIZE};
use super::memory::{le_u32, GuestMemory};
use super::state::WasmEdgeNn;

/// Adds `wasi_ephemeral_nn` to `linker`; `get` finds the state in the store.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&mut T) -> &mut WasmEdgeNn + Copy + Send + Sync + 'static,
) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "load", move |mut c: Caller<'_, T>, builders: i32, n: i32, enc: i32, target: i32, out: i32| {
        call(&mut c, get, "load", |mem, nn| {
            mem.check_u32(out as u32, "graph handle")?;
            let table = mem.array(builders as u32, n as u32, BUILDER_SIZE, "graph builders")?;
            let parts = table
                .chunks_exact(BUILDER_SIZE as usize)
                .map(|e| mem.slice(le_u32(e, 0), le_u32(e, 4), "graph builder"))
                .collect::<CallResult<Vec<&[u8]>>>()?;
            let g = nn.load(&parts, enc as u32, target as u32)?;
            mem.write_u32(out as u32, g, "graph handle")
        })
    })?;
    linker.func_wrap(MODULE, "load_by_name", move |mut c: Caller<'_, T>, name: i32, len: i32, out: i32| {
        call(&mut c, get, "load_by_name", |mem, nn| {
            mem.check_u32(out as u32, "graph handle")?;
            let g = nn.load_by_name(mem.slice(name as u32, len as u32, "model name")?, None)?;
            mem.write_u32(out as u32, g, "graph handle")
        })
    })?;
    linker.func_wrap(
        MODULE,
        "load_by_name_with_config",
        move |mut c: Caller<'_, T>, name: i32, len: i32, config: i32, config_len: i32, out: i32| {
            call(&mut c, get, "load_by_name_with_config", |mem, nn| {
                mem.check_u32(out as u32, "graph handle")?;
                let name = mem.slice(name as u32, len as u32, "model name")?;
                let config = mem.slice(config as u32, config_len as u32, "config")?;
                let g = nn.load_by_name(name, Some(config))?;
                mem.write_u32(out as u32, g, "graph handle")
            })
        },
    )?;
    linker.func_wrap(MODULE, "init_execution_context", move |mut c: Caller<'_, T>, graph: i32, out: i32| {
        call(&mut c, get, "init_execution_context", |mem, nn| {
            mem.check_u32(out as u32, "context handle")?;
            let h = nn.init_execution_context(graph as u32)?;
            mem.write_u32(out as u32, h, "context handle")
        })
    })?;
    linker.func_wrap(MODULE, "set_input", move |mut c: Caller<'_, T>, ctx: i32, index: i32, tensor: i32| {
        call(&mut c, get, "set_input", |mem, nn| {
            let t = mem.slice(tensor as u32, TENSOR_SIZE, "tensor")?;
            let (dims, n_dims, ty, data, len) = (le_u32(t, 0), le_u32(t, 4), le_u32(t, 8), le_u32(t, 12), le_u32(t, 16));
            mem.array(dims, n_dims, 4, "tensor dimensions")?;
            let data = mem.slice(data, len, "tensor data")?;
            nn.set_input(ctx as u32, index as u32, ty, data)
        })
    })?;
    for (name, f) in [
        ("compute", WasmEdgeNn::compute as fn(&mut WasmEdgeNn, u32) -> CallResult<()>),
        ("compute_single", WasmEdgeNn::compute_single),
        ("fini_single", WasmEdgeNn::fini_single),
        ("finalize_execution_context", WasmEdgeNn::finalize_execution_context),
        ("unload", WasmEdgeNn::unload),
    ] {
        linker.func_wrap(MODULE, name, move |mut c: Caller<'_, T>, handle: i32| {
            call(&mut c, get, name, |_, nn| f(nn, handle as u32))
        })?;
    }
    for (name, f) in [
        ("get_output", WasmEdgeNn::get_output as fn(&mut WasmEdgeNn, u32, u32) -> CallResult<Vec<u8>>),
        ("get_output_single", WasmEdgeNn::get_output_single),
    ] {
        linker.func_wrap(MODULE, name, move |mut c: Caller<'_, T>, ctx: i32, index: i32, buf: i32, len: i32, out: i32| {
            call(&mut c, get, name, |mem, nn| {
                mem.slice(buf as u32, len as u32, "output buffer")?;
                mem.check_u32(out as u32, "bytes written")?;
                let data = f(nn, ctx as u32, index as u32)?;
                let n = mem.write_output(buf as u32, len as u32, &data)?;
                mem.write_u32(out as u32, n, "bytes written")
            })
        })?;
    }
    Ok(())
}

/// Runs one host function over the caller's memory export and state:
/// `Ok` → 0, an error → its code (logged but for the end of a stream), a
/// trap (time limit) → ends the guest.
fn call<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: impl Fn(&mut T) -> &mut WasmEdgeNn,
    name: &str,
    f: impl FnOnce(&mut GuestMemory<'_>, &mut WasmEdgeNn) -> CallResult<()>,
) -> wasmtime::Result<i32> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        log::warn!(target: "edgewasm-nn", "{MODULE}.{name}: the module exports no memory named `memory`");
        return Ok(Errno::MissingMemory as i32);
    };
    let (data, state) = memory.data_and_store_mut(caller);
    let mut mem = GuestMemory::new(data);
    match f(&mut mem, get(state)) {
        Ok(()) => Ok(Errno::Success as i32),
        Err(CallError::Code { errno, message }) => {
            if errno != Errno::EndOfSequence {
                log::warn!(target: "edgewasm-nn", "{MODULE}.{name}: {message} (error {})", errno as i32);
            }
            Ok(errno as i32)
        }
        Err(CallError::Trap(e)) => Err(wasmtime::format_err!("{MODULE}.{name}: {e}")),
    }
}
