// Golden vectors for edgewasm-kernels, made with ggml's own C code.
//
// Build and run with ./make-goldens.sh (it fetches llama.cpp from the
// llama-cpp-python sdist on PyPI and compiles ggml-quants.c and the generic
// vec_dot code next to this file). Output: see write_* below and
// host/kernels/tests/data/README.md.
//
// The inputs come from a generator that uses only xorshift32 and exact f32
// arithmetic (+, -, *, by constants), so the Rust test rebuilds them bit for
// bit (host/kernels/tests/common/golden.rs mirrors this file; keep the two in
// step). inputs.f32 is written too so a mismatch is caught before any
// quantization is compared.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "ggml-quants.h"

#define N_PER_CASE 512
#define N_CASES 14
#define N_TOTAL (N_PER_CASE * N_CASES)

static uint32_t rng_state;
static uint32_t next_u32(void) {
    uint32_t s = rng_state;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    rng_state = s;
    return s;
}
// Uniform in [0, 1), a multiple of 2^-24.
static float unif(void) { return (float)(next_u32() >> 8) * (1.0f / 16777216.0f); }
// Uniform in [-1, 1).
static float sym(void) { return 2.0f * unif() - 1.0f; }

static void gen_case(int c, float * x) {
    rng_state = 0x9E3779B9u ^ (uint32_t)(c * 0x85EBCA6Bu + 1u);
    static const float scales[8] = {1e-6f, 1e-3f, 0.1f, 1.0f, 10.0f, 1000.0f, 1e5f, 65504.0f};
    for (int i = 0; i < N_PER_CASE; i++) {
        const int blk = i / 32, j = i % 32;
        float v = 0.0f;
        switch (c) {
            case 0: v = sym(); break;                                      // uniform
            case 1: {                                                      // bell
                // Draws sequenced explicitly: C leaves operand order open.
                const float a = unif(), b = unif(), c2 = unif(), d = unif();
                v = (a + b + c2 + d - 2.0f) * 1.5f;
                break;
            }
            case 2: v = 0.0f; break;                                       // zeros
            case 3: v = sym() * 1e-38f; break;                             // tiny, some subnormal
            case 4: v = sym() * 1e-42f; break;                             // all subnormal
            case 5: v = sym() * 1e30f; break;                              // huge (f16 overflow)
            case 6:                                                        // .5 ties (q8 d = 1)
                v = (j == 0) ? 127.0f : (float)((int)(next_u32() % 254u) - 127) + 0.5f;
                if (j == 1) v = -127.0f;
                break;
            case 7: v = sym() * 0.5f; break;                               // negative-dominant
            case 8: v = sym() * scales[blk % 8]; break;                    // scale per block
            case 9: v = 0.0f; break;                                       // constant blocks
            case 10: v = 0.0f; break;                                      // one nonzero per block
            case 11: v = (float)((int)(next_u32() % 31u) - 15); break;     // integer grid
            case 12: v = (float)(next_u32() % 16u) - 7.5f; break;          // half-integer grid
            case 13: v = (next_u32() & 1u) ? -0.0f : sym() * 1e-3f; break; // signed zeros
        }
        x[i] = v;
    }
    // Whole-block patterns, still drawing from the same generator.
    for (int b = 0; b < N_PER_CASE / 32; b++) {
        float * xb = x + b * 32;
        if (c == 7) {
            const uint32_t j = next_u32() % 32u;
            xb[j] = -3.0f - unif();
        } else if (c == 9) {
            const float k = sym() * 4.0f;
            for (int j = 0; j < 32; j++) xb[j] = k;
        } else if (c == 10) {
            const uint32_t j = next_u32() % 32u;
            xb[j] = sym() * 10.0f;
        }
    }
}

static void write_file(const char * dir, const char * name, const void * data, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE * f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

typedef void (*quant_fn)(const float *, void *, int64_t);
typedef void (*deq_fn)(const void *, float *, int64_t);
typedef void (*dot_fn)(int, float *, size_t, const void *, size_t, const void *, size_t, int);

// ggml-cpu's generic (non-SIMD) dot products.
void ggml_vec_dot_q4_0_q8_0_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q4_1_q8_1_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q5_0_q8_0_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q5_1_q8_1_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q8_0_q8_0_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q2_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q3_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q4_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q5_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q6_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_iq4_nl_q8_0_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_iq4_xs_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);

