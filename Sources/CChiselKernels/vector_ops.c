#include "chisel_kernels.h"
#include "simd_math.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

// Element-wise and reduction kernels on rows of channels-last data. Each is written once over
// rows that may be float or bfloat16 (`in_half`, `out_half`, constant at every call site so the
// compiler specialises them), vectorised with AVX-512 where the CPU has it (bfloat16 rounding
// is done with integer instructions, so no AVX-512 BF16 is needed here), and takes a range of
// rows so callers can split work over threads.

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

static inline float gelu_scalar(float x) { return 0.5f * x * (1.0f + erf_scalar(x * 0.70710678118654752f)); }

static inline float load1(const void *p, int64_t i, const int half) {
    return half ? chisel_bf16_value(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

static inline void store1(void *p, int64_t i, float v, const int half) {
    if (half) ((uint16_t *)p)[i] = chisel_bf16_bits(v); else ((float *)p)[i] = v;
}

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define INLINE __attribute__((always_inline)) inline

AVX512 static INLINE __mmask16 tail(int64_t left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

AVX512 static INLINE __m512 load16(__mmask16 mask, const void *p, int64_t i, const int half) {
    if (half) {
        __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)p + i));
        return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
    }
    return _mm512_maskz_loadu_ps(mask, (const float *)p + i);
}

/// Stores 16 lanes, as bfloat16 rounded to nearest even (NaN kept NaN) when `half`.
AVX512 static INLINE void store16(__mmask16 mask, void *p, int64_t i, __m512 v, const int half) {
    if (!half) {
        _mm512_mask_storeu_ps((float *)p + i, mask, v);
        return;
    }
    __m512i bits = _mm512_castps_si512(v);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    rounded = _mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
    _mm256_mask_storeu_epi16((uint16_t *)p + i, mask, _mm512_cvtepi32_epi16(rounded));
}

AVX512 static INLINE __m512 silu16(__m512 x) {
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), chisel_exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

AVX512 static INLINE __m512 erf16(__m512 x) {
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

AVX512 static INLINE __m512 gelu16(__m512 x) {
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x),
                         _mm512_add_ps(_mm512_set1_ps(1.0f), erf16(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)))));
}

AVX512 static INLINE void sums_avx512(const void *x, int64_t channels, int64_t row_begin, int64_t row_end, double *sum,
                                      double *sumsq, const int in_half) {
    // Float partial sums over blocks of 64 rows, gathered into double, keep large maps accurate.
    for (int64_t c0 = 0; c0 < channels; c0 += 16) {
        int64_t width = channels - c0 < 16 ? channels - c0 : 16;
        __mmask16 mask = tail(width);
        double total[16] = {0}, total2[16] = {0};
        for (int64_t r0 = row_begin; r0 < row_end; r0 += 64) {
            int64_t r1 = r0 + 64 < row_end ? r0 + 64 : row_end;
            __m512 s = _mm512_setzero_ps(), q = _mm512_setzero_ps();
            for (int64_t r = r0; r < r1; r++) {
                __m512 v = load16(mask, x, r * channels + c0, in_half);
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

AVX512 static INLINE void scale_shift_avx512(const void *x, void *out, int64_t channels, const float *scale,
                                             const float *shift, int silu, int64_t row_begin, int64_t row_end,
                                             const int in_half, const int out_half) {
    for (int64_t r = row_begin; r < row_end; r++)
        for (int64_t c0 = 0; c0 < channels; c0 += 16) {
            __mmask16 mask = tail(channels - c0);
            __m512 v = _mm512_fmadd_ps(load16(mask, x, r * channels + c0, in_half), _mm512_maskz_loadu_ps(mask, scale + c0),
                                       _mm512_maskz_loadu_ps(mask, shift + c0));
            if (silu) v = silu16(v);
            store16(mask, out, r * channels + c0, v, out_half);
        }
}

AVX512 static INLINE void layer_norm_avx512(const float *x, void *out, int64_t n, const float *gamma,
                                            const float *beta, float epsilon, int64_t row_begin, int64_t row_end,
                                            const int out_half) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *in = x + r * n;
        __m512 s = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail(n - i), in + i));
        __m512 m = _mm512_set1_ps(_mm512_reduce_add_ps(s) / (float)n), q = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 mask = tail(n - i);
            __m512 d = _mm512_maskz_sub_ps(mask, _mm512_maskz_loadu_ps(mask, in + i), m);
            q = _mm512_fmadd_ps(d, d, q);
        }
        __m512 k = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(q) / (float)n + epsilon));
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 mask = tail(n - i);
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, in + i), m), k);
            v = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(mask, gamma + i), _mm512_maskz_loadu_ps(mask, beta + i));
            store16(mask, out, r * n + i, v, out_half);
        }
    }
}

