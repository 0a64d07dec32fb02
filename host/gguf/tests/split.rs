//! Split models (`NAME-00001-of-0000N.gguf`, `split.*` keys): written with
//! `GgufWriter::split`, opened from the first shard as one model, compared
//! with the unsplit file; every malformed split is refused with an error
//! naming the file and the field; llama.cpp's `llama-gguf-split` writes the
//! same shards as ours, reads ours, and we read its.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::pseudo_random_bytes;
use edgewasm_gguf::split::{split_path, split_prefix};
use edgewasm_gguf::{
    GgmlType, GgufError, GgufFile, GgufWriter, SplitOptions, Value, KEY_SPLIT_COUNT, KEY_SPLIT_NO,
    KEY_SPLIT_TENSORS_COUNT,
};

/// A model of 7 tensors of several types and sizes, with random data.
fn model() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "llama").unwrap();
    w.add_metadata("general.name", "split test").unwrap();
    w.add_metadata("llama.block_count", 2u32).unwrap();
    w.add_metadata(
        "tokenizer.ggml.tokens",
        vec!["a".to_string(), "b".to_string()],
    )
    .unwrap();
    let tensors: [(&str, GgmlType, &[u64]); 7] = [
        ("token_embd.weight", GgmlType::Q8_0, &[64, 10]),
        ("blk.0.attn_norm.weight", GgmlType::F32, &[64]),
        ("blk.0.attn_q.weight", GgmlType::Q4_0, &[64, 64]),
        ("blk.0.ffn_up.weight", GgmlType::F16, &[64, 3]),
        ("blk.1.attn_norm.weight", GgmlType::F32, &[64]),
        ("blk.1.attn_q.weight", GgmlType::Q4_K, &[256, 5]),
        ("output_norm.weight", GgmlType::F32, &[64]),
    ];
    for (i, (name, ty, dims)) in tensors.into_iter().enumerate() {
        let size = ty.row_bytes(dims[0]).unwrap() * dims[1..].iter().product::<u64>();
        w.add_tensor(
            name,
            ty,
            dims,
            pseudo_random_bytes(size as usize, i as u64 + 1),
        )
        .unwrap();
    }
    w
}

fn is_split_key(k: &str) -> bool {
    [KEY_SPLIT_NO, KEY_SPLIT_COUNT, KEY_SPLIT_TENSORS_COUNT].contains(&k)
}

