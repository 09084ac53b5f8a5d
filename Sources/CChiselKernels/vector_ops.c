#include "chisel_kernels.h"
#include "simd_math.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f,fma")))
#endif

// Element-wise and reduction kernels on rows of channels-last data, vectorised with AVX-512
// where the CPU has it. Each takes a range of rows so callers can split work over threads.

/// erf(x) from erfc's Chebyshev fit (Numerical Recipes `erfcc`, fractional error < 1.2e-7).
static inline float erf_scalar(float x) {
    float z = fabsf(x);
    float t = 1.0f / (1.0f + 0.5f * z);
    float r = t * expf(-z * z - 1.26551223f +
                       t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f +
                       t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f +
                       t * 0.17087277f)))))))));
    return x >= 0 ? 1.0f - r : r - 1.0f;
}

#if defined(__x86_64__)
AVX512 static inline __m512 silu16(__m512 x) {
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), chisel_exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

AVX512 static inline __m512 erf16(__m512 x) {
    __m512 z = _mm512_abs_ps(x);
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.5f), z, _mm512_set1_ps(1.0f)));
    static const float c[] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                              -0.18628806f, 0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f};
    __m512 p = _mm512_set1_ps(c[0]);
    for (int i = 1; i < 10; i++) p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c[i]));
    __m512 r = _mm512_mul_ps(t, chisel_exp16(_mm512_sub_ps(p, _mm512_mul_ps(z, z))));
    __m512 e = _mm512_sub_ps(_mm512_set1_ps(1.0f), r);
    __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_sub_ps(e, negative, _mm512_setzero_ps(), e);
}

AVX512 static void sums_avx512(const float *x, int64_t channels, int64_t row_begin, int64_t row_end, double *sum,
                               double *sumsq) {
    // Float partial sums over blocks of 64 rows, gathered into double, keep large maps accurate.
    for (int64_t c0 = 0; c0 < channels; c0 += 16) {
        int64_t width = channels - c0 < 16 ? channels - c0 : 16;
        __mmask16 mask = width == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << width) - 1);
        double total[16] = {0}, total2[16] = {0};
        for (int64_t r0 = row_begin; r0 < row_end; r0 += 64) {
            int64_t r1 = r0 + 64 < row_end ? r0 + 64 : row_end;
            __m512 s = _mm512_setzero_ps(), q = _mm512_setzero_ps();
            for (int64_t r = r0; r < r1; r++) {
                __m512 v = _mm512_maskz_loadu_ps(mask, x + r * channels + c0);
                s = _mm512_add_ps(s, v);
                q = _mm512_fmadd_ps(v, v, q);
            }
            float fs[16], fq[16];
            _mm512_storeu_ps(fs, s);
            _mm512_storeu_ps(fq, q);
            for (int i = 0; i < width; i++) { total[i] += fs[i]; total2[i] += fq[i]; }
        }
        for (int i = 0; i < width; i++) { sum[c0 + i] += total[i]; sumsq[c0 + i] += total2[i]; }
    }
}

AVX512 static void scale_shift_avx512(const float *x, float *out, int64_t channels, const float *scale,
                                      const float *shift, int silu, int64_t row_begin, int64_t row_end) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *in = x + r * channels;
        float *o = out + r * channels;
        for (int64_t c0 = 0; c0 < channels; c0 += 16) {
            int64_t width = channels - c0 < 16 ? channels - c0 : 16;
            __mmask16 mask = width == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << width) - 1);
            __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, in + c0), _mm512_maskz_loadu_ps(mask, scale + c0),
                                       _mm512_maskz_loadu_ps(mask, shift + c0));
            if (silu) v = silu16(v);
            _mm512_mask_storeu_ps(o + c0, mask, v);
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))
static void scale_shift_bf16_avx512(const float *x, uint16_t *out, int64_t channels, const float *scale,
                                    const float *shift, int silu, int64_t row_begin, int64_t row_end) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *in = x + r * channels;
        uint16_t *o = out + r * channels;
        for (int64_t c0 = 0; c0 < channels; c0 += 16) {
            int64_t width = channels - c0 < 16 ? channels - c0 : 16;
            __mmask16 mask = width == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << width) - 1);
            __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, in + c0), _mm512_maskz_loadu_ps(mask, scale + c0),
                                       _mm512_maskz_loadu_ps(mask, shift + c0));
            if (silu) v = silu16(v);
            __m256i packed = (__m256i)_mm512_cvtneps_pbh(v);
            _mm256_mask_storeu_epi16(o + c0, mask, packed);
        }
    }
}

