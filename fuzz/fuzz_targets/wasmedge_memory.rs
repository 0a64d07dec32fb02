//! The WasmEdge-ABI guest-memory checks (`host/nn/src/wasmedge/memory.rs`):
//! every pointer and length a core-wasm guest passes goes through
//! `GuestMemory`. Arbitrary memory sizes and operation sequences are checked
//! against a plain reference model: in-bounds accesses succeed with exactly
//! the right bytes, everything else is an `InvalidArgument` (or, for an
//! output that does not fit its buffer, `TooLarge`) and writes nothing.
//!
//! Compiled in with `#[path]` like `nn_config` (edgewasm-nn depends on
//! wasmtime); the code fuzzed is the shipped source.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../host/nn/src/error.rs"]
mod error;

#[allow(dead_code, unused_imports)]
#[path = "../../host/nn/src/wasmedge"]
mod wasmedge {
    pub mod abi;
    pub mod memory;
}

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wasmedge::abi::{CallError, Errno};
use wasmedge::memory::GuestMemory;

#[derive(Arbitrary, Debug)]
enum Op {
    Slice { ptr: u32, len: u32 },
    Array { ptr: u32, count: u32, size: u32 },
    ReadU32 { ptr: u32 },
    CheckU32 { ptr: u32 },
    WriteU32 { ptr: u32, value: u32 },
    WriteOutput { ptr: u32, cap: u32, len: u16 },
}

/// Pointers near the end of memory are the interesting ones.
fn near(x: u32, mem: usize) -> u32 {
    match x >> 30 {
        0 => (mem as u32).wrapping_sub(x & 0xFF),
        1 => x & 0xFFFF,
        _ => x,
    }
}

fn errno<T: std::fmt::Debug>(r: Result<T, CallError>) -> Errno {
    match r {
        Err(CallError::Code { errno, .. }) => errno,
        other => panic!("expected an error code, got {other:?}"),
    }
}

fn fits(mem: usize, ptr: u32, len: u64) -> bool {
    u64::from(ptr) + len <= mem as u64
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(size) = u.int_in_range(0..=4096usize) else { return };
    let mut reference: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut buf = reference.clone();
    let Ok(ops) = u.arbitrary::<Vec<Op>>() else { return };
    for op in ops {
        let mut m = GuestMemory::new(&mut buf);
        match op {
            Op::Slice { ptr, len } => {
                let (ptr, len) = (near(ptr, size), near(len, size) % 8192);
                match m.slice(ptr, len, "x") {
                    Ok(s) => assert_eq!(s, &reference[ptr as usize..(ptr + len) as usize]),
                    Err(e) => {
                        assert!(!fits(size, ptr, len.into()), "in-bounds slice refused");
                        assert_eq!(errno(Err::<(), _>(e)), Errno::InvalidArgument);
                    }
                }
            }
            Op::Array { ptr, count, size: el } => {
                let ptr = near(ptr, size);
                let total = u64::from(count) * u64::from(el);
                match m.array(ptr, count, el, "x") {
                    Ok(s) => {
                        assert_eq!(s.len() as u64, total);
                        assert_eq!(s, &reference[ptr as usize..ptr as usize + total as usize]);
                    }
                    Err(e) => {
                        assert!(total > u64::from(u32::MAX) || !fits(size, ptr, total), "in-bounds array refused");
                        assert_eq!(errno(Err::<(), _>(e)), Errno::InvalidArgument);
                    }
                }
            }
            Op::ReadU32 { ptr } => {
                let ptr = near(ptr, size);
                match m.read_u32(ptr, "x") {
                    Ok(v) => {
                        let p = ptr as usize;
                        assert_eq!(v.to_le_bytes(), reference[p..p + 4]);
                    }
                    Err(e) => {
                        assert!(!fits(size, ptr, 4));
                        assert_eq!(errno(Err::<(), _>(e)), Errno::InvalidArgument);
                    }
                }
            }
            Op::CheckU32 { ptr } => {
                let ptr = near(ptr, size);
                assert_eq!(m.check_u32(ptr, "x").is_ok(), fits(size, ptr, 4));
            }
            Op::WriteU32 { ptr, value } => {
                let ptr = near(ptr, size);
                match m.write_u32(ptr, value, "x") {
                    Ok(()) => {
                        let p = ptr as usize;
                        reference[p..p + 4].copy_from_slice(&value.to_le_bytes());
                    }
                    Err(e) => {
                        assert!(!fits(size, ptr, 4));
                        assert_eq!(errno(Err::<(), _>(e)), Errno::InvalidArgument);
                    }
                }
            }
            Op::WriteOutput { ptr, cap, len } => {
                let (ptr, cap) = (near(ptr, size), near(cap, size) % 8192);
                let data: Vec<u8> = (0..len % 512).map(|i| (i as u8) ^ 0xA5).collect();
                match m.write_output(ptr, cap, &data) {
                    Ok(n) => {
                        assert_eq!(n as usize, data.len());
                        assert!(fits(size, ptr, cap.into()) && data.len() <= cap as usize);
                        let p = ptr as usize;
                        reference[p..p + data.len()].copy_from_slice(&data);
                    }
                    Err(e) => {
                        let code = errno(Err::<(), _>(e));
                        if fits(size, ptr, cap.into()) {
                            assert!(data.len() > cap as usize);
                            assert_eq!(code, Errno::TooLarge);
                        } else {
                            assert_eq!(code, Errno::InvalidArgument);
                        }
                    }
                }
            }
        }
        // Failed calls wrote nothing; successful ones exactly what the
        // reference model did.
        assert_eq!(buf, reference, "guest memory differs from the reference model");
    }
});