/// `split` is the same model as `whole`: the same metadata (but `split.*`)
/// in order, the same tensors in order with the same bytes, each read
/// from the mapping of its own shard without copying.
fn assert_same_model(split: &GgufFile, whole: &GgufFile) {
    let meta = |f: &GgufFile| {
        f.metadata()
            .iter()
            .filter(|(k, _)| !is_split_key(k))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(meta(split), meta(whole));
    assert_eq!(split.tensors().len(), whole.tensors().len());
    for (s, w) in split.tensors().iter().zip(whole.tensors()) {
        assert_eq!(
            (&s.name, &s.dims, s.ty, s.size_bytes),
            (&w.name, &w.dims, w.ty, w.size_bytes)
        );
        assert_eq!(split.tensor(&s.name), Some(s));
        let data = split.tensor_data(s);
        assert!(data == whole.tensor_data(w), "{} differs", s.name);
        let shard = &split.shards()[usize::from(s.shard)];
        let range = shard.as_bytes().as_ptr_range();
        assert!(
            range.contains(&data.as_ptr()),
            "{} not in the map of its shard",
            s.name
        );
        assert_eq!(data.as_ptr() as usize % shard.alignment() as usize, 0);
    }
    let total: u64 = split.shards().iter().map(|s| s.file_size()).sum();
    assert_eq!(split.file_size(), total);
    let per_shard: usize = split.shards().iter().map(|s| s.tensor_count()).sum();
    assert_eq!(per_shard, split.tensors().len());
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Writes `shards` as `{dir}/model-0000i-of-0000N.gguf`; returns the paths.
fn write_shards(dir: &Path, shards: &[GgufWriter]) -> Vec<PathBuf> {
    let n = shards.len() as u16;
    (0..n)
        .map(|i| {
            let p = split_path(dir.join("model"), i, n);
            shards[usize::from(i)].write_file(&p).unwrap();
            p
        })
        .collect()
}

#[test]
fn split_model_is_the_unsplit_model() {
    let w = model();
    let whole = GgufFile::from_bytes(&w.to_bytes().unwrap()).unwrap();
    let cases = [
        (SplitOptions::max_tensors(1), 7),
        (SplitOptions::max_tensors(3), 3),
        (SplitOptions::max_tensors(6), 2),
        (SplitOptions::max_tensors(3).metadata_only_first(true), 4),
        // Sizes padded to 32: 704, 256 | 2304 (alone: over the limit) |
        // 384, 256 | 736, 256.
        (SplitOptions::max_bytes(1024), 4),
        (SplitOptions::max_bytes(992), 4),
        // 704, 256 | 2304 | 384, 256 | 736 | 256.
        (SplitOptions::max_bytes(991), 5),
        // 704 | 256 | 2304 | 384, 256 | 736 | 256.
        (SplitOptions::max_bytes(959), 6),
        (
            SplitOptions {
                max_tensors: Some(1),
                max_bytes: Some(1024),
                metadata_only_first: false,
            },
            7,
        ),
        (SplitOptions::max_bytes(1 << 20), 1),
    ];
    for (opts, n) in cases {
        let dir = tempdir();
        let paths = w.write_split(dir.path().join("model"), opts).unwrap();
        assert_eq!(paths.len(), n, "{opts:?}");
        assert!(paths[0].ends_with(format!("model-00001-of-{n:05}.gguf")));
        let f = GgufFile::open(&paths[0]).unwrap();
        assert_same_model(&f, &whole);
        assert_eq!(f.shards().len(), n);
        for (s, p) in f.shards().iter().zip(&paths) {
            assert_eq!(s.path(), p);
            assert_eq!(s.file_size(), fs::metadata(p).unwrap().len());
        }
        // Tensors are in order, shard by shard.
        assert!(f.tensors().windows(2).all(|t| t[0].shard <= t[1].shard));
        assert_eq!(f.shards()[0].tensor_count() == 0, opts.metadata_only_first);
        // The first shard holds all the metadata; the others only split.*.
        assert_eq!(f.get_u32(KEY_SPLIT_COUNT).unwrap(), Some(n as u32));
        assert_eq!(f.get_u32(KEY_SPLIT_TENSORS_COUNT).unwrap(), Some(7));
        for p in &paths[1..] {
            let s = GgufFile::open_shard(p).unwrap();
            assert!(
                s.metadata().iter().all(|(k, _)| is_split_key(k)),
                "{}",
                p.display()
            );
        }

        // The same from an explicit list of files and from buffers.
        assert_same_model(&GgufFile::open_split(&paths).unwrap(), &whole);
        let bytes: Vec<Vec<u8>> = paths.iter().map(|p| fs::read(p).unwrap()).collect();
        let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        assert_same_model(&GgufFile::from_split_bytes(&refs).unwrap(), &whole);
    }
}

#[test]
fn writer_split_layout() {
    let w = model();
    let shards = w.split(SplitOptions::max_tensors(3)).unwrap();
    assert_eq!(shards.len(), 3);
    let files: Vec<GgufFile> = shards
        .iter()
        .map(|s| GgufFile::from_shard_bytes(&s.to_bytes().unwrap()).unwrap())
        .collect();
    for (i, f) in files.iter().enumerate() {
        // gguf-split's types, and order: split.no, split.tensors.count, split.count.
        let tail: Vec<_> = f.metadata().iter().rev().take(3).rev().cloned().collect();
        assert_eq!(
            tail,
            [
                (KEY_SPLIT_NO.to_string(), Value::U16(i as u16)),
                (KEY_SPLIT_TENSORS_COUNT.to_string(), Value::I32(7)),
                (KEY_SPLIT_COUNT.to_string(), Value::U16(3)),
            ]
        );
        assert_eq!(f.tensors().len(), if i == 2 { 1 } else { 3 });
    }
    assert_eq!(files[0].metadata().len(), 4 + 3);

    // A model's own split.* keys are replaced, not repeated.
    let mut again = GgufWriter::new();
    for (k, v) in files[0].metadata() {
        again.add_metadata(k.clone(), v.clone()).unwrap();
    }
    let re = again.split(SplitOptions::default()).unwrap();
    assert_eq!(re.len(), 1);
    let f = GgufFile::from_shard_bytes(&re[0].to_bytes().unwrap()).unwrap();
    assert_eq!(f.metadata().len(), 7);
    assert_eq!(f.get(KEY_SPLIT_COUNT), Some(&Value::U16(1)));
    assert_eq!(f.get(KEY_SPLIT_TENSORS_COUNT), Some(&Value::I32(0)));

    // One shard (split.count 1) reads as an unsplit file, whatever its name,
    // as in llama.cpp.
    let one = w.split(SplitOptions::max_tensors(100)).unwrap();
    assert_eq!(one.len(), 1);
    let dir = tempdir();
    let p = dir.path().join("plain.gguf");
    one[0].write_file(&p).unwrap();
    assert_eq!(GgufFile::open(&p).unwrap().tensors().len(), 7);

    // Non-default alignment: kept (and honoured) in the first shard only,
    // as gguf-split writes it; each shard is aligned to its own.
    let mut a = model();
    a.set_alignment(256).unwrap();
    let paths = a
        .write_split(dir.path().join("aligned"), SplitOptions::max_tensors(4))
        .unwrap();
    let f = GgufFile::open(&paths[0]).unwrap();
    assert_eq!(
        (f.shards()[0].alignment(), f.shards()[1].alignment()),
        (256, 32)
    );
    assert_same_model(&f, &GgufFile::from_bytes(&a.to_bytes().unwrap()).unwrap());

    for bad in [SplitOptions::max_tensors(0), SplitOptions::max_bytes(0)] {
        assert!(matches!(w.split(bad), Err(GgufError::BadSplitOptions(_))));
    }
}

#[test]
fn tensor_data_never_panics_on_a_foreign_shard_index() {
    let dir = tempdir();
    let paths = model()
        .write_split(dir.path().join("model"), SplitOptions::max_tensors(4))
        .unwrap();
    let f = GgufFile::open(&paths[0]).unwrap();
    let mut t = f.tensors()[5].clone();
    assert_eq!(t.shard, 1);
    assert_eq!(f.tensor_data(&t).len() as u64, t.size_bytes);
    for shard in [2, u16::MAX] {
        t.shard = shard;
        assert!(f.tensor_data(&t).is_empty());
        f.release_tensor_pages(&t);
    }
    // Releasing the pages of a tensor in the second shard leaves its data.
    let t = &f.tensors()[5];
    let before = f.tensor_data(t).to_vec();
    f.release_tensor_pages(t);
    assert_eq!(f.tensor_data(t), before.as_slice());
}

// ---- Malformed splits ------------------------------------------------------

/// A shard made by hand: `split.*` keys as given (`None`: absent), the
/// model's metadata when `meta`, and tensors `range` of [`model`].
fn shard(
    no: Option<Value>,
    count: Option<Value>,
    total: Option<Value>,
    meta: bool,
    range: std::ops::Range<usize>,
) -> GgufWriter {
    let src = GgufFile::from_bytes(&model().to_bytes().unwrap()).unwrap();
    let mut w = GgufWriter::new();
    if meta {
        for (k, v) in src.metadata() {
            w.add_metadata(k.clone(), v.clone()).unwrap();
        }
    }
    for (k, v) in [
        (KEY_SPLIT_NO, no),
        (KEY_SPLIT_TENSORS_COUNT, total),
        (KEY_SPLIT_COUNT, count),
    ] {
        if let Some(v) = v {
            w.add_metadata(k, v).unwrap();
        }
    }
    for t in &src.tensors()[range] {
        w.add_tensor(t.name.clone(), t.ty, &t.dims, src.tensor_data(t))
            .unwrap();
    }
    w
}

/// The three well-formed shards of [`model`]: tensors 0..3, 3..5, 5..7.
fn good_shards() -> Vec<GgufWriter> {
    let (u16v, i32v) = (Value::U16, Value::I32);
    vec![
        shard(Some(u16v(0)), Some(u16v(3)), Some(i32v(7)), true, 0..3),
        shard(Some(u16v(1)), Some(u16v(3)), Some(i32v(7)), false, 3..5),
        shard(Some(u16v(2)), Some(u16v(3)), Some(i32v(7)), false, 5..7),
    ]
}

/// Opens the first of `shards` written to a fresh directory; returns the
/// error and the paths.
fn open_err(shards: &[GgufWriter]) -> (GgufError, Vec<PathBuf>, tempfile::TempDir) {
    let dir = tempdir();
    let paths = write_shards(dir.path(), shards);
    let e = GgufFile::open(&paths[0]).expect_err("a malformed split must be refused");
    (e, paths, dir)
}

/// The message names the file and the field.
fn assert_names(e: &GgufError, path: &Path, field: &str) {
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "{msg:?} does not name {}",
        path.display()
    );
    assert!(msg.contains(field), "{msg:?} does not name {field}");
}

#[test]
fn good_shards_by_hand_open() {
    let dir = tempdir();
    let paths = write_shards(dir.path(), &good_shards());
    let whole = GgufFile::from_bytes(&model().to_bytes().unwrap()).unwrap();
    assert_same_model(&GgufFile::open(&paths[0]).unwrap(), &whole);
    // Any integer type is read for split.* (llama.cpp insists on u16/i32).
    let mut s = good_shards();
    s[1] = shard(
        Some(Value::U32(1)),
        Some(Value::I64(3)),
        Some(Value::U64(7)),
        false,
        3..5,
    );
    let paths = write_shards(dir.path(), &s);
    assert_same_model(&GgufFile::open(&paths[0]).unwrap(), &whole);
}

#[test]
fn missing_shard_is_named() {
    let dir = tempdir();
    let paths = write_shards(dir.path(), &good_shards());
    fs::remove_file(&paths[2]).unwrap();
    let e = GgufFile::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&e, GgufError::SplitShardMissing { path, shard: 3, count: 3, .. } if path == &paths[2]),
        "{e:?}"
    );
    assert_names(&e, &paths[2], "shard 3 of 3");
}

