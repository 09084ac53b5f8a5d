#include "chisel_kernels.h"
#include "simd_math.h"

#include <math.h>
#include <stdint.h>

// torch.multinomial(p, 1) on the CPU over one row: the first argmax of p[j] / q[j], with
// q[j] = (float)(-log1p(-u[j])) and u[j] the 53-bit uniform of the word pair (words[2j] high,
// words[2j+1] low). Since -log1p(-u) >= u, p / u bounds p / q from above; the row's bounds are
// computed first (vectorised), then only entries whose bound reaches the best exact value so
// far (widened by 1e-5 for rounding) get their exact logarithm, in index order.

static inline double uniform53(const uint32_t *words, int64_t j) {
    uint64_t bits = ((uint64_t)words[2 * j] << 32) | words[2 * j + 1];
    return (double)(bits & 0x001fffffffffffffULL) * 0x1p-53;
}

static inline float exact_value(const float *p, const uint32_t *words, int64_t j) {
    return p[j] / (float)(-log1p(-uniform53(words, j)));
}

static void bounds_scalar(const float *p, const uint32_t *words, int64_t n, float *bounds) {
    for (int64_t j = 0; j < n; j++) bounds[j] = p[j] / (float)uniform53(words, j);
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX512DQ __attribute__((target("avx512f,avx512dq,avx512vl")))

AVX512DQ static void bounds_avx512(const float *p, const uint32_t *words, int64_t n, float *bounds) {
    const __m512i mask53 = _mm512_set1_epi64(0x001fffffffffffffLL);
    const __m512d scale = _mm512_set1_pd(0x1p-53);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        // Eight word pairs; each 64-bit lane holds (low word << 32 | high word) in memory order.
        __m512i pairs = _mm512_loadu_si512((const void *)(words + 2 * j));
        __m512i bits = _mm512_and_si512(_mm512_ror_epi64(pairs, 32), mask53);
        __m256 u = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtepu64_pd(bits), scale));
        _mm256_storeu_ps(bounds + j, _mm256_div_ps(_mm256_loadu_ps(p + j), u));
    }
    for (; j < n; j++) bounds[j] = p[j] / (float)uniform53(words, j);
}
#endif

int64_t chisel_multinomial_row(const float *p, const uint32_t *words, int64_t n, float *bounds) {
    if (n <= 0) return 0;
#if defined(__x86_64__)
    static int dq = -1;
    if (dq < 0) dq = chisel_has_avx512() && __builtin_cpu_supports("avx512dq");
    if (dq) bounds_avx512(p, words, n, bounds); else bounds_scalar(p, words, n, bounds);
#else
    bounds_scalar(p, words, n, bounds);
#endif
    // Start from the entry with the largest bound: its exact value is a high bar for the rest.
    int64_t top = 0;
    for (int64_t j = 1; j < n; j++) if (bounds[j] > bounds[top]) top = j;
    float threshold = exact_value(p, words, top) / (1 + 1e-5f);
    int64_t best = 0;
    float best_value = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        if (bounds[j] < threshold) continue;
        float value = exact_value(p, words, j);
        if (value > best_value) {
            best = j;
            best_value = value;
            if (value / (1 + 1e-5f) > threshold) threshold = value / (1 + 1e-5f);
        }
    }
    return best;
}