// IQ4_NL as llama-quantize writes it (quantize_iq4_nl: 7 scale trials;
// quantize_row_iq4_nl_ref, ggml's from_float, makes none).
static void quantize_iq4_nl_file(const float * x, void * y, int64_t k) { quantize_iq4_nl(x, y, 1, k, NULL); }

struct fmt {
    const char * name;
    enum ggml_type type;
    quant_fn quant;
    deq_fn deq;      // NULL: no dequantize in ggml
    dot_fn dot;      // NULL: no generic dot
    enum ggml_type dot_type;
    quant_fn dot_quant;
    unsigned skip;   // cases (bit mask) ggml's ref cannot take: row left zero
};

// The K-quant refs assert (nearest_int: |x| <= 4194303) on the tiny,
// subnormal and huge cases, so their rows stay all-zero bytes.
#define K_SKIP ((1u << 3) | (1u << 4) | (1u << 5))

int main(int argc, char ** argv) {
    const char * dir = argc > 1 ? argv[1] : ".";
    static float x[N_TOTAL];
    for (int c = 0; c < N_CASES; c++) gen_case(c, x + c * N_PER_CASE);
    write_file(dir, "inputs.f32", x, sizeof x);

    const struct fmt fmts[] = {
        {"q4_0", GGML_TYPE_Q4_0, (quant_fn)quantize_row_q4_0_ref, (deq_fn)dequantize_row_q4_0, ggml_vec_dot_q4_0_q8_0_generic, GGML_TYPE_Q8_0, (quant_fn)quantize_row_q8_0_ref},
        {"q4_1", GGML_TYPE_Q4_1, (quant_fn)quantize_row_q4_1_ref, (deq_fn)dequantize_row_q4_1, ggml_vec_dot_q4_1_q8_1_generic, GGML_TYPE_Q8_1, (quant_fn)quantize_row_q8_1_ref},
        {"q5_0", GGML_TYPE_Q5_0, (quant_fn)quantize_row_q5_0_ref, (deq_fn)dequantize_row_q5_0, ggml_vec_dot_q5_0_q8_0_generic, GGML_TYPE_Q8_0, (quant_fn)quantize_row_q8_0_ref},
        {"q5_1", GGML_TYPE_Q5_1, (quant_fn)quantize_row_q5_1_ref, (deq_fn)dequantize_row_q5_1, ggml_vec_dot_q5_1_q8_1_generic, GGML_TYPE_Q8_1, (quant_fn)quantize_row_q8_1_ref},
        {"q8_0", GGML_TYPE_Q8_0, (quant_fn)quantize_row_q8_0_ref, (deq_fn)dequantize_row_q8_0, ggml_vec_dot_q8_0_q8_0_generic, GGML_TYPE_Q8_0, (quant_fn)quantize_row_q8_0_ref},
        {"q8_1", GGML_TYPE_Q8_1, (quant_fn)quantize_row_q8_1_ref, NULL, NULL, GGML_TYPE_Q8_1, NULL},
        {"q2_K", GGML_TYPE_Q2_K, (quant_fn)quantize_row_q2_K_ref, (deq_fn)dequantize_row_q2_K, ggml_vec_dot_q2_K_q8_K_generic, GGML_TYPE_Q8_K, (quant_fn)quantize_row_q8_K_ref, K_SKIP},
        {"q3_K", GGML_TYPE_Q3_K, (quant_fn)quantize_row_q3_K_ref, (deq_fn)dequantize_row_q3_K, ggml_vec_dot_q3_K_q8_K_generic, GGML_TYPE_Q8_K, (quant_fn)quantize_row_q8_K_ref, K_SKIP},
        {"q4_K", GGML_TYPE_Q4_K, (quant_fn)quantize_row_q4_K_ref, (deq_fn)dequantize_row_q4_K, ggml_vec_dot_q4_K_q8_K_generic, GGML_TYPE_Q8_K, (quant_fn)quantize_row_q8_K_ref, K_SKIP},
        {"q5_K", GGML_TYPE_Q5_K, (quant_fn)quantize_row_q5_K_ref, (deq_fn)dequantize_row_q5_K, ggml_vec_dot_q5_K_q8_K_generic, GGML_TYPE_Q8_K, (quant_fn)quantize_row_q8_K_ref, K_SKIP},
        {"q6_K", GGML_TYPE_Q6_K, (quant_fn)quantize_row_q6_K_ref, (deq_fn)dequantize_row_q6_K, ggml_vec_dot_q6_K_q8_K_generic, GGML_TYPE_Q8_K, (quant_fn)quantize_row_q8_K_ref, K_SKIP},
        {"q8_K", GGML_TYPE_Q8_K, (quant_fn)quantize_row_q8_K_ref, (deq_fn)dequantize_row_q8_K, NULL, GGML_TYPE_Q8_K, NULL, K_SKIP},
        // IQ4_NL's ref leaves the levels of an all-zero block uninitialized
        // (stack contents; d is 0): the test compares those blocks' d only.
        {"iq4_nl", GGML_TYPE_IQ4_NL, (quant_fn)quantize_row_iq4_nl_ref, (deq_fn)dequantize_row_iq4_nl, ggml_vec_dot_iq4_nl_q8_0_generic, GGML_TYPE_Q8_0, (quant_fn)quantize_row_q8_0_ref},
        {"iq4_nl.file", GGML_TYPE_IQ4_NL, quantize_iq4_nl_file, NULL, NULL, GGML_TYPE_Q8_0, NULL},
        {"iq4_xs", GGML_TYPE_IQ4_XS, (quant_fn)quantize_row_iq4_xs_ref, (deq_fn)dequantize_row_iq4_xs, ggml_vec_dot_iq4_xs_q8_K_generic, GGML_TYPE_Q8_K, (quant_fn)quantize_row_q8_K_ref, K_SKIP},
    };
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        const struct fmt * t = &fmts[f];
        const size_t row = ggml_row_size(t->type, N_PER_CASE);
        unsigned char * q = calloc(N_CASES, row);
        float * d = calloc(N_TOTAL, sizeof(float));
        char name[64];
        for (int c = 0; c < N_CASES; c++) {
            if (t->skip & (1u << c)) continue;
            t->quant(x + c * N_PER_CASE, q + c * row, N_PER_CASE);
        }
        snprintf(name, sizeof name, "%s.bin", t->name);
        write_file(dir, name, q, N_CASES * row);
        if (t->deq) {
            t->deq(q, d, N_TOTAL);
            snprintf(name, sizeof name, "%s.deq.f32", t->name);
            write_file(dir, name, d, N_TOTAL * sizeof(float));
        }
        if (t->dot) {
            // dot[c] = weights from case c . activations from case (c + 1) % N_CASES
            // (0 where either case is skipped)
            const size_t yrow = ggml_row_size(t->dot_type, N_PER_CASE);
            unsigned char * y = calloc(N_CASES, yrow);
            float dots[N_CASES];
            for (int c = 0; c < N_CASES; c++) {
                if (t->skip & (1u << c)) continue;
                t->dot_quant(x + c * N_PER_CASE, y + c * yrow, N_PER_CASE);
            }
            for (int c = 0; c < N_CASES; c++) {
                if (t->skip & ((1u << c) | (1u << ((c + 1) % N_CASES)))) {
                    dots[c] = 0.0f;  // not compared
                    continue;
                }
                t->dot(N_PER_CASE, &dots[c], 0, q + c * row, 0, y + ((c + 1) % N_CASES) * yrow, 0, 1);
            }
            snprintf(name, sizeof name, "%s.dot.f32", t->name);
            write_file(dir, name, dots, sizeof dots);
            free(y);
        }
        free(q);
        free(d);
    }
    return 0;
}