#[test]
fn opening_another_shard_names_the_first() {
    let dir = tempdir();
    let paths = write_shards(dir.path(), &good_shards());
    for (i, p) in paths.iter().enumerate().skip(1) {
        let e = GgufFile::open(p).unwrap_err();
        match &e {
            GgufError::SplitNotFirst {
                path,
                split_no,
                count: 3,
                first,
            } => {
                assert_eq!((path, usize::from(*split_no)), (p, i));
                assert_eq!(first.as_ref(), Some(&paths[0]));
            }
            e => panic!("{e:?}"),
        }
        assert_names(&e, p, "split.no");
        assert!(
            e.to_string().contains(&paths[0].display().to_string()),
            "{e}"
        );
        // Alone, it is a valid GGUF of its own.
        assert_eq!(GgufFile::open_shard(p).unwrap().shards().len(), 1);
    }
    // Renamed, the first shard's name cannot be given.
    let other = dir.path().join("renamed.gguf");
    fs::copy(&paths[1], &other).unwrap();
    let e = GgufFile::open(&other).unwrap_err();
    assert!(
        matches!(
            e,
            GgufError::SplitNotFirst {
                split_no: 1,
                first: None,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn split_count_mismatch() {
    let mut s = good_shards();
    s[2] = shard(
        Some(Value::U16(2)),
        Some(Value::U16(4)),
        Some(Value::I32(7)),
        false,
        5..7,
    );
    let (e, paths, _d) = open_err(&s);
    assert!(
        matches!(&e, GgufError::SplitKey { path, key: "split.count", found, .. } if path == &paths[2] && found == "4"),
        "{e:?}"
    );
    assert_names(&e, &paths[2], "split.count is 4, expected 3");
}

#[test]
fn wrong_or_missing_split_no() {
    // Shard 2 says it is shard 3.
    let mut s = good_shards();
    s[1] = shard(
        Some(Value::U16(2)),
        Some(Value::U16(3)),
        Some(Value::I32(7)),
        false,
        3..5,
    );
    let (e, paths, _d) = open_err(&s);
    assert!(
        matches!(&e, GgufError::SplitKey { key: "split.no", found, .. } if found == "2"),
        "{e:?}"
    );
    assert_names(&e, &paths[1], "split.no is 2, expected 1");

    // Shard 2 has no split.no.
    let mut s = good_shards();
    s[1] = shard(None, Some(Value::U16(3)), Some(Value::I32(7)), false, 3..5);
    let (e, paths, _d) = open_err(&s);
    assert!(
        matches!(&e, GgufError::SplitKey { key: "split.no", found, .. } if found == "absent"),
        "{e:?}"
    );
    assert_names(&e, &paths[1], "split.no");

    // The first shard has no split.no.
    let mut s = good_shards();
    s[0] = shard(None, Some(Value::U16(3)), Some(Value::I32(7)), true, 0..3);
    let (e, paths, _d) = open_err(&s);
    assert!(
        matches!(
            &e,
            GgufError::SplitKey {
                key: "split.no",
                ..
            }
        ),
        "{e:?}"
    );
    assert_names(&e, &paths[0], "split.no");
}

#[test]
fn split_keys_of_the_wrong_type_or_range() {
    let cases = [
        (
            Some(Value::String("1".into())),
            Some(Value::U16(3)),
            "split.no",
        ),
        (Some(Value::U16(1)), Some(Value::F32(3.0)), "split.count"),
        (Some(Value::I32(-1)), Some(Value::U16(3)), "split.no"),
        (Some(Value::U32(70_000)), Some(Value::U16(3)), "split.no"),
    ];
    for (no, count, key) in cases {
        let mut s = good_shards();
        s[1] = shard(no, count, Some(Value::I32(7)), false, 3..5);
        let (e, paths, _d) = open_err(&s);
        assert!(
            matches!(&e, GgufError::InFile { path, error } if path == &paths[1]
            && matches!(**error, GgufError::MetadataType { .. } | GgufError::MetadataRange { .. })),
            "{e:?}"
        );
        assert_names(&e, &paths[1], key);
    }
    // In the first shard too: split.count itself.
    let mut s = good_shards();
    s[0] = shard(
        Some(Value::U16(0)),
        Some(Value::String("3".into())),
        Some(Value::I32(7)),
        true,
        0..3,
    );
    let (e, paths, _d) = open_err(&s);
    assert!(matches!(&e, GgufError::InFile { .. }), "{e:?}");
    assert_names(&e, &paths[0], "split.count");
}

#[test]
fn duplicate_tensor_across_shards() {
    let mut s = good_shards();
    // Shard 3 holds tensors 2..7: tensor 2 is also in shard 1.
    s[2] = shard(
        Some(Value::U16(2)),
        Some(Value::U16(3)),
        Some(Value::I32(7)),
        false,
        2..7,
    );
    s[1] = shard(
        Some(Value::U16(1)),
        Some(Value::U16(3)),
        Some(Value::I32(7)),
        false,
        3..3,
    );
    let (e, paths, _d) = open_err(&s);
    match &e {
        GgufError::SplitDuplicateTensor {
            name,
            first,
            second,
        } => {
            assert_eq!(name, "blk.0.attn_q.weight");
            assert_eq!((first, second), (&paths[0], &paths[2]));
        }
        e => panic!("{e:?}"),
    }
    assert_names(&e, &paths[2], "blk.0.attn_q.weight");
    assert_names(&e, &paths[0], "duplicate tensor");
}

#[test]
fn shard_that_is_not_gguf() {
    let dir = tempdir();
    let paths = write_shards(dir.path(), &good_shards());
    fs::write(&paths[1], b"not a gguf file at all, just some text").unwrap();
    let e = GgufFile::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&e, GgufError::InFile { path, error } if path == &paths[1] && matches!(**error, GgufError::BadMagic { .. })),
        "{e:?}"
    );
    assert_names(&e, &paths[1], "not a GGUF file");

    // Truncated: its tensor data is past its end.
    let bytes = good_shards()[1].to_bytes().unwrap();
    fs::write(&paths[1], &bytes[..bytes.len() - 100]).unwrap();
    let e = GgufFile::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&e, GgufError::InFile { error, .. } if matches!(**error, GgufError::TensorOutOfBounds { .. })),
        "{e:?}"
    );
    assert_names(&e, &paths[1], "blk.1.attn_norm.weight");

    // A directory where a shard should be.
    fs::remove_file(&paths[1]).unwrap();
    fs::create_dir(&paths[1]).unwrap();
    let e = GgufFile::open(&paths[0]).unwrap_err();
    assert_names(&e, &paths[1], "");
}

