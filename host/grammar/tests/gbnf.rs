//! GBNF parsing and matching, with llama.cpp's own validator as the oracle
//! on llama.cpp's grammars, and the trie walk checked token by token.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use edgewasm_grammar::{Grammar, GrammarError, Matcher, TokenTrie};
use edgewasm_test_support::{peer_bin, peer_dir, require, Rng};

fn peer_grammars() -> Vec<(String, String)> {
    let dir = peer_dir().join("src/vendor/llama.cpp/grammars");
    require(
        dir.join("json.gbnf").is_file(),
        "the peer's grammars/ folder: run `./just peer`",
    );
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gbnf"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A small vocabulary with single characters, multi-character pieces and
/// bytes that split UTF-8 characters, so generated text exercises every
/// path of the trie walk.
fn test_vocab() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0x20u8..0x7F).map(|b| vec![b]).collect();
    for s in [
        "\n", "\t", "é", "日", "本", "語", "ä", "🙂", "true", "false", "null", "\": ", ", ", "  ",
        "\n  ", "{\"", "\"}", "ab", "the", " a", "12", "e+", "-0", ".5", "\\n", "\\u00", "Nf3",
        "O-O", "1. ", "()", "x = ", "int ", ";\n", "ア", "カタ",
    ] {
        v.push(s.as_bytes().to_vec());
    }
    // Halves of multi-byte characters, as byte-fallback tokens are.
    for s in ["日", "é", "🙂", "ア"] {
        let b = s.as_bytes();
        v.push(b[..1].to_vec());
        v.push(b[1..].to_vec());
    }
    v
}

/// Random text of the grammar: tokens drawn from the allowed set until the
/// grammar may end (and a coin says stop) or `cap` tokens. `None` if the cap
/// was reached where the text cannot end.
fn sample(
    g: &Arc<Grammar>,
    vocab: &[Vec<u8>],
    trie: &TokenTrie,
    rng: &mut Rng,
    cap: usize,
) -> Option<String> {
    let eog = vocab.len() as u32; // an id past the vocabulary stands for "end"
    let mut m = Matcher::new(Arc::clone(g));
    let mut text = Vec::new();
    for _ in 0..cap {
        let mask = m.fill_mask(trie, &[]);
        let allowed: Vec<u32> = (0..vocab.len() as u32)
            .filter(|&t| mask.allows(t))
            .collect();
        if m.can_end() && (allowed.is_empty() || (!text.is_empty() && rng.below(8) == 0)) {
            return String::from_utf8(text).ok();
        }
        assert!(
            !allowed.is_empty(),
            "dead end after {:?}",
            String::from_utf8_lossy(&text)
        );
        // Lean towards closing characters, or recursive grammars (C) rarely end.
        let closing: Vec<u32> = allowed
            .iter()
            .copied()
            .filter(|&t| {
                matches!(
                    &vocab[t as usize][..],
                    b"}" | b")" | b";" | b"\n" | b"]" | b"\""
                )
            })
            .collect();
        let pool = if !closing.is_empty() && rng.below(2) == 0 {
            &closing
        } else {
            &allowed
        };
        let t = pool[rng.below(pool.len() as u64) as usize];
        assert!(
            m.accept_token(t, &vocab[t as usize]),
            "mask allowed a token the matcher rejects"
        );
        text.extend_from_slice(&vocab[t as usize]);
        let _ = eog;
    }
    m.can_end().then(|| String::from_utf8(text).ok()).flatten()
}

struct Validator {
    bin: PathBuf,
    dir: tempfile_dir::Dir,
}