AVX512 static INLINE void geglu_avx512(const float *x, void *out, int64_t width, int64_t row_begin, int64_t row_end,
                                       const int out_half) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *a = x + r * 2 * width, *b = a + width;
        for (int64_t c0 = 0; c0 < width; c0 += 16) {
            __mmask16 mask = tail(width - c0);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, a + c0), gelu16(_mm512_maskz_loadu_ps(mask, b + c0)));
            store16(mask, out, r * width + c0, v, out_half);
        }
    }
}

AVX512 static void activation_avx512(float *x, int64_t count, int kind) {
    for (int64_t i = 0; i < count; i += 16) {
        __mmask16 mask = tail(count - i);
        __m512 v = _mm512_maskz_loadu_ps(mask, x + i);
        switch (kind) {
        case 0: v = silu16(v); break;
        case 1: v = gelu16(v); break;
        default:
            v = _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), chisel_exp16(_mm512_mul_ps(_mm512_set1_ps(-1.702f), v))));
            break;
        }
        _mm512_mask_storeu_ps(x + i, mask, v);
    }
}

// One compiled specialisation per layout combination the public functions need.
AVX512 static void sums_f(const void *x, int64_t c, int64_t b, int64_t e, double *s, double *q) { sums_avx512(x, c, b, e, s, q, 0); }
AVX512 static void sums_h(const void *x, int64_t c, int64_t b, int64_t e, double *s, double *q) { sums_avx512(x, c, b, e, s, q, 1); }
AVX512 static void scale_shift_ff(const void *x, void *o, int64_t c, const float *k, const float *t, int silu, int64_t b, int64_t e) { scale_shift_avx512(x, o, c, k, t, silu, b, e, 0, 0); }
AVX512 static void scale_shift_fh(const void *x, void *o, int64_t c, const float *k, const float *t, int silu, int64_t b, int64_t e) { scale_shift_avx512(x, o, c, k, t, silu, b, e, 0, 1); }
AVX512 static void scale_shift_hh(const void *x, void *o, int64_t c, const float *k, const float *t, int silu, int64_t b, int64_t e) { scale_shift_avx512(x, o, c, k, t, silu, b, e, 1, 1); }
AVX512 static void layer_norm_f(const float *x, void *o, int64_t n, const float *g, const float *b, float eps, int64_t r0, int64_t r1) { layer_norm_avx512(x, o, n, g, b, eps, r0, r1, 0); }
AVX512 static void layer_norm_h(const float *x, void *o, int64_t n, const float *g, const float *b, float eps, int64_t r0, int64_t r1) { layer_norm_avx512(x, o, n, g, b, eps, r0, r1, 1); }
AVX512 static void geglu_f(const float *x, void *o, int64_t w, int64_t r0, int64_t r1) { geglu_avx512(x, o, w, r0, r1, 0); }
AVX512 static void geglu_h(const float *x, void *o, int64_t w, int64_t r0, int64_t r1) { geglu_avx512(x, o, w, r0, r1, 1); }
#endif

// ---------------------------------------------------------------------------------------------
// Portable versions of the same kernels.

static void sums_scalar(const void *x, int64_t channels, int64_t row_begin, int64_t row_end, double *sum,
                        double *sumsq, const int in_half) {
    for (int64_t r = row_begin; r < row_end; r++)
        for (int64_t c = 0; c < channels; c++) {
            double v = load1(x, r * channels + c, in_half);
            sum[c] += v;
            sumsq[c] += v * v;
        }
}

static void scale_shift_scalar(const void *x, void *out, int64_t channels, const float *scale, const float *shift,
                               int silu, int64_t row_begin, int64_t row_end, const int in_half, const int out_half) {
    for (int64_t r = row_begin; r < row_end; r++)
        for (int64_t c = 0; c < channels; c++) {
            float v = load1(x, r * channels + c, in_half) * scale[c] + shift[c];
            store1(out, r * channels + c, silu ? v / (1.0f + expf(-v)) : v, out_half);
        }
}