#[test]
fn tensor_count_mismatch() {
    // Every shard says 8 tensors; they hold 7.
    let (u16v, i32v) = (Value::U16, Value::I32);
    let s = vec![
        shard(Some(u16v(0)), Some(u16v(3)), Some(i32v(8)), true, 0..3),
        shard(Some(u16v(1)), Some(u16v(3)), Some(i32v(8)), false, 3..5),
        shard(Some(u16v(2)), Some(u16v(3)), Some(i32v(8)), false, 5..7),
    ];
    let (e, paths, _d) = open_err(&s);
    assert!(
        matches!(
            &e,
            GgufError::SplitTensorCount {
                expected: 8,
                found: 7,
                count: 3,
                ..
            }
        ),
        "{e:?}"
    );
    assert_names(&e, &paths[0], "split.tensors.count is 8");

    // The first shard has no split.tensors.count (llama.cpp requires it).
    let mut s = good_shards();
    s[0] = shard(Some(u16v(0)), Some(u16v(3)), None, true, 0..3);
    let (e, paths, _d) = open_err(&s);
    assert!(
        matches!(
            &e,
            GgufError::SplitKey {
                key: "split.tensors.count",
                ..
            }
        ),
        "{e:?}"
    );
    assert_names(&e, &paths[0], "split.tensors.count");

    // A shard disagrees with the first on it.
    let mut s = good_shards();
    s[2] = shard(Some(u16v(2)), Some(u16v(3)), Some(i32v(9)), false, 5..7);
    let (e, paths, _d) = open_err(&s);
    assert!(
        matches!(
            &e,
            GgufError::SplitKey {
                key: "split.tensors.count",
                ..
            }
        ),
        "{e:?}"
    );
    assert_names(&e, &paths[2], "split.tensors.count is 9, expected 7");
}