mod tempfile_dir {
    /// A scratch directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Validator {
    fn new() -> Validator {
        let dir = std::env::temp_dir().join(format!("edgewasm-gbnf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Validator {
            bin: peer_bin("llama-gbnf-validator"),
            dir: tempfile_dir::Dir(dir),
        }
    }

    /// llama.cpp's verdict on `input` against `grammar`.
    fn valid(&self, grammar: &str, input: &str) -> bool {
        let g = self.dir.0.join("g.gbnf");
        let i = self.dir.0.join("input.txt");
        std::fs::write(&g, grammar).unwrap();
        std::fs::write(&i, input).unwrap();
        let out = Command::new(&self.bin)
            .arg(&g)
            .arg(&i)
            .output()
            .expect("run llama-gbnf-validator");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if stdout.contains("Input string is valid") {
            return true;
        }
        assert!(
            stdout.contains("Input string is invalid"),
            "validator failed: {stdout}"
        );
        false
    }
}

#[test]
fn every_llama_cpp_grammar_parses() {
    let grammars = peer_grammars();
    assert!(grammars.len() >= 8, "{grammars:?}");
    for (name, src) in &grammars {
        let g = Grammar::parse(src).unwrap_or_else(|e| panic!("{name}: {e}"));
        println!("{name}: {} rules", g.rule_count());
    }
}

/// Generated texts are accepted by llama.cpp's validator, and on mutated
/// texts our verdict equals llama.cpp's.
#[test]
fn generated_text_passes_llama_cpp_validator() {
    let vocab = test_vocab();
    let trie = TokenTrie::new(vocab.len(), |id| vocab.get(id as usize).map(|v| &v[..]));
    let validator = Validator::new();
    let mut rng = Rng::new(0x6b6e_6621);
    let mut summary = Vec::new();
    let mut total = 0;
    for (name, src) in peer_grammars() {
        let g = Arc::new(Grammar::parse(&src).unwrap());
        let (mut generated, mut agreed_mutations) = (0, 0);
        for _ in 0..16 {
            let Some(text) = sample(&g, &vocab, &trie, &mut rng, 400) else {
                continue;
            };
            assert!(g.accepts(&text), "{name}: own sample rejected: {text:?}");
            assert!(
                validator.valid(&src, &text),
                "{name}: llama.cpp rejects generated {text:?}"
            );
            generated += 1;
            // One mutation: drop, duplicate or replace a character.
            let chars: Vec<char> = text.chars().collect();
            if chars.is_empty() {
                continue;
            }
            let at = rng.below(chars.len() as u64) as usize;
            let mut m = chars.clone();
            match rng.below(3) {
                0 => {
                    m.remove(at);
                }
                1 => m.insert(at, chars[at]),
                _ => m[at] = ['"', '{', ' ', 'x', '1', '\n', '日'][rng.below(7) as usize],
            }
            let mutated: String = m.into_iter().collect();
            assert_eq!(
                g.accepts(&mutated),
                validator.valid(&src, &mutated),
                "{name}: verdicts differ on {mutated:?}"
            );
            agreed_mutations += 1;
        }
        assert!(
            generated >= 1,
            "{name}: none of 16 samples ended within the cap"
        );
        total += generated;
        summary.push(format!(
            "{name}: {generated} generated, {agreed_mutations} mutations agreed"
        ));
    }
    println!("{}", summary.join("\n"));
    assert!(total >= 60, "only {total} samples ended within the cap");
}

/// The trie walk allows exactly the tokens that stepping each token's bytes
/// allows, on a real 128k-token vocabulary, across the states of a JSON text.
#[test]
fn mask_matches_token_by_token_on_a_real_vocabulary() {
    let path = edgewasm_test_support::peer_models_dir().join("ggml-vocab-llama-bpe.gguf");
    let file = edgewasm_gguf::GgufFile::open(&path).unwrap();
    let tok = edgewasm_tokenizer::Tokenizer::from_gguf(&file).unwrap();
    let n = tok.vocab_size();
    let trie = TokenTrie::new(n, |id| tok.token_bytes(id));
    let json = peer_grammars()
        .into_iter()
        .find(|(n, _)| n == "json.gbnf")
        .unwrap()
        .1;
    let g = Arc::new(Grammar::parse(&json).unwrap());
    let text = "{\"name\": \"日本\\n\", \"n\": [1, -2.5e3, true, null], \"o\": {}}";
    let eog = tok.eog_tokens().to_vec();
    let bytes = text.as_bytes();
    // Check at several prefixes, including ones inside a UTF-8 character.
    for cut in [0, 1, 2, 9, 10, 11, 12, 15, 27, 40, bytes.len()] {
        let mut m = Matcher::new(Arc::clone(&g));
        assert!(m.accept_bytes(&bytes[..cut]), "prefix {cut} rejected");
        let mask = m.fill_mask(&trie, &eog);
        let mut allowed = 0;
        for id in 0..n as u32 {
            let b = tok.token_bytes(id).unwrap();
            let expect = if b.is_empty() {
                eog.contains(&id) && m.can_end()
            } else {
                m.allows_token(id, b)
            };
            assert_eq!(
                mask.allows(id),
                expect,
                "prefix {cut}: token {id} {:?}",
                String::from_utf8_lossy(b)
            );
            allowed += expect as usize;
        }
        println!("prefix {cut:>2}: {allowed} of {n} tokens allowed");
    }
}

#[test]
fn syntax_errors_name_line_and_column() {
    let cases: &[(&str, (usize, usize))] = &[
        ("root ::= \"abc", (1, 10)),
        ("root ::= [a-", (1, 10)),
        ("root ::= a\na ::= \"x\" )", (2, 11)),
        ("root ::= \"a\"\n  | \"b\"", (2, 3)),
        ("root ::= \"\\q\"", (1, 11)),
        ("root := \"a\"", (1, 6)),
        ("root ::= * \"a\"", (1, 10)),
        ("root ::= \"a\"{3,1}", (1, 13)),
        ("root ::= [z-a]", (1, 13)),
        ("root ::= \"a\"\nroot ::= \"b\"", (2, 1)),
    ];
    for (src, (line, column)) in cases {
        match Grammar::parse(src) {
            Err(GrammarError::Syntax {
                line: l,
                column: c,
                message,
            }) => {
                assert_eq!((l, c), (*line, *column), "{src:?}: {message}");
            }
            other => panic!("{src:?}: expected a syntax error, got {other:?}"),
        }
    }
}

#[test]
fn semantic_errors() {
    assert!(matches!(
        Grammar::parse("root ::= item\nitem ::= [a-z] other"),
        Err(GrammarError::UndefinedRule { ref name, line: 2, column: 16 }) if name == "other"
    ));
    assert_eq!(
        Grammar::parse("start ::= \"a\"").unwrap_err(),
        GrammarError::MissingRoot("root".into())
    );
    assert!(
        matches!(Grammar::parse("root ::= root \"a\" | \"b\""), Err(GrammarError::LeftRecursion(r)) if r == "root")
    );
    // Through a nullable prefix and a helper rule.
    assert!(matches!(
        Grammar::parse("root ::= x? a\na ::= (\"\" | root) \"b\"\nx ::= \"x\""),
        Err(GrammarError::LeftRecursion(_))
    ));
    assert!(matches!(
        Grammar::parse("root ::= \"a\"{1,100000}"),
        Err(GrammarError::TooLarge { .. })
    ));
    let deep = format!("root ::= {}\"a\"{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(matches!(
        Grammar::parse(&deep),
        Err(GrammarError::TooLarge { .. })
    ));
    assert!(
        Grammar::parse("root ::= <think>").is_err(),
        "token text without a vocabulary"
    );
}

