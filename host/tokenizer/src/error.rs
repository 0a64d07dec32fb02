//! The crate's error type.

/// Why a tokenizer could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// `tokenizer.ggml.model` names a tokenizer this crate does not implement.
    #[error("unsupported tokenizer model `{name}` (supported: {supported})")]
    UnsupportedModel { name: String, supported: String },
    /// `tokenizer.ggml.pre` names a pre-tokenizer this crate does not implement.
    #[error("unsupported pre-tokenizer `{name}` (supported: {supported})")]
    UnsupportedPreTokenizer { name: String, supported: String },
    /// A required metadata key is absent.
    #[error("missing tokenizer metadata key `{0}`")]
    MissingKey(&'static str),
    /// A per-token array is shorter than the token list.
    #[error("`{key}` has {found} entries but the vocabulary has {expected} tokens")]
    LengthMismatch { key: &'static str, expected: usize, found: usize },
    /// The vocabulary is empty or does not fit in `u32` ids.
    #[error("`tokenizer.ggml.tokens` has {0} tokens; it must have between 1 and 2^31")]
    BadVocabSize(usize),
    /// The same token text appears twice.
    #[error("duplicate token in `tokenizer.ggml.tokens`: {text:?} has ids {first} and {second}")]
    DuplicateToken { text: String, first: u32, second: u32 },
    /// `add_bos`/`add_eos` is set but the matching token id is not.
    #[error("`{flag}` is true, but `{id_key}` is not set")]
    MissingSpecialToken { flag: &'static str, id_key: &'static str },
    /// `tokenizer.ggml.precompiled_charsmap` is malformed.
    #[error("`tokenizer.ggml.precompiled_charsmap` is malformed: {0}")]
    BadCharsmap(String),
    /// The GGUF reader failed.
    #[error(transparent)]
    Gguf(#[from] edgewasm_gguf::GgufError),
}

/// Tokenizer work stopped early because the caller's check asked it to
/// (typically a deadline passed); see [`crate::Tokenizer::encode_checked`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tokenizing was interrupted: the deadline passed")]
pub struct Interrupted;