static void layer_norm_scalar(const float *x, void *out, int64_t n, const float *gamma, const float *beta,
                              float epsilon, int64_t row_begin, int64_t row_end, const int out_half) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *in = x + r * n;
        double sum = 0, squares = 0;
        for (int64_t i = 0; i < n; i++) sum += in[i];
        double mean = sum / (double)n;
        for (int64_t i = 0; i < n; i++) squares += (in[i] - mean) * (in[i] - mean);
        float inverse = (float)(1.0 / sqrt(squares / (double)n + epsilon));
        for (int64_t i = 0; i < n; i++) store1(out, r * n + i, (in[i] - (float)mean) * inverse * gamma[i] + beta[i], out_half);
    }
}

static void geglu_scalar(const float *x, void *out, int64_t width, int64_t row_begin, int64_t row_end,
                         const int out_half) {
    for (int64_t r = row_begin; r < row_end; r++)
        for (int64_t c = 0; c < width; c++)
            store1(out, r * width + c, x[r * 2 * width + c] * gelu_scalar(x[r * 2 * width + width + c]), out_half);
}

// ---------------------------------------------------------------------------------------------
// AVX2 path (x86-64 without AVX-512) for the element-wise activations, the costliest of these
// kernels without vectors (erf and exp per element).

#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static INLINE __m256 erf8(__m256 x) {
    __m256 z = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.5f), z, _mm256_set1_ps(1.0f)));
    static const float c[] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                              -0.18628806f, 0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f};
    __m256 p = _mm256_set1_ps(c[0]);
    for (int i = 1; i < 10; i++) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c[i]));
    __m256 r = _mm256_mul_ps(t, chisel_exp8(_mm256_sub_ps(p, _mm256_mul_ps(z, z))));
    __m256 e = _mm256_sub_ps(_mm256_set1_ps(1.0f), r);
    __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(e, _mm256_sub_ps(_mm256_setzero_ps(), e), negative);
}

AVX2 static INLINE __m256 gelu8(__m256 x) {
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x),
                         _mm256_add_ps(_mm256_set1_ps(1.0f), erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)))));
}

AVX2 static INLINE __m256 activation8(__m256 x, int kind) {
    switch (kind) {
    case 0: return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), chisel_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
    case 1: return gelu8(x);
    default:
        return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f),
                                              chisel_exp8(_mm256_mul_ps(_mm256_set1_ps(-1.702f), x))));
    }
}

/// Eight results to `out` at `i`: floats, or bfloat16 rounded as `store1` rounds.
AVX2 static INLINE void store8(void *out, int64_t i, __m256 v, const int half) {
    if (!half) {
        _mm256_storeu_ps((float *)out + i, v);
        return;
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    for (int k = 0; k < 8; k++) ((uint16_t *)out)[i + k] = chisel_bf16_bits(lanes[k]);
}

AVX2 static void geglu_avx2(const float *x, void *out, int64_t width, int64_t row_begin, int64_t row_end, const int half) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *a = x + r * 2 * width, *b = a + width;
        int64_t c = 0;
        for (; c + 8 <= width; c += 8) store8(out, r * width + c, _mm256_mul_ps(_mm256_loadu_ps(a + c), gelu8(_mm256_loadu_ps(b + c))), half);
        for (; c < width; c++) store1(out, r * width + c, a[c] * gelu_scalar(b[c]), half);
    }
}

AVX2 static void activation_avx2(float *x, int64_t count, int kind) {
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, activation8(_mm256_loadu_ps(x + i), kind));
    for (; i < count; i++) {
        float v = x[i];
        x[i] = kind == 0 ? v / (1.0f + expf(-v)) : kind == 1 ? gelu_scalar(v) : v / (1.0f + expf(-1.702f * v));
    }
}
#define AVX2_PATH(call) do { if (chisel_has_avx2()) { call; return; } } while (0)
#else
#define AVX2_PATH(call) do { } while (0)
#endif

// ---------------------------------------------------------------------------------------------
// Public entry points.

#if defined(__x86_64__)
#define FAST(call) do { if (chisel_has_avx512()) { call; return; } } while (0)
#else
#define FAST(call) do { } while (0)
#endif

