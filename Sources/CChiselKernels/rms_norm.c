#include "chisel_kernels.h"
#include "simd_math.h"

#include <math.h>
#include <stdint.h>

// Root-mean-square normalisation of rows (Zhang & Sennrich 2019), as diffusers' `RMSNorm`
// computes it in FP32: y = x · 1/√(mean(x²) + ε), then · γ and + β where given.

static inline void store_one(void *out, int64_t i, float v, const int half) {
    if (half) ((uint16_t *)out)[i] = chisel_bf16_bits(v); else ((float *)out)[i] = v;
}

static void rms_norm_scalar(const float *x, void *out, int64_t n, const float *gamma, const float *beta,
                            float epsilon, int64_t row_begin, int64_t row_end, const int half) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *in = x + r * n;
        float squares = 0;
        for (int64_t i = 0; i < n; i++) squares += in[i] * in[i];
        float inverse = 1.0f / sqrtf(squares / (float)n + epsilon);
        for (int64_t i = 0; i < n; i++) {
            float v = in[i] * inverse;
            if (gamma) v *= gamma[i];
            if (beta) v += beta[i];
            store_one(out, r * n + i, v, half);
        }
    }
}

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

AVX512 static inline void rms_norm_avx512(const float *x, void *out, int64_t n, const float *gamma, const float *beta,
                                          float epsilon, int64_t row_begin, int64_t row_end, const int half) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *in = x + r * n;
        __m512 q = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __m512 v = _mm512_maskz_loadu_ps(chisel_tail16(n - i), in + i);
            q = _mm512_fmadd_ps(v, v, q);
        }
        __m512 k = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(q) / (float)n + epsilon));
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 mask = chisel_tail16(n - i);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, in + i), k);
            if (gamma && beta) {
                v = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(mask, gamma + i), _mm512_maskz_loadu_ps(mask, beta + i));
            } else if (gamma) {
                v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mask, gamma + i));
            } else if (beta) {
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, beta + i));
            }
            if (half) chisel_store16_bf16(mask, (uint16_t *)out + r * n + i, v);
            else _mm512_mask_storeu_ps((float *)out + r * n + i, mask, v);
        }
    }
}

AVX512 static void rms_norm_f(const float *x, void *o, int64_t n, const float *g, const float *b, float eps, int64_t r0,
                              int64_t r1) { rms_norm_avx512(x, o, n, g, b, eps, r0, r1, 0); }
AVX512 static void rms_norm_h(const float *x, void *o, int64_t n, const float *g, const float *b, float eps, int64_t r0,
                              int64_t r1) { rms_norm_avx512(x, o, n, g, b, eps, r0, r1, 1); }
#endif

void chisel_rms_norm(const float *x, float *out, int64_t n, const float *gamma, const float *beta, float epsilon,
                     int64_t row_begin, int64_t row_end) {
#if defined(__x86_64__)
    if (chisel_has_avx512()) { rms_norm_f(x, out, n, gamma, beta, epsilon, row_begin, row_end); return; }
#endif
    rms_norm_scalar(x, out, n, gamma, beta, epsilon, row_begin, row_end, 0);
}

void chisel_rms_norm_bf16(const float *x, uint16_t *out, int64_t n, const float *gamma, const float *beta,
                          float epsilon, int64_t row_begin, int64_t row_end) {
#if defined(__x86_64__)
    if (chisel_has_avx512()) { rms_norm_h(x, out, n, gamma, beta, epsilon, row_begin, row_end); return; }
#endif
    rms_norm_scalar(x, out, n, gamma, beta, epsilon, row_begin, row_end, 1);
}
