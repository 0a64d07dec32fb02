//! Split models through the engine: `Model::open` on the first shard of a
//! split model gives the same logits as the unsplit file (the real
//! SmolLM2, and a tiny model), and quantizing a split model gives the
//! unsplit model's output, as one file.

use std::num::NonZeroUsize;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use edgewasm_gguf::split::split_path;
use edgewasm_gguf::{GgmlType, GgufFile, GgufWriter, SplitOptions, KEY_SPLIT_COUNT};
use edgewasm_llm::quantize::{Ftype, QuantizeError, Quantizer};
use edgewasm_llm::{Context, Model, ThreadPool};
use edgewasm_test_support::{model_path, TinyLlama, SMOLLM2};

/// A writer holding `f`'s metadata and tensors, to split it.
fn writer_of(f: &GgufFile) -> GgufWriter {
    let mut w = GgufWriter::new();
    for (k, v) in f.metadata() {
        w.add_metadata(k.clone(), v.clone()).unwrap();
    }
    for t in f.tensors() {
        w.add_tensor(t.name.clone(), t.ty, &t.dims, f.tensor_data(t)).unwrap();
    }
    w
}

fn logits(model: Model, tokens: &[u32]) -> Vec<f32> {
    let mut ctx = Context::new(Arc::new(model), Arc::new(ThreadPool::new(2)), 64).unwrap();
    ctx.eval(tokens, true).unwrap().to_vec()
}

/// SmolLM2-135M split in 3 (272 tensors, at most 100 a shard; the same
/// bytes as llama-gguf-split's): opened from its first shard, every logit
/// of a prompt is bit-identical to the original file's.
#[test]
fn smollm2_split_gives_identical_logits() {
    let path = model_path(SMOLLM2);
    let whole = GgufFile::open(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = writer_of(&whole).write_split(dir.path().join("smollm2"), SplitOptions::max_tensors(100)).unwrap();
    assert_eq!(paths.len(), 3);
    assert!(paths[0].ends_with("smollm2-00001-of-00003.gguf"));
    drop(whole);
    // llama.cpp's gguf-split cuts the real file into the same bytes, so
    // what follows holds for its output too.
    let peer = dir.path().join("peer");
    let bin = edgewasm_test_support::peer_bin("llama-gguf-split");
    let out = Command::new(&bin)
        .args(["--split", "--split-max-tensors", "100"])
        .args([path.as_os_str(), peer.as_os_str()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (i, ours) in paths.iter().enumerate() {
        let theirs = split_path(&peer, i as u16, 3);
        assert!(std::fs::read(ours).unwrap() == std::fs::read(&theirs).unwrap(), "{} differs", theirs.display());
    }

    let split = Model::open(&paths[0]).unwrap();
    assert_eq!(split.file().shards().len(), 3);
    assert_eq!(split.file().tensors().len(), 272);
    let tokens = split.tokenizer().encode("The capital of France is Paris, and the capital of Italy is", true, false);
    assert!(tokens.len() > 8);
    let a = logits(split, &tokens);
    let b = logits(Model::open(&path).unwrap(), &tokens);
    assert_eq!(a.len(), tokens.len() * 49152);
    assert!(a == b, "logits of the split model differ from the unsplit file's");
}

fn tiny_paths(dir: &Path) -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let bytes = TinyLlama::with_type(GgmlType::Q4_1).gguf();
    let whole = dir.join("tiny.gguf");
    std::fs::write(&whole, &bytes).unwrap();
    let w = writer_of(&GgufFile::from_bytes(&bytes).unwrap());
    let shards = w.write_split(dir.join("tiny"), SplitOptions::max_tensors(5).metadata_only_first(true)).unwrap();
    assert!(shards.len() >= 3);
    (whole, shards)
}

#[test]
fn tiny_split_gives_identical_logits() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, shards) = tiny_paths(dir.path());
    let tokens = [5, 17, 250, 3, 3, 99, 1, 42];
    let a = logits(Model::open(&shards[0]).unwrap(), &tokens);
    let b = logits(Model::open(&whole).unwrap(), &tokens);
    assert_eq!(a, b);
    // The second shard alone is refused, naming the first.
    let e = Model::open(&shards[1]).unwrap_err().to_string();
    assert!(e.contains("open the first shard") && e.contains(&shards[0].display().to_string()), "{e}");
}

/// Quantizing a split model reads every shard and writes one file without
/// `split.*` keys (as llama-quantize without --keep-split): the same bytes
/// as quantizing the unsplit file.
#[test]
fn quantizing_a_split_model_gives_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, shards) = tiny_paths(dir.path());
    let threads = NonZeroUsize::new(2).unwrap();
    let out_whole = dir.path().join("q-whole.gguf");
    let out_split = dir.path().join("q-split.gguf");
    Quantizer::new(&whole, &out_whole, Ftype::Q8_0, false).unwrap().run(threads, |_| {}).unwrap();
    let q = Quantizer::new(&shards[0], &out_split, Ftype::Q8_0, false).unwrap();
    assert_eq!(q.source().shards().len(), shards.len());
    q.run(threads, |_| {}).unwrap();
    let (a, b) = (std::fs::read(&out_whole).unwrap(), std::fs::read(&out_split).unwrap());
    assert!(a == b, "quantized split model differs from the quantized unsplit one");
    let f = GgufFile::open(&out_split).unwrap();
    assert_eq!((f.shards().len(), f.get(KEY_SPLIT_COUNT)), (1, None));

    // No shard of the input may be the output.
    let e = Quantizer::new(&shards[0], &shards[2], Ftype::Q8_0, false).unwrap_err();
    assert!(matches!(e, QuantizeError::SameFile(_)), "{e:?}");
}
