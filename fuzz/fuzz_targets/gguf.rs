//! The GGUF reader on arbitrary bytes: `GgufFile::from_bytes` with default
//! and with tight limits, then every accessor of whatever parsed (see
//! `check_gguf`), then the tokenizer built from the file's metadata, which
//! is hostile input too.
#![no_main]

use edgewasm_fuzz::check_gguf;
use edgewasm_gguf::{GgufFile, ParseLimits};
use edgewasm_tokenizer::{StreamDecoder, Tokenizer};
use libfuzzer_sys::fuzz_target;

const TIGHT: ParseLimits = ParseLimits {
    max_tensors: 16,
    max_kv: 64,
    max_string_len: 4096,
    max_array_len: 1024,
    max_array_depth: 2,
    max_dims: 4,
    max_tensor_name_len: 63,
};

fuzz_target!(|data: &[u8]| {
    let default = GgufFile::from_bytes(data);
    let tight = GgufFile::from_bytes_with_limits(data, TIGHT);
    match (&default, &tight) {
        (Ok(d), Ok(t)) => {
            // Debug, not PartialEq: NaN metadata must compare equal to itself.
            assert_eq!(format!("{:?}", d.metadata()), format!("{:?}", t.metadata()));
            assert_eq!(d.tensors(), t.tensors());
            assert_eq!((d.data_offset(), d.alignment()), (t.data_offset(), t.alignment()));
        }
        // Tighter limits can only reject more.
        (Err(e), Ok(_)) => panic!("default limits reject what tight limits accept: {e}"),
        _ => {}
    }
    if let Err(e) = &default {
        let _ = e.to_string();
    }
    let Ok(file) = default else { return };
    check_gguf(&file);

    if let Ok(tok) = Tokenizer::from_gguf(&file) {
        let _ = format!("{tok:?}");
        let n = tok.vocab_size() as u32;
        for text in ["Hello world, the <|im_start|>é 日本語 12\n\n  x", ""] {
            for (add, parse) in [(false, false), (true, true)] {
                let ids = tok.encode(text, add, parse);
                assert!(ids.iter().all(|&id| id < n), "encode gave an out-of-range id");
                let _ = tok.decode(&ids, parse);
            }
        }
        let mut d = StreamDecoder::with_special(true);
        for id in (0..n.min(512)).chain([n, n + 1, u32::MAX]) {
            assert_eq!(tok.token_piece(id, true).is_some(), id < n);
            let _ = d.push(&tok, id);
            let _ = (tok.token_text(id), tok.is_control(id), tok.is_eog(id));
        }
        let _ = d.finish();
    }
});
