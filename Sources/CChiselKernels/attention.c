#include "chisel_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Fused multi-head attention, one block of queries at a time against blocks of keys, with the
// running ("online") softmax of Milakov & Gimelshein (2018) as FlashAttention uses it (Dao et al.
// 2022): the scores of a block never leave a small buffer and nothing of size queries × keys is
// ever stored.

enum { BQ = 64, BK = 256 };

static int64_t round16(int64_t x) { return (x + 15) / 16 * 16; }

int64_t chisel_attention_items(int64_t batch, int64_t heads, int64_t lq) {
    return batch * heads * ((lq + BQ - 1) / BQ);
}

typedef struct {
    float *q;      // BQ × dp, scaled queries
    float *kt;     // dp × BK, keys transposed
    float *s;      // BQ × BK, scores then probabilities
    float *o;      // BQ × dp, unnormalised output
    float *m, *l;  // BQ running maxima and sums
} scratch;

static int scratch_alloc(scratch *sc, int64_t dp) {
    sc->q = aligned_alloc(64, (size_t)(BQ * dp) * sizeof(float));
    sc->kt = aligned_alloc(64, (size_t)(dp * BK) * sizeof(float));
    sc->s = aligned_alloc(64, (size_t)(BQ * BK) * sizeof(float));
    sc->o = aligned_alloc(64, (size_t)(BQ * dp) * sizeof(float));
    sc->m = aligned_alloc(64, BQ * sizeof(float));
    sc->l = aligned_alloc(64, BQ * sizeof(float));
    return sc->q && sc->kt && sc->s && sc->o && sc->m && sc->l;
}

static void scratch_free(scratch *sc) {
    free(sc->q); free(sc->kt); free(sc->s); free(sc->o); free(sc->m); free(sc->l);
}

// ---------------------------------------------------------------------------------------------
// Portable path.

static void scores_scalar(const scratch *sc, int64_t nq, int64_t nk, int64_t d, int64_t dp) {
    for (int64_t i = 0; i < nq; i++)
        for (int64_t j = 0; j < nk; j++) {
            float sum = 0;
            for (int64_t t = 0; t < d; t++) sum += sc->q[i * dp + t] * sc->kt[t * BK + j];
            sc->s[i * BK + j] = sum;
        }
}

static void exp_row_scalar(float *row, int64_t n, float shift) {
    for (int64_t j = 0; j < n; j++) row[j] = expf(row[j] - shift);
}

static void accumulate_scalar(const scratch *sc, const float *v, int64_t ldv, int64_t nq, int64_t nk, int64_t d,
                              int64_t dp) {
    for (int64_t i = 0; i < nq; i++)
        for (int64_t j = 0; j < nk; j++) {
            float p = sc->s[i * BK + j];
            const float *vr = v + j * ldv;
            for (int64_t t = 0; t < d; t++) sc->o[i * dp + t] += p * vr[t];
        }
}

// ---------------------------------------------------------------------------------------------
// AVX-512 path, chosen at run time.

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f,fma")))

/// e^x for 16 lanes: range reduction by ln 2 and a degree-6 polynomial (about 2 ulp), inputs
/// below −87 flush to 0 as expf does.
AVX512 static inline __m512 exp16(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.33654f);
    x = _mm512_max_ps(x, lo);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.3981999507e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/// S[i][0..BK) for rows i0..i0+rows (rows ≤ 4), columns in 64-wide chunks.