#[test]
fn repetitions_and_classes() {
    let g = Grammar::parse("root ::= [a-c]{2,3} \"-\"? [^0-9\\n]+ x*\nx ::= \"日\" | .").unwrap();
    for ok in ["ab-x", "abcy", "aa日本z", "abc-zz日"] {
        assert!(g.accepts(ok), "{ok}");
    }
    for bad in ["a-x", "ab", "ab0", "ab\n-", "a"] {
        assert!(!g.accepts(bad), "{bad}");
    }
    let g = Grammar::parse("root ::= (\"ab\"){3}").unwrap();
    assert!(g.accepts("ababab") && !g.accepts("abab") && !g.accepts("abababab"));
    let g = Grammar::parse("root ::= \"a\"{2,} # comment\n").unwrap();
    assert!(g.accepts("aa") && g.accepts("aaaaa") && !g.accepts("a"));
}

#[test]
fn token_elements() {
    // Token 7 is `<think>`; 8 is `</think>`; text tokens 0..3.
    let vocab: Vec<&[u8]> = vec![b"a", b"b", b"ab", b"", b"", b"", b"", b"", b""];
    let lookup = |t: &str| match t {
        "<think>" => Some(7),
        "</think>" => Some(8),
        _ => None,
    };
    let g = Arc::new(
        Grammar::parse_with_vocab("root ::= <think> (!<[8]>)* </think> \"a\"", "root", &lookup)
            .unwrap(),
    );
    let trie = TokenTrie::new(vocab.len(), |id| vocab.get(id as usize).copied());
    let mut m = Matcher::new(Arc::clone(&g));
    let mask = m.fill_mask(&trie, &[]);
    assert_eq!(
        (0..9).filter(|&t| mask.allows(t)).collect::<Vec<_>>(),
        vec![7]
    );
    assert!(m.accept_token(7, b""));
    assert!(m.accept_token(2, b"ab"));
    let mask = m.fill_mask(&trie, &[]);
    assert!(mask.allows(0) && mask.allows(8) && !mask.allows(9));
    assert!(m.accept_token(8, b""));
    assert!(!m.can_end());
    assert!(m.accept_token(0, b"a"));
    assert!(m.can_end());
}

#[test]
fn deep_rule_chains_do_not_overflow() {
    let mut src = String::from("root ::= r0\n");
    for i in 0..50_000 {
        src.push_str(&format!("r{i} ::= r{}\n", i + 1));
    }
    src.push_str("r50000 ::= \"z\"\n");
    let g = Grammar::parse(&src).unwrap();
    assert!(g.accepts("z") && !g.accepts("y"));
}
