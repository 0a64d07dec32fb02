// The few ggml.c / ggml-cpu.c symbols that ggml-quants.c and
// ggml-cpu/quants.c need, so the golden harness links without the rest of
// ggml. Behaviour matches ggml's for the types the harness uses.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ggml.h"
#include "ggml-impl.h"
#define GGML_COMMON_DECL_C
#include "ggml-common.h"

void ggml_abort(const char * file, int line, const char * fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

static void geometry(enum ggml_type t, int64_t * blck, size_t * size, const char ** name) {
    switch (t) {
        case GGML_TYPE_F32:  *blck = 1;   *size = 4;   *name = "f32";  return;
        case GGML_TYPE_F16:  *blck = 1;   *size = 2;   *name = "f16";  return;
        case GGML_TYPE_Q4_0: *blck = 32;  *size = sizeof(block_q4_0); *name = "q4_0"; return;
        case GGML_TYPE_Q4_1: *blck = 32;  *size = sizeof(block_q4_1); *name = "q4_1"; return;
        case GGML_TYPE_Q5_0: *blck = 32;  *size = sizeof(block_q5_0); *name = "q5_0"; return;
        case GGML_TYPE_Q5_1: *blck = 32;  *size = sizeof(block_q5_1); *name = "q5_1"; return;
        case GGML_TYPE_Q8_0: *blck = 32;  *size = sizeof(block_q8_0); *name = "q8_0"; return;
        case GGML_TYPE_Q8_1: *blck = 32;  *size = sizeof(block_q8_1); *name = "q8_1"; return;
        case GGML_TYPE_Q2_K: *blck = 256; *size = sizeof(block_q2_K); *name = "q2_K"; return;
        case GGML_TYPE_Q3_K: *blck = 256; *size = sizeof(block_q3_K); *name = "q3_K"; return;
        case GGML_TYPE_Q4_K: *blck = 256; *size = sizeof(block_q4_K); *name = "q4_K"; return;
        case GGML_TYPE_Q5_K: *blck = 256; *size = sizeof(block_q5_K); *name = "q5_K"; return;
        case GGML_TYPE_Q6_K: *blck = 256; *size = sizeof(block_q6_K); *name = "q6_K"; return;
        case GGML_TYPE_Q8_K: *blck = 256; *size = sizeof(block_q8_K); *name = "q8_K"; return;
        case GGML_TYPE_IQ4_NL: *blck = 32; *size = sizeof(block_iq4_nl); *name = "iq4_nl"; return;
        case GGML_TYPE_IQ4_XS: *blck = 256; *size = sizeof(block_iq4_xs); *name = "iq4_xs"; return;
        default: ggml_abort(__FILE__, __LINE__, "type %d not in the golden harness", (int)t);
    }
}

size_t ggml_type_size(enum ggml_type t) {
    int64_t b; size_t s; const char * n;
    geometry(t, &b, &s, &n);
    return s;
}

size_t ggml_row_size(enum ggml_type t, int64_t ne) {
    int64_t b; size_t s; const char * n;
    geometry(t, &b, &s, &n);
    if (ne % b != 0) ggml_abort(__FILE__, __LINE__, "row of %lld is not whole blocks", (long long)ne);
    return s * (size_t)(ne / b);
}

const char * ggml_type_name(enum ggml_type t) {
    int64_t b; size_t s; const char * n;
    geometry(t, &b, &s, &n);
    return n;
}

// As ggml_cpu_init fills it.
float ggml_table_f32_f16[1 << 16];

__attribute__((constructor)) static void init_table(void) {
    for (int i = 0; i < (1 << 16); i++) {
        ggml_table_f32_f16[i] = GGML_COMPUTE_FP16_TO_FP32((ggml_fp16_t)i);
    }
}