AVX512 static void scores_avx512(const scratch *sc, int64_t nq, int64_t nk, int64_t d, int64_t dp) {
    int64_t chunks = (nk + 63) / 64;
    for (int64_t i0 = 0; i0 < nq; i0 += 4) {
        int64_t rows = nq - i0 < 4 ? nq - i0 : 4;
        for (int64_t c = 0; c < chunks; c++) {
            __m512 acc[4][4];
            for (int r = 0; r < 4; r++)
                for (int u = 0; u < 4; u++) acc[r][u] = _mm512_setzero_ps();
            const float *kt = sc->kt + c * 64;
            for (int64_t t = 0; t < d; t++) {
                __m512 k0 = _mm512_load_ps(kt + t * BK), k1 = _mm512_load_ps(kt + t * BK + 16);
                __m512 k2 = _mm512_load_ps(kt + t * BK + 32), k3 = _mm512_load_ps(kt + t * BK + 48);
                for (int r = 0; r < 4; r++) {
                    if (r >= rows) break;
                    __m512 qv = _mm512_set1_ps(sc->q[(i0 + r) * dp + t]);
                    acc[r][0] = _mm512_fmadd_ps(qv, k0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(qv, k1, acc[r][1]);
                    acc[r][2] = _mm512_fmadd_ps(qv, k2, acc[r][2]);
                    acc[r][3] = _mm512_fmadd_ps(qv, k3, acc[r][3]);
                }
            }
            for (int r = 0; r < rows; r++)
                for (int u = 0; u < 4; u++) _mm512_store_ps(sc->s + (i0 + r) * BK + c * 64 + u * 16, acc[r][u]);
        }
    }
}

AVX512 static void exp_row_avx512(float *row, int64_t n, float shift) {
    __m512 sh = _mm512_set1_ps(shift);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(row + j, exp16(_mm512_sub_ps(_mm512_loadu_ps(row + j), sh)));
    if (j < n) {
        __mmask16 mask = (__mmask16)((1u << (n - j)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(mask, row + j);
        _mm512_mask_storeu_ps(row + j, mask, exp16(_mm512_sub_ps(x, sh)));
    }
}

/// O[i][0..d) += Σ_j P[i][j]·V[j][0..d) for 4 rows at a time, 64 output columns per pass.
AVX512 static void accumulate_avx512(const scratch *sc, const float *v, int64_t ldv, int64_t nq, int64_t nk,
                                     int64_t d, int64_t dp) {
    for (int64_t i0 = 0; i0 < nq; i0 += 4) {
        int64_t rows = nq - i0 < 4 ? nq - i0 : 4;
        for (int64_t c0 = 0; c0 < d; c0 += 64) {
            int64_t width = d - c0 < 64 ? d - c0 : 64;
            __mmask16 masks[4];
            for (int u = 0; u < 4; u++) {
                int64_t left = width - u * 16;
                masks[u] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
            }
            __m512 acc[4][4];
            for (int r = 0; r < 4; r++)
                for (int u = 0; u < 4; u++)
                    acc[r][u] = r < rows ? _mm512_maskz_load_ps(masks[u], sc->o + (i0 + r) * dp + c0 + u * 16)
                                         : _mm512_setzero_ps();
            for (int64_t j = 0; j < nk; j++) {
                const float *vr = v + j * ldv + c0;
                __m512 v0 = _mm512_maskz_loadu_ps(masks[0], vr), v1 = _mm512_maskz_loadu_ps(masks[1], vr + 16);
                __m512 v2 = _mm512_maskz_loadu_ps(masks[2], vr + 32), v3 = _mm512_maskz_loadu_ps(masks[3], vr + 48);
                for (int r = 0; r < 4; r++) {
                    if (r >= rows) break;
                    __m512 p = _mm512_set1_ps(sc->s[(i0 + r) * BK + j]);
                    acc[r][0] = _mm512_fmadd_ps(p, v0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(p, v1, acc[r][1]);
                    acc[r][2] = _mm512_fmadd_ps(p, v2, acc[r][2]);
                    acc[r][3] = _mm512_fmadd_ps(p, v3, acc[r][3]);
                }
            }
            // Masked: a head size that is not a multiple of 64 must not write past its row.
            for (int r = 0; r < rows; r++)
                for (int u = 0; u < 4; u++) _mm512_mask_store_ps(sc->o + (i0 + r) * dp + c0 + u * 16, masks[u], acc[r][u]);
        }
    }
}
#endif

static int use_avx512(void) {
#if defined(__x86_64__)
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    }
    return cached;
#else
    return 0;
#endif
}

int chisel_attention(const float *q, const float *k, const float *v, float *out, int64_t batch, int64_t heads,
                     int64_t lq, int64_t lk, int64_t d, int64_t ldq, int64_t ldk, int64_t ldv, int64_t ldo,
                     float scale, int causal, int64_t item_begin, int64_t item_end) {
    int64_t dp = round16(d);
    int64_t qblocks = (lq + BQ - 1) / BQ;
    int fast = use_avx512();
    scratch sc;
    if (!scratch_alloc(&sc, dp)) {
        scratch_free(&sc);
        return -1;
    }
    // Padding columns of the packed buffers stay zero, so whole-vector loads read zeros there.
    memset(sc.q, 0, (size_t)(BQ * dp) * sizeof(float));
    memset(sc.kt, 0, (size_t)(dp * BK) * sizeof(float));
    for (int64_t item = item_begin; item < item_end; item++) {
        int64_t b = item / (heads * qblocks), h = (item / qblocks) % heads, qb = item % qblocks;
        int64_t i0 = qb * BQ, nq = lq - i0 < BQ ? lq - i0 : BQ;
        const float *qh = q + b * lq * ldq + h * d, *kh = k + b * lk * ldk + h * d, *vh = v + b * lk * ldv + h * d;
        for (int64_t i = 0; i < nq; i++)
            for (int64_t t = 0; t < d; t++) sc.q[i * dp + t] = qh[(i0 + i) * ldq + t] * scale;
        memset(sc.o, 0, (size_t)(BQ * dp) * sizeof(float));
        for (int64_t i = 0; i < BQ; i++) { sc.m[i] = -INFINITY; sc.l[i] = 0; }
        int64_t key_end = causal ? (i0 + nq < lk ? i0 + nq : lk) : lk;
        for (int64_t j0 = 0; j0 < key_end; j0 += BK) {
            int64_t nk = key_end - j0 < BK ? key_end - j0 : BK;
            for (int64_t t = 0; t < d; t++) {
                float *row = sc.kt + t * BK;
                for (int64_t j = 0; j < nk; j++) row[j] = kh[(j0 + j) * ldk + t];
                for (int64_t j = nk; j < BK; j++) row[j] = 0;
            }
#if defined(__x86_64__)
            if (fast) scores_avx512(&sc, nq, nk, d, dp); else
#endif
            scores_scalar(&sc, nq, nk, d, dp);
            for (int64_t i = 0; i < nq; i++) {
                float *row = sc.s + i * BK;
                int64_t visible = nk;
                if (causal) {
                    int64_t last = i0 + i - j0;  // the last key this query may see, relative to the block
                    visible = last + 1 < nk ? (last + 1 > 0 ? last + 1 : 0) : nk;
                }
                float peak = sc.m[i];
                for (int64_t j = 0; j < visible; j++) peak = row[j] > peak ? row[j] : peak;
                if (visible == 0 || peak == -INFINITY) {
                    for (int64_t j = 0; j < nk; j++) row[j] = 0;
                    continue;
                }
#if defined(__x86_64__)
                if (fast) exp_row_avx512(row, visible, peak); else
#endif
                exp_row_scalar(row, visible, peak);
                for (int64_t j = visible; j < nk; j++) row[j] = 0;
                float sum = 0;
                for (int64_t j = 0; j < visible; j++) sum += row[j];
                float correction = sc.m[i] == -INFINITY ? 0.0f : expf(sc.m[i] - peak);
                sc.l[i] = sc.l[i] * correction + sum;
                sc.m[i] = peak;
                if (correction != 1.0f)
                    for (int64_t t = 0; t < d; t++) sc.o[i * dp + t] *= correction;
            }
#if defined(__x86_64__)
            if (fast) accumulate_avx512(&sc, vh + j0 * ldv, ldv, nq, nk, d, dp); else
#endif
            accumulate_scalar(&sc, vh + j0 * ldv, ldv, nq, nk, d, dp);
        }
        float *oh = out + b * lq * ldo + h * d;
        for (int64_t i = 0; i < nq; i++) {
            float inv = sc.l[i] > 0 ? 1.0f / sc.l[i] : 0.0f;
            for (int64_t t = 0; t < d; t++) oh[(i0 + i) * ldo + t] = sc.o[i * dp + t] * inv;
        }
    }
    scratch_free(&sc);
    return 0;
}