AVX512 static void geglu_avx512(const float *x, float *out, int64_t width, int64_t row_begin, int64_t row_end) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), root = _mm512_set1_ps(0.70710678118654752f);
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *a = x + r * 2 * width, *b = a + width;
        float *o = out + r * width;
        for (int64_t c0 = 0; c0 < width; c0 += 16) {
            int64_t w = width - c0 < 16 ? width - c0 : 16;
            __mmask16 mask = w == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
            __m512 gate = _mm512_maskz_loadu_ps(mask, b + c0);
            __m512 gelu = _mm512_mul_ps(_mm512_mul_ps(half, gate), _mm512_add_ps(one, erf16(_mm512_mul_ps(gate, root))));
            _mm512_mask_storeu_ps(o + c0, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, a + c0), gelu));
        }
    }
}

AVX512 static void activation_avx512(float *x, int64_t count, int kind) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), root = _mm512_set1_ps(0.70710678118654752f);
    for (int64_t i = 0; i < count; i += 16) {
        int64_t w = count - i < 16 ? count - i : 16;
        __mmask16 mask = w == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
        __m512 v = _mm512_maskz_loadu_ps(mask, x + i);
        switch (kind) {
        case 0: v = silu16(v); break;
        case 1: v = _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, erf16(_mm512_mul_ps(v, root)))); break;
        default: v = _mm512_div_ps(v, _mm512_add_ps(one, chisel_exp16(_mm512_mul_ps(_mm512_set1_ps(-1.702f), v)))); break;
        }
        _mm512_mask_storeu_ps(x + i, mask, v);
    }
}
#endif

void chisel_channel_sums(const float *x, int64_t channels, int64_t row_begin, int64_t row_end, double *sum,
                         double *sumsq) {
#if defined(__x86_64__)
    if (chisel_has_avx512()) { sums_avx512(x, channels, row_begin, row_end, sum, sumsq); return; }
#endif
    for (int64_t r = row_begin; r < row_end; r++)
        for (int64_t c = 0; c < channels; c++) {
            double v = x[r * channels + c];
            sum[c] += v;
            sumsq[c] += v * v;
        }
}

void chisel_scale_shift(const float *x, float *out, int64_t channels, const float *scale, const float *shift,
                        int silu, int64_t row_begin, int64_t row_end) {
#if defined(__x86_64__)
    if (chisel_has_avx512()) { scale_shift_avx512(x, out, channels, scale, shift, silu, row_begin, row_end); return; }
#endif
    for (int64_t r = row_begin; r < row_end; r++)
        for (int64_t c = 0; c < channels; c++) {
            float v = x[r * channels + c] * scale[c] + shift[c];
            out[r * channels + c] = silu ? v / (1.0f + expf(-v)) : v;
        }
}

void chisel_scale_shift_bf16(const float *x, uint16_t *out, int64_t channels, const float *scale, const float *shift,
                             int silu, int64_t row_begin, int64_t row_end) {
#if defined(__x86_64__)
    static int bf16 = -1;
    if (bf16 < 0) { __builtin_cpu_init(); bf16 = chisel_has_avx512() && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
                                                 __builtin_cpu_supports("avx512vl"); }
    if (bf16) { scale_shift_bf16_avx512(x, out, channels, scale, shift, silu, row_begin, row_end); return; }
#endif
    for (int64_t r = row_begin; r < row_end; r++)
        for (int64_t c = 0; c < channels; c++) {
            float v = x[r * channels + c] * scale[c] + shift[c];
            out[r * channels + c] = chisel_bf16_bits(silu ? v / (1.0f + expf(-v)) : v);
        }
}

void chisel_geglu(const float *x, float *out, int64_t width, int64_t row_begin, int64_t row_end) {
#if defined(__x86_64__)
    if (chisel_has_avx512()) { geglu_avx512(x, out, width, row_begin, row_end); return; }
#endif
    for (int64_t r = row_begin; r < row_end; r++)
        for (int64_t c = 0; c < width; c++) {
            float gate = x[r * 2 * width + width + c];
            out[r * width + c] = x[r * 2 * width + c] * 0.5f * gate * (1.0f + erf_scalar(gate * 0.70710678118654752f));
        }
}