void chisel_channel_sums(const float *x, int64_t channels, int64_t row_begin, int64_t row_end, double *sum,
                         double *sumsq) {
    FAST(sums_f(x, channels, row_begin, row_end, sum, sumsq));
    sums_scalar(x, channels, row_begin, row_end, sum, sumsq, 0);
}

void chisel_channel_sums_half(const uint16_t *x, int64_t channels, int64_t row_begin, int64_t row_end, double *sum,
                              double *sumsq) {
    FAST(sums_h(x, channels, row_begin, row_end, sum, sumsq));
    sums_scalar(x, channels, row_begin, row_end, sum, sumsq, 1);
}

void chisel_scale_shift(const float *x, float *out, int64_t channels, const float *scale, const float *shift,
                        int silu, int64_t row_begin, int64_t row_end) {
    FAST(scale_shift_ff(x, out, channels, scale, shift, silu, row_begin, row_end));
    scale_shift_scalar(x, out, channels, scale, shift, silu, row_begin, row_end, 0, 0);
}

void chisel_scale_shift_bf16(const float *x, uint16_t *out, int64_t channels, const float *scale, const float *shift,
                             int silu, int64_t row_begin, int64_t row_end) {
    FAST(scale_shift_fh(x, out, channels, scale, shift, silu, row_begin, row_end));
    scale_shift_scalar(x, out, channels, scale, shift, silu, row_begin, row_end, 0, 1);
}

void chisel_scale_shift_half(const uint16_t *x, uint16_t *out, int64_t channels, const float *scale, const float *shift,
                             int silu, int64_t row_begin, int64_t row_end) {
    FAST(scale_shift_hh(x, out, channels, scale, shift, silu, row_begin, row_end));
    scale_shift_scalar(x, out, channels, scale, shift, silu, row_begin, row_end, 1, 1);
}

void chisel_layer_norm(const float *x, float *out, int64_t n, const float *gamma, const float *beta, float epsilon,
                       int64_t row_begin, int64_t row_end) {
    FAST(layer_norm_f(x, out, n, gamma, beta, epsilon, row_begin, row_end));
    layer_norm_scalar(x, out, n, gamma, beta, epsilon, row_begin, row_end, 0);
}

void chisel_layer_norm_bf16(const float *x, uint16_t *out, int64_t n, const float *gamma, const float *beta,
                            float epsilon, int64_t row_begin, int64_t row_end) {
    FAST(layer_norm_h(x, out, n, gamma, beta, epsilon, row_begin, row_end));
    layer_norm_scalar(x, out, n, gamma, beta, epsilon, row_begin, row_end, 1);
}

void chisel_geglu(const float *x, float *out, int64_t width, int64_t row_begin, int64_t row_end) {
    FAST(geglu_f(x, out, width, row_begin, row_end));
    AVX2_PATH(geglu_avx2(x, out, width, row_begin, row_end, 0));
    geglu_scalar(x, out, width, row_begin, row_end, 0);
}

void chisel_geglu_bf16(const float *x, uint16_t *out, int64_t width, int64_t row_begin, int64_t row_end) {
    FAST(geglu_h(x, out, width, row_begin, row_end));
    AVX2_PATH(geglu_avx2(x, out, width, row_begin, row_end, 1));
    geglu_scalar(x, out, width, row_begin, row_end, 1);
}

void chisel_activation(float *x, int64_t count, int kind) {
    FAST(activation_avx512(x, count, kind));
    AVX2_PATH(activation_avx2(x, count, kind));
    for (int64_t i = 0; i < count; i++) {
        float v = x[i];
        x[i] = kind == 0 ? v / (1.0f + expf(-v)) : kind == 1 ? gelu_scalar(v) : v / (1.0f + expf(-1.702f * v));
    }
}

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void chisel_keep_large_blocks(void) {
#if defined(__GLIBC__)
    // No block is mapped on its own: glibc caps M_MMAP_THRESHOLD at 32 MiB (a larger value is
    // refused), and every larger block would be a fresh mapping, faulted in page by page each
    // time. From the heap, a freed block's pages are reused as they are.
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, -1);  // never give the heap's top back (man mallopt: -1 disables trimming)
    // One arena: glibc's per-thread arenas are heaps of at most 64 MiB, so a larger block
    // allocated on a worker thread (a 512² VAE activation, a GEGLU projection) is mapped fresh
    // each time whatever the threshold; in the main arena it is reused.
    mallopt(M_ARENA_MAX, 1);
#endif
}