#[test]
fn first_shard_with_another_name() {
    let dir = tempdir();
    let paths = write_shards(dir.path(), &good_shards());
    let renamed = dir.path().join("model.gguf");
    fs::copy(&paths[0], &renamed).unwrap();
    let e = GgufFile::open(&renamed).unwrap_err();
    assert!(
        matches!(&e, GgufError::SplitFileName { count: 3, .. }),
        "{e:?}"
    );
    assert_names(&e, &renamed, "-00001-of-00003.gguf");
    // Named explicitly, the files open whatever their names.
    let list = [renamed, paths[1].clone(), paths[2].clone()];
    assert_eq!(GgufFile::open_split(&list).unwrap().tensors().len(), 7);
    // Named as another shard count: not found either.
    let wrong = dir.path().join("model-00001-of-00002.gguf");
    fs::copy(&paths[0], &wrong).unwrap();
    assert!(matches!(
        GgufFile::open(&wrong),
        Err(GgufError::SplitFileName { .. })
    ));
}

#[test]
fn wrong_number_of_files_or_buffers() {
    let dir = tempdir();
    let paths = write_shards(dir.path(), &good_shards());
    let e = GgufFile::open_split(&paths[..2]).unwrap_err();
    assert!(
        matches!(
            e,
            GgufError::SplitFilesGiven {
                count: 3,
                given: 2,
                ..
            }
        ),
        "{e:?}"
    );
    assert_names(&e, &paths[0], "split.count = 3");
    // Out of order: shard 3 where shard 2 should be.
    let e = GgufFile::open_split(&[&paths[0], &paths[2], &paths[1]]).unwrap_err();
    assert!(
        matches!(&e, GgufError::SplitKey { key: "split.no", path, .. } if path == &paths[2]),
        "{e:?}"
    );
    // An unsplit file with more files.
    let plain = dir.path().join("plain.gguf");
    model().write_file(&plain).unwrap();
    let e = GgufFile::open_split(&[&plain, &paths[1]]).unwrap_err();
    assert!(
        matches!(
            e,
            GgufError::SplitKey {
                key: "split.count",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(matches!(
        GgufFile::open_split(&[] as &[&Path]),
        Err(GgufError::BadSplitOptions(_))
    ));

    // from_bytes on a first shard cannot find the others.
    let first = fs::read(&paths[0]).unwrap();
    let e = GgufFile::from_bytes(&first).unwrap_err();
    assert!(
        matches!(
            e,
            GgufError::SplitFilesGiven {
                count: 3,
                given: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("<in-memory shard 1>"), "{e}");
    let second = fs::read(&paths[1]).unwrap();
    assert!(matches!(
        GgufFile::from_bytes(&second),
        Err(GgufError::SplitNotFirst { first: None, .. })
    ));
}

#[test]
fn file_names_are_llama_cpps() {
    assert_eq!(
        split_path("/d/m", 0, 3),
        Path::new("/d/m-00001-of-00003.gguf")
    );
    assert_eq!(
        split_prefix("/d/m-00003-of-00003.gguf", 2, 3),
        Some(PathBuf::from("/d/m"))
    );
}

// ---- llama.cpp's gguf-split ------------------------------------------------

fn gguf_split(args: &[&std::ffi::OsStr]) {
    let bin = edgewasm_test_support::peer_bin("llama-gguf-split");
    let out = Command::new(&bin)
        .args(args)
        .output()
        .expect("run llama-gguf-split");
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        bin.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// llama.cpp's `llama-gguf-split --split` writes the same bytes as
/// `GgufWriter::write_split`, and we open its output as the unsplit model.
#[test]
fn reads_llama_gguf_split_output() {
    let dir = tempdir();
    let w = model();
    let whole_path = dir.path().join("whole.gguf");
    w.write_file(&whole_path).unwrap();
    let whole = GgufFile::open(&whole_path).unwrap();
    let cases: [(&[&str], SplitOptions); 3] = [
        (&["--split-max-tensors", "3"], SplitOptions::max_tensors(3)),
        (
            &["--split-max-tensors", "2", "--no-tensor-first-split"],
            SplitOptions::max_tensors(2).metadata_only_first(true),
        ),
        (&["--split-max-tensors", "1"], SplitOptions::max_tensors(1)),
    ];
    for (i, (flags, opts)) in cases.into_iter().enumerate() {
        let peer_prefix = dir.path().join(format!("peer{i}"));
        let mut args: Vec<&std::ffi::OsStr> = vec!["--split".as_ref()];
        args.extend(flags.iter().map(std::ffi::OsStr::new));
        args.extend([whole_path.as_os_str(), peer_prefix.as_os_str()]);
        gguf_split(&args);
        let ours = w
            .write_split(dir.path().join(format!("ours{i}")), opts)
            .unwrap();
        let n = ours.len() as u16;
        for (j, p) in ours.iter().enumerate() {
            let theirs = split_path(&peer_prefix, j as u16, n);
            assert!(
                fs::read(&theirs).unwrap() == fs::read(p).unwrap(),
                "{flags:?}: {} differs from {}",
                p.display(),
                theirs.display()
            );
        }
        let f = GgufFile::open(split_path(&peer_prefix, 0, n)).unwrap();
        assert_eq!(f.shards().len(), usize::from(n));
        assert_same_model(&f, &whole);
    }
}

/// llama.cpp reads our shards: `llama-gguf-split --merge` of them gives the
/// unsplit model back.
#[test]
fn llama_gguf_split_merges_our_output() {
    let dir = tempdir();
    let w = model();
    let paths = w
        .write_split(dir.path().join("ours"), SplitOptions::max_tensors(2))
        .unwrap();
    assert_eq!(paths.len(), 4);
    let merged = dir.path().join("merged.gguf");
    gguf_split(&["--merge".as_ref(), paths[0].as_os_str(), merged.as_os_str()]);
    let m = GgufFile::open(&merged).unwrap();
    assert_same_model(&m, &GgufFile::from_bytes(&w.to_bytes().unwrap()).unwrap());
}

#[test]
fn tensor_limit_counts_every_shard() {
    let dir = tempdir();
    let paths = write_shards(dir.path(), &good_shards());
    let limits = |max_tensors| edgewasm_gguf::ParseLimits {
        max_tensors,
        ..Default::default()
    };
    // Each shard holds at most 3 tensors; together 7.
    assert_eq!(
        GgufFile::open_with_limits(&paths[0], limits(7))
            .unwrap()
            .tensors()
            .len(),
        7
    );
    let e = GgufFile::open_with_limits(&paths[0], limits(6)).unwrap_err();
    assert!(
        matches!(
            e,
            GgufError::TooLarge {
                value: 7,
                limit: 6,
                ..
            }
        ),
        "{e:?}"
    );
    assert_names(&e, &paths[0], "tensor_count of the 3 shards");
}