void chisel_activation(float *x, int64_t count, int kind) {
#if defined(__x86_64__)
    if (chisel_has_avx512()) { activation_avx512(x, count, kind); return; }
#endif
    for (int64_t i = 0; i < count; i++) {
        float v = x[i];
        switch (kind) {
        case 0: x[i] = v / (1.0f + expf(-v)); break;
        case 1: x[i] = 0.5f * v * (1.0f + erf_scalar(v * 0.70710678118654752f)); break;
        default: x[i] = v / (1.0f + expf(-1.702f * v)); break;
        }
    }
}

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void chisel_keep_large_blocks(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

#if defined(__x86_64__)
AVX512 static void layer_norm_avx512(const float *x, float *out, int64_t n, const float *gamma, const float *beta,
                                     float epsilon, int64_t row_begin, int64_t row_end) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *in = x + r * n;
        float *o = out + r * n;
        __m512 s = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(mask, in + i));
        }
        float mean = _mm512_reduce_add_ps(s) / (float)n;
        __m512 m = _mm512_set1_ps(mean), q = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            __m512 d = _mm512_maskz_sub_ps(mask, _mm512_maskz_loadu_ps(mask, in + i), m);
            q = _mm512_fmadd_ps(d, d, q);
        }
        float inverse = 1.0f / sqrtf(_mm512_reduce_add_ps(q) / (float)n + epsilon);
        __m512 k = _mm512_set1_ps(inverse);
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, in + i), m), k);
            v = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(mask, gamma + i), _mm512_maskz_loadu_ps(mask, beta + i));
            _mm512_mask_storeu_ps(o + i, mask, v);
        }
    }
}
#endif

void chisel_layer_norm(const float *x, float *out, int64_t n, const float *gamma, const float *beta, float epsilon,
                       int64_t row_begin, int64_t row_end) {
#if defined(__x86_64__)
    if (chisel_has_avx512()) { layer_norm_avx512(x, out, n, gamma, beta, epsilon, row_begin, row_end); return; }
#endif
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *in = x + r * n;
        double sum = 0, squares = 0;
        for (int64_t i = 0; i < n; i++) sum += in[i];
        double mean = sum / (double)n;
        for (int64_t i = 0; i < n; i++) squares += (in[i] - mean) * (in[i] - mean);
        float inverse = (float)(1.0 / sqrt(squares / (double)n + epsilon));
        for (int64_t i = 0; i < n; i++) out[r * n + i] = (in[i] - (float)mean) * inverse * gamma[i] + beta[i];
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))
static void layer_norm_bf16_avx512(const float *x, uint16_t *out, int64_t n, const float *gamma, const float *beta,
                                   float epsilon, int64_t row_begin, int64_t row_end) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *in = x + r * n;
        uint16_t *o = out + r * n;
        __m512 s = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(mask, in + i));
        }
        float mean = _mm512_reduce_add_ps(s) / (float)n;
        __m512 m = _mm512_set1_ps(mean), q = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            __m512 d = _mm512_maskz_sub_ps(mask, _mm512_maskz_loadu_ps(mask, in + i), m);
            q = _mm512_fmadd_ps(d, d, q);
        }
        __m512 k = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(q) / (float)n + epsilon));
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, in + i), m), k);
            v = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(mask, gamma + i), _mm512_maskz_loadu_ps(mask, beta + i));
            _mm256_mask_storeu_epi16(o + i, mask, (__m256i)_mm512_cvtneps_pbh(v));
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))
static void geglu_bf16_avx512(const float *x, uint16_t *out, int64_t width, int64_t row_begin, int64_t row_end) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), root = _mm512_set1_ps(0.70710678118654752f);
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *a = x + r * 2 * width, *b = a + width;
        uint16_t *o = out + r * width;
        for (int64_t c0 = 0; c0 < width; c0 += 16) {
            int64_t w = width - c0 < 16 ? width - c0 : 16;
            __mmask16 mask = w == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
            __m512 gate = _mm512_maskz_loadu_ps(mask, b + c0);
            __m512 gelu = _mm512_mul_ps(_mm512_mul_ps(half, gate), _mm512_add_ps(one, erf16(_mm512_mul_ps(gate, root))));
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, a + c0), gelu);
            _mm256_mask_storeu_epi16(o + c0, mask, (__m256i)_mm512_cvtneps_pbh(v));
        }
    }
}
#endif

static int has_bf16_stores(void) {
#if defined(__x86_64__)
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = chisel_has_avx512() && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl");
    }
    return cached;
#else
    return 0;
#endif
}

void chisel_layer_norm_bf16(const float *x, uint16_t *out, int64_t n, const float *gamma, const float *beta,
                            float epsilon, int64_t row_begin, int64_t row_end) {
#if defined(__x86_64__)
    if (has_bf16_stores()) { layer_norm_bf16_avx512(x, out, n, gamma, beta, epsilon, row_begin, row_end); return; }
#endif
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *in = x + r * n;
        double sum = 0, squares = 0;
        for (int64_t i = 0; i < n; i++) sum += in[i];
        double mean = sum / (double)n;
        for (int64_t i = 0; i < n; i++) squares += (in[i] - mean) * (in[i] - mean);
        float inverse = (float)(1.0 / sqrt(squares / (double)n + epsilon));
        for (int64_t i = 0; i < n; i++) out[r * n + i] = chisel_bf16_bits((in[i] - (float)mean) * inverse * gamma[i] + beta[i]);
    }
}

