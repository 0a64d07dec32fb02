// vocab-oracle: llama.cpp's (the peer's) tokenizer on a vocab-only GGUF,
// for tests/data/vocab/NAME.jsonl. Reads cases in the format of llama.cpp's
// models/ggml-vocab-*.gguf.inp files (texts separated by a line
// `__ggml_vocab_test__`) on stdin and prints one JSON line per case:
//
//   {"text": T, "ids": encode(T, add_special=false, parse_special=false),
//    "ids_special": encode(T, true, true),
//    "decoded": detokenize(ids, remove_special=false, unparse_special=false),
//    "decoded_special": detokenize(ids_special, false, true)}
//
// A decoded text that is not valid UTF-8 is given as "decoded_hex" /
// "decoded_special_hex" (its bytes in hex) instead. Built by
// scripts/vocab-reference.py.
//
//   vocab-oracle VOCAB.gguf < cases.inp > cases.jsonl
//
// With --decode, each stdin line is instead a list of token ids (decimal,
// space-separated) and each output line {"ids": .., "decoded": ..,
// "decoded_special": ..} decodes it both ways.
//
//   vocab-oracle VOCAB.gguf --decode < ids.txt
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

// JSON string literal (as reference-gen.cpp): UTF-8 passes through.
static std::string json_str(const std::string & s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': o += "\\\""; break;
            case '\\': o += "\\\\"; break;
            case '\n': o += "\\n"; break;
            case '\r': o += "\\r"; break;
            case '\t': o += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) { char b[8]; snprintf(b, sizeof b, "\\u%04x", c); o += b; }
                else o += (char) c;
        }
    }
    return o + "\"";
}

static bool valid_utf8(const std::string & s) {
    size_t i = 0, n = s.size();
    while (i < n) {
        unsigned char c = s[i];
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + len > n) return false;
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
        for (int k = 1; k < len; k++) {
            unsigned char d = s[i + k];
            if ((d & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

static std::string hex(const std::string & s) {
    std::string o;
    for (unsigned char c : s) { char b[4]; snprintf(b, sizeof b, "%02x", c); o += b; }
    return o;
}

static std::vector<llama_token> tokenize(const llama_vocab * vocab, const std::string & text, bool add_special, bool parse_special) {
    std::vector<llama_token> ids(text.size() + 16);
    int n = llama_tokenize(vocab, text.data(), (int) text.size(), ids.data(), (int) ids.size(), add_special, parse_special);
    if (n < 0) {
        ids.resize(-n);
        n = llama_tokenize(vocab, text.data(), (int) text.size(), ids.data(), (int) ids.size(), add_special, parse_special);
    }
    ids.resize(n);
    return ids;
}

static std::string detokenize(const llama_vocab * vocab, const std::vector<llama_token> & ids, bool special) {
    std::string text(ids.size() * 8 + 16, '\0');
    int n = llama_detokenize(vocab, ids.data(), (int) ids.size(), &text[0], (int) text.size(), false, special);
    if (n < 0) {
        text.resize(-n);
        n = llama_detokenize(vocab, ids.data(), (int) ids.size(), &text[0], (int) text.size(), false, special);
    }
    text.resize(n);
    return text;
}

static std::string ids_json(const std::vector<llama_token> & ids) {
    std::string o = "[";
    for (size_t i = 0; i < ids.size(); i++) o += (i ? "," : "") + std::to_string(ids[i]);
    return o + "]";
}

static std::string decoded_json(const char * key, const std::string & s) {
    if (valid_utf8(s)) return std::string("\"") + key + "\":" + json_str(s);
    return std::string("\"") + key + "_hex\":\"" + hex(s) + "\"";
}

int main(int argc, char ** argv) {
    const bool decode_mode = argc == 3 && std::string(argv[2]) == "--decode";
    if (argc != 2 && !decode_mode) { fprintf(stderr, "usage: %s VOCAB.gguf [--decode] < cases.inp\n", argv[0]); return 2; }
    std::string raw((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());

    llama_backend_init();
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    auto mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "load failed: %s\n", argv[1]); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);

    if (decode_mode) {
        size_t at = 0;
        while (at < raw.size()) {
            size_t eol = raw.find('\n', at);
            if (eol == std::string::npos) eol = raw.size();
            std::vector<llama_token> ids;
            const char * p = raw.c_str() + at;
            const char * end = raw.c_str() + eol;
            while (p < end) {
                char * q;
                long v = strtol(p, &q, 10);
                if (q == p) break;
                ids.push_back((llama_token) v);
                p = q;
            }
            std::string line = "{\"ids\":" + ids_json(ids) + "," + decoded_json("decoded", detokenize(vocab, ids, false)) + "," +
                               decoded_json("decoded_special", detokenize(vocab, ids, true)) + "}\n";
            fwrite(line.data(), 1, line.size(), stdout);
            at = eol + 1;
        }
        llama_model_free(model);
        return 0;
    }

    // Split exactly as llama.cpp's tests/test-tokenizer-0.cpp does.
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> cases;
    size_t pos = 0;
    while (pos < raw.size()) {
        size_t next = raw.find(sep, pos);
        if (next == std::string::npos) { cases.push_back(raw.substr(pos)); break; }
        cases.push_back(raw.substr(pos, next - pos));
        pos = next + sep.size();
    }

    for (const auto & text : cases) {
        auto ids = tokenize(vocab, text, false, false);
        auto ids_sp = tokenize(vocab, text, true, true);
        std::string line = "{\"text\":" + json_str(text) + ",\"ids\":" + ids_json(ids) + ",\"ids_special\":" + ids_json(ids_sp) + "," +
                           decoded_json("decoded", detokenize(vocab, ids, false)) + "," +
                           decoded_json("decoded_special", detokenize(vocab, ids_sp, true)) + "}\n";
        fwrite(line.data(), 1, line.size(), stdout);
    }
    llama_model_free(model);
    return 0;
}
