//! Structure-aware GGUF fuzzing: arbitrary metadata and tensors go through
//! `GgufWriter`; whatever the writer accepts must read back identically
//! (its documented contract). Then fuzzer-chosen bytes of the valid file
//! are overwritten, which reaches deep into the header (tensor infos,
//! offsets, nested arrays) far faster than mutating raw bytes, and the
//! corrupted file must parse or fail cleanly.
#![no_main]

use arbitrary::Unstructured;
use edgewasm_fuzz::check_gguf;
use edgewasm_gguf::{Array, GgmlType, GgufFile, GgufWriter, Value};
use libfuzzer_sys::fuzz_target;

fn scalar(u: &mut Unstructured<'_>) -> arbitrary::Result<Value> {
    Ok(match u.int_in_range(0..=11u8)? {
        0 => Value::U8(u.arbitrary()?),
        1 => Value::I8(u.arbitrary()?),
        2 => Value::U16(u.arbitrary()?),
        3 => Value::I16(u.arbitrary()?),
        4 => Value::U32(u.arbitrary()?),
        5 => Value::I32(u.arbitrary()?),
        6 => Value::U64(u.arbitrary()?),
        7 => Value::I64(u.arbitrary()?),
        8 => Value::F32(u.arbitrary()?),
        9 => Value::F64(u.arbitrary()?),
        10 => Value::Bool(u.arbitrary()?),
        _ => Value::String(u.arbitrary()?),
    })
}

fn array(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Array> {
    let n = u.int_in_range(0..=8usize)?;
    let kind = u.int_in_range(0..=if depth < 3 { 7u8 } else { 6 })?;
    Ok(match kind {
        0 => Array::U8((0..n).map(|_| u.arbitrary()).collect::<Result<_, _>>()?),
        1 => Array::I32((0..n).map(|_| u.arbitrary()).collect::<Result<_, _>>()?),
        2 => Array::U64((0..n).map(|_| u.arbitrary()).collect::<Result<_, _>>()?),
        3 => Array::F32((0..n).map(|_| u.arbitrary()).collect::<Result<_, _>>()?),
        4 => Array::F64((0..n).map(|_| u.arbitrary()).collect::<Result<_, _>>()?),
        5 => Array::Bool((0..n).map(|_| u.arbitrary()).collect::<Result<_, _>>()?),
        6 => Array::String((0..n).map(|_| u.arbitrary()).collect::<Result<_, _>>()?),
        _ => Array::Array((0..n.min(4)).map(|_| array(u, depth + 1)).collect::<Result<_, _>>()?),
    })
}

/// What the writer accepted: metadata and (name, type, dims, data).
type Added = (Vec<(String, Value)>, Vec<(String, GgmlType, Vec<u64>, Vec<u8>)>);

fn build(u: &mut Unstructured<'_>) -> arbitrary::Result<Option<(Vec<u8>, Added)>> {
    let mut w = GgufWriter::new();
    let mut added: Added = Default::default();
    if u.arbitrary()? {
        let _ = w.set_version(u.int_in_range(1..=4)?);
    }
    if u.ratio(1, 4)? {
        // Powers of two from 1 to 4096, and the odd bad value. (Not larger
        // powers: an alignment of 2^31 legitimately makes a 2 GiB file.)
        let a = if u.ratio(1, 8)? { u.arbitrary::<u32>()? } else { 1u32 << u.int_in_range(0..=12)? };
        let a = if a.is_power_of_two() && a > 4096 { 3 } else { a };
        if w.set_alignment(a).is_ok() {
            added.0.push(("general.alignment".into(), Value::U32(a)));
        }
    }
    for _ in 0..u.int_in_range(0..=12)? {
        let key: String = if u.ratio(1, 4)? {
            ["general.architecture", "general.alignment", "tokenizer.ggml.model", "llama.block_count"][u.int_in_range(0..=3)?].into()
        } else {
            u.arbitrary()?
        };
        let value = if u.ratio(1, 3)? { Value::Array(array(u, 1)?) } else { scalar(u)? };
        if key == "general.alignment" && matches!(value, Value::U32(a) if a.is_power_of_two() && a > 4096) {
            continue; // as above: a legitimately huge file
        }
        if key.starts_with("split.") {
            // The writer writes any value (tests/split.rs uses it to make
            // malformed shards), and the reader gives these keys meaning:
            // a wrong type, or one file claiming to be a shard of several,
            // is refused by design. Split round trips are tests/split.rs.
            continue;
        }
        if w.add_metadata(key.clone(), value.clone()).is_ok() {
            added.0.push((key, value));
        }
    }
    for _ in 0..u.int_in_range(0..=6)? {
        let name: String = u.arbitrary()?;
        let ty = *u.choose(&GgmlType::ALL)?;
        let n_dims = u.int_in_range(1..=4)?;
        let block = ty.block_size() as u64;
        let mut dims = vec![block * u.int_in_range(1..=2)?];
        for _ in 1..n_dims {
            dims.push(u.int_in_range(1..=3)?);
        }
        let Some(size) = ty.row_bytes(dims[0]).map(|r| r * dims[1..].iter().product::<u64>()) else { continue };
        let mut data = vec![0u8; size as usize];
        u.fill_buffer(&mut data)?;
        // A wrong size must be rejected by the writer, not written.
        if u.ratio(1, 16)? {
            data.push(0);
            assert!(w.clone().add_tensor(name, ty, &dims, data).is_err(), "writer accepted a tensor of the wrong size");
            continue;
        }
        if w.add_tensor(name.clone(), ty, &dims, data.clone()).is_ok() {
            added.1.push((name, ty, dims, data));
        }
    }
    Ok(w.to_bytes().ok().map(|b| (b, added)))
}

fuzz_target!(|input: &[u8]| {
    let mut u = Unstructured::new(input);
    let Ok(Some((bytes, (meta, tensors)))) = build(&mut u) else { return };
    let file = GgufFile::from_bytes(&bytes).unwrap_or_else(|e| panic!("a file the writer wrote does not read back: {e}"));
    check_gguf(&file);
    // Debug, not PartialEq: NaN metadata must compare equal to itself.
    assert_eq!(format!("{:?}", file.metadata()), format!("{meta:?}"), "metadata does not round-trip");
    assert_eq!(file.tensors().len(), tensors.len());
    for (t, (name, ty, dims, data)) in file.tensors().iter().zip(&tensors) {
        assert_eq!((&t.name, t.ty, &t.dims), (name, *ty, dims));
        assert_eq!(file.tensor_data(t), &data[..], "tensor {name:?} data does not round-trip");
    }

    // Overwrite fuzzer-chosen bytes of the valid file.
    let mut bad = bytes.clone();
    let Ok(n) = u.int_in_range(0..=8usize) else { return };
    for _ in 0..n {
        let (Ok(pos), Ok(byte)) = (u.choose_index(bad.len()), u.arbitrary::<u8>()) else { break };
        bad[pos] = byte;
    }
    if let Ok(cut) = u.int_in_range(0..=1u8) {
        if cut == 1 {
            let len = u.choose_index(bad.len() + 1).unwrap_or(bad.len());
            bad.truncate(len);
        }
    }
    if let Ok(f) = GgufFile::from_bytes(&bad) {
        check_gguf(&f);
    }
});
