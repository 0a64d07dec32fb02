//! [`TokenizerConfig`]: everything a tokenizer is built from, as read from
//! GGUF `tokenizer.*` metadata.

use edgewasm_gguf::{Array, GgufError, GgufFile, Value};

use crate::{Tokenizer, TokenizerError};

/// The tokenizer metadata of a model, one field per GGUF key. `None` means
/// the key is absent, so llama.cpp's default for the model type applies.
#[derive(Clone, Debug, Default)]
pub struct TokenizerConfig {
    /// `tokenizer.ggml.model`: `gpt2` (byte-level BPE) or `llama` (SentencePiece BPE).
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer of a `gpt2` model (e.g. `smollm`).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`: token texts, indexed by id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control,
    /// 4 user-defined, 5 unused, 6 byte. Absent: all normal.
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.scores`: merge priority of `llama` tokens.
    pub scores: Option<Vec<f32>>,
    /// `tokenizer.ggml.merges`: `"left right"` pairs of a `gpt2` model, by rank.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.eot_token_id`.
    pub eot: Option<u32>,
    /// `tokenizer.ggml.eom_token_id`.
    pub eom: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unk: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`.
    pub pad: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`.
    pub add_eos: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix`.
    pub add_space_prefix: Option<bool>,
    /// `tokenizer.ggml.seperator_token_id` (sic): closes a `bert` (WPM) input.
    pub sep: Option<u32>,
    /// `tokenizer.ggml.mask_token_id`.
    pub mask: Option<u32>,
    /// `tokenizer.ggml.fim_{pre,suf,mid,pad,rep,sep}_token_id` (or the
    /// deprecated `prefix/suffix/middle_token_id`), in that order.
    pub fim: [Option<u32>; 6],
    /// `tokenizer.ggml.remove_extra_whitespaces` (`t5`/UGM).
    pub remove_extra_whitespaces: Option<bool>,
    /// `tokenizer.ggml.precompiled_charsmap` (`t5`/UGM): SentencePiece's
    /// normalization table.
    pub precompiled_charsmap: Option<Vec<u8>>,
    /// `tokenizer.ggml.normalizer.lowercase` (`bert`/WPM; default true).
    pub lowercase: Option<bool>,
    /// `tokenizer.ggml.normalizer.strip_accents` (`bert`/WPM; default: as `lowercase`).
    pub strip_accents: Option<bool>,
    /// `general.name`: llama.cpp gives Phi-3's special tokens `rstrip` by it.
    pub name: Option<String>,
    /// `general.architecture`: llama.cpp gives `<mask>` `lstrip` for
    /// `nomic-bert-moe` and `jina-bert-v3`.
    pub architecture: Option<String>,
}

pub(crate) const KEY_MODEL: &str = "tokenizer.ggml.model";
pub(crate) const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
pub(crate) const KEY_TYPES: &str = "tokenizer.ggml.token_type";
pub(crate) const KEY_SCORES: &str = "tokenizer.ggml.scores";
pub(crate) const KEY_MERGES: &str = "tokenizer.ggml.merges";
pub(crate) const KEY_CHARSMAP: &str = "tokenizer.ggml.precompiled_charsmap";

impl TokenizerConfig {
    /// Reads the `tokenizer.*` keys of a GGUF file.
    pub fn from_gguf(g: &GgufFile) -> Result<TokenizerConfig, TokenizerError> {
        let model = g.get_str(KEY_MODEL)?.ok_or(TokenizerError::MissingKey(KEY_MODEL))?.to_string();
        let tokens = g.get_str_array(KEY_TOKENS)?.ok_or(TokenizerError::MissingKey(KEY_TOKENS))?.to_vec();
        let merges = g.get_str_array(KEY_MERGES)?.map(<[String]>::to_vec).unwrap_or_default();
        Ok(TokenizerConfig {
            model,
            pre: g.get_str("tokenizer.ggml.pre")?.map(str::to_string),
            tokens,
            token_types: g.get_i32_array(KEY_TYPES)?.map(|a| a.to_vec()),
            scores: g.get_f32_array(KEY_SCORES)?.map(|a| a.to_vec()),
            merges,
            bos: g.get_u32("tokenizer.ggml.bos_token_id")?,
            eos: g.get_u32("tokenizer.ggml.eos_token_id")?,
            eot: g.get_u32("tokenizer.ggml.eot_token_id")?,
            eom: g.get_u32("tokenizer.ggml.eom_token_id")?,
            unk: g.get_u32("tokenizer.ggml.unknown_token_id")?,
            pad: g.get_u32("tokenizer.ggml.padding_token_id")?,
            add_bos: g.get_bool("tokenizer.ggml.add_bos_token")?,
            add_eos: g.get_bool("tokenizer.ggml.add_eos_token")?,
            add_space_prefix: g.get_bool("tokenizer.ggml.add_space_prefix")?,
            sep: g.get_u32("tokenizer.ggml.seperator_token_id")?,
            mask: g.get_u32("tokenizer.ggml.mask_token_id")?,
            fim: [
                fim_id(g, "fim_pre", "prefix")?,
                fim_id(g, "fim_suf", "suffix")?,
                fim_id(g, "fim_mid", "middle")?,
                g.get_u32("tokenizer.ggml.fim_pad_token_id")?,
                g.get_u32("tokenizer.ggml.fim_rep_token_id")?,
                g.get_u32("tokenizer.ggml.fim_sep_token_id")?,
            ],
            remove_extra_whitespaces: g.get_bool("tokenizer.ggml.remove_extra_whitespaces")?,
            precompiled_charsmap: match g.get(KEY_CHARSMAP) {
                None => None,
                Some(Value::Array(Array::U8(v))) => Some(v.clone()),
                Some(Value::Array(Array::I8(v))) => Some(v.iter().map(|&b| b as u8).collect()),
                Some(v) => {
                    return Err(GgufError::MetadataType { key: KEY_CHARSMAP.into(), expected: "array[u8]", found: v.type_name() }.into())
                }
            },
            lowercase: g.get_bool("tokenizer.ggml.normalizer.lowercase")?,
            strip_accents: g.get_bool("tokenizer.ggml.normalizer.strip_accents")?,
            name: g.get_str("general.name")?.map(str::to_string),
            architecture: g.get_str("general.architecture")?.map(str::to_string),
        })
    }
}

/// A FIM token id: the current key, else the deprecated one (which llama.cpp
/// reads after it, so it wins when both are present).
fn fim_id(g: &GgufFile, new: &str, old: &str) -> Result<Option<u32>, TokenizerError> {
    let new = g.get_u32(&format!("tokenizer.ggml.{new}_token_id"))?;
    let old = g.get_u32(&format!("tokenizer.ggml.{old}_token_id"))?;
    Ok(old.or(new))
}

impl Tokenizer {
    /// Builds the tokenizer of a GGUF model from its `tokenizer.*` metadata.
    pub fn from_gguf(g: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        Tokenizer::new(TokenizerConfig::from_gguf(g)?)
    }
}