void chisel_geglu_bf16(const float *x, uint16_t *out, int64_t width, int64_t row_begin, int64_t row_end) {
#if defined(__x86_64__)
    if (has_bf16_stores()) { geglu_bf16_avx512(x, out, width, row_begin, row_end); return; }
#endif
    for (int64_t r = row_begin; r < row_end; r++)
        for (int64_t c = 0; c < width; c++) {
            float gate = x[r * 2 * width + width + c];
            out[r * width + c] = chisel_bf16_bits(x[r * 2 * width + c] * 0.5f * gate * (1.0f + erf_scalar(gate * 0.70710678118654752f)));
        }
}

static inline float from_bf16(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m512 load_half(__mmask16 mask, const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, p)), 16));
}

__attribute__((target("avx512f,avx512bw,avx512vl,fma")))
static void sums_half_avx512(const uint16_t *x, int64_t channels, int64_t row_begin, int64_t row_end, double *sum,
                             double *sumsq) {
    for (int64_t c0 = 0; c0 < channels; c0 += 16) {
        int64_t width = channels - c0 < 16 ? channels - c0 : 16;
        __mmask16 mask = width == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << width) - 1);
        double total[16] = {0}, total2[16] = {0};
        for (int64_t r0 = row_begin; r0 < row_end; r0 += 64) {
            int64_t r1 = r0 + 64 < row_end ? r0 + 64 : row_end;
            __m512 s = _mm512_setzero_ps(), q = _mm512_setzero_ps();
            for (int64_t r = r0; r < r1; r++) {
                __m512 v = load_half(mask, x + r * channels + c0);
                s = _mm512_add_ps(s, v);
                q = _mm512_fmadd_ps(v, v, q);
            }
            float fs[16], fq[16];
            _mm512_storeu_ps(fs, s);
            _mm512_storeu_ps(fq, q);
            for (int i = 0; i < width; i++) { total[i] += fs[i]; total2[i] += fq[i]; }
        }
        for (int i = 0; i < width; i++) { sum[c0 + i] += total[i]; sumsq[c0 + i] += total2[i]; }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))
static void scale_shift_half_avx512(const uint16_t *x, uint16_t *out, int64_t channels, const float *scale,
                                    const float *shift, int silu, int64_t row_begin, int64_t row_end) {
    for (int64_t r = row_begin; r < row_end; r++) {
        for (int64_t c0 = 0; c0 < channels; c0 += 16) {
            int64_t width = channels - c0 < 16 ? channels - c0 : 16;
            __mmask16 mask = width == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << width) - 1);
            __m512 v = _mm512_fmadd_ps(load_half(mask, x + r * channels + c0), _mm512_maskz_loadu_ps(mask, scale + c0),
                                       _mm512_maskz_loadu_ps(mask, shift + c0));
            if (silu) v = silu16(v);
            _mm256_mask_storeu_epi16(out + r * channels + c0, mask, (__m256i)_mm512_cvtneps_pbh(v));
        }
    }
}
#endif

void chisel_channel_sums_half(const uint16_t *x, int64_t channels, int64_t row_begin, int64_t row_end, double *sum,
                              double *sumsq) {
#if defined(__x86_64__)
    if (has_bf16_stores()) { sums_half_avx512(x, channels, row_begin, row_end, sum, sumsq); return; }
#endif
    for (int64_t r = row_begin; r < row_end; r++)
        for (int64_t c = 0; c < channels; c++) {
            double v = from_bf16(x[r * channels + c]);
            sum[c] += v;
            sumsq[c] += v * v;
        }
}

void chisel_scale_shift_half(const uint16_t *x, uint16_t *out, int64_t channels, const float *scale, const float *shift,
                             int silu, int64_t row_begin, int64_t row_end) {
#if defined(__x86_64__)
    if (has_bf16_stores()) { scale_shift_half_avx512(x, out, channels, scale, shift, silu, row_begin, row_end); return; }
#endif
    for (int64_t r = row_begin; r < row_end; r++)
        for (int64_t c = 0; c < channels; c++) {
            float v = from_bf16(x[r * channels + c]) * scale[c] + shift[c];
            out[r * channels + c] = chisel_bf16_bits(silu ? v / (1.0f + expf(-v)) : v);
        }
}
