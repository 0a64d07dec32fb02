//! Incremental detokenization for streaming output.

use crate::Tokenizer;

/// Turns a stream of token ids into text, emitting only complete UTF-8.
///
/// A character split across tokens (byte-fallback or byte-level BPE pieces
/// of an emoji or CJK character) is held back until its last byte arrives;
/// bytes that can never become valid UTF-8 are emitted as U+FFFD at once.
#[derive(Clone, Debug, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
    render_special: bool,
}

impl StreamDecoder {
    /// A decoder that drops control tokens (like `decode(ids, false)`).
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// A decoder that renders control tokens' text if `render_special`.
    pub fn with_special(render_special: bool) -> StreamDecoder {
        StreamDecoder { pending: Vec::new(), render_special }
    }

    /// Adds token `id`'s bytes and returns the text that is now complete
    /// (possibly empty). Unknown ids add nothing.
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> String {
        if let Some(p) = tok.token_piece(id, self.render_special) {
            self.pending.extend_from_slice(p);
        }
        self.take_complete()
    }

    /// Returns whatever is held back, lossily (an unfinished character
    /// becomes U+FFFD), and resets the decoder.
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }

    /// Bytes held back waiting for the rest of a character.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, tail) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        // Invalid bytes: they will never complete.
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            rest = &tail[bad..];
                        }
                        // An incomplete character at the end: wait for more.
                        None => {
                            rest = tail;
                            break;
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let drop = self.pending.len() - keep;
        self.pending.drain(..drop);
        out
    }
}
