//! Split GGUF models: the `split.*` keys and llama.cpp's file naming.
//!
//! llama.cpp's `gguf-split` (and gguf-py's writer) cut a model into shards
//! named `PREFIX-00001-of-0000N.gguf` ... `PREFIX-0000N-of-0000N.gguf`. Each
//! shard is a whole GGUF file with its own tensor infos and data; the first
//! holds all the model's metadata, and every shard holds
//!
//! - `split.no` (u16): the shard's index, 0-based;
//! - `split.count` (u16): the number of shards;
//! - `split.tensors.count` (i32): the number of tensors in all shards.
//!
//! [`GgufFile::open`](crate::GgufFile::open) on the first shard opens them
//! all as one model, as llama.cpp's loader does
//! (`llama_model_loader`, `llama_split_prefix`, `llama_split_path`).

use std::path::{Path, PathBuf};

/// The 0-based index of a shard in a split model (u16).
pub const KEY_SPLIT_NO: &str = "split.no";
/// The number of shards of a split model (u16).
pub const KEY_SPLIT_COUNT: &str = "split.count";
/// The number of tensors in all the shards of a split model (i32).
pub const KEY_SPLIT_TENSORS_COUNT: &str = "split.tensors.count";

/// `-{no+1:05}-of-{count:05}.gguf`, the end of shard `split_no`'s name.
pub fn split_suffix(split_no: u16, count: u16) -> String {
    format!("-{:05}-of-{count:05}.gguf", u32::from(split_no) + 1)
}

/// The path of shard `split_no` (0-based) of `count`:
/// `{prefix}-{split_no + 1:05}-of-{count:05}.gguf`, as llama.cpp's
/// `llama_split_path`.
pub fn split_path(prefix: impl AsRef<Path>, split_no: u16, count: u16) -> PathBuf {
    let mut s = prefix.as_ref().as_os_str().to_owned();
    s.push(split_suffix(split_no, count));
    PathBuf::from(s)
}

/// The prefix of `path` if it is named as shard `split_no` (0-based) of
/// `count`, as llama.cpp's `llama_split_prefix`: `/m/model` for
/// `/m/model-00002-of-00003.gguf` with `split_no` 1 and `count` 3. `None`
/// when the name does not end so, or nothing comes before the suffix, or
/// the file name is not UTF-8.
pub fn split_prefix(path: impl AsRef<Path>, split_no: u16, count: u16) -> Option<PathBuf> {
    let path = path.as_ref();
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(&split_suffix(split_no, count))?;
    if stem.is_empty() {
        return None;
    }
    Some(path.with_file_name(stem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_matches_llama_cpp() {
        assert_eq!(
            split_path("/m/model", 0, 3),
            Path::new("/m/model-00001-of-00003.gguf")
        );
        assert_eq!(
            split_path("model", 2, 3),
            Path::new("model-00003-of-00003.gguf")
        );
        assert_eq!(
            split_path("m", 65534, 65535),
            Path::new("m-65535-of-65535.gguf")
        );
        assert_eq!(
            split_prefix("/m/model-00002-of-00003.gguf", 1, 3),
            Some(PathBuf::from("/m/model"))
        );
        assert_eq!(
            split_prefix("model-00001-of-00003.gguf", 0, 3),
            Some(PathBuf::from("model"))
        );
        // Wrong index, wrong count, no prefix, another extension.
        assert_eq!(split_prefix("/m/model-00002-of-00003.gguf", 0, 3), None);
        assert_eq!(split_prefix("/m/model-00001-of-00003.gguf", 0, 4), None);
        assert_eq!(split_prefix("/m/-00001-of-00003.gguf", 0, 3), None);
        assert_eq!(split_prefix("/m/model-00001-of-00003.bin", 0, 3), None);
        // A dot or dash in the prefix is kept.
        assert_eq!(
            split_prefix("a.b-c-00001-of-00002.gguf", 0, 2),
            Some(PathBuf::from("a.b-c"))
        );
    }
}
