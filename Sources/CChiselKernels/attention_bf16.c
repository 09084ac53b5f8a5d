#include "chisel_kernels.h"
#include "simd_math.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// The attention kernel of attention.c with its two products in bfloat16 (AVX-512 BF16's
// vdpbf16ps: pairs of bf16 multiplied and accumulated in FP32), for `.bf16` networks. Scores,
// softmax and the output stay FP32; keys, values, queries and probabilities are rounded to bf16,
// as PyTorch's bf16 attention rounds them.

#if defined(__x86_64__)
#include <immintrin.h>
#define BF16 __attribute__((target("avx512f,avx512bf16,fma")))

enum { BQ = 64, BK = 256, TR = 6 };


typedef struct {
    uint32_t *q2;   // BQ × dh: scaled query pairs
    uint32_t *kt2;  // dh × ldk2: key pairs along features, transposed
    uint32_t *v2;   // (lk/2 + 1) × dp: value pairs along keys
    uint32_t *p2;   // BQ × BK/2: probability pairs along keys
    float *s, *o, *m, *l;
    float *mx;      // BQ × 16: each row's running lane maxima of the block's scores
    int64_t ldk2;
} scratch16;

static int alloc16(scratch16 *sc, int64_t dh, int64_t dp, int64_t lk) {
    // One cache line more than a whole last block, so rows do not share cache sets.
    sc->ldk2 = (lk + 15) / 16 * 16 + BK + 16;
    sc->q2 = aligned_alloc(64, (size_t)(BQ * ((dh + 15) / 16 * 16)) * 4);
    sc->kt2 = aligned_alloc(64, (size_t)(dh * sc->ldk2) * 4);
    sc->v2 = aligned_alloc(64, (size_t)((lk / 2 + BK) * dp) * 4);
    sc->p2 = aligned_alloc(64, (size_t)(BQ * BK / 2) * 4);
    sc->s = aligned_alloc(64, (size_t)(BQ * BK) * 4);
    sc->o = aligned_alloc(64, (size_t)(BQ * dp) * 4);
    sc->m = aligned_alloc(64, BQ * 4);
    sc->l = aligned_alloc(64, BQ * 4);
    sc->mx = aligned_alloc(64, BQ * 16 * 4);
    return sc->q2 && sc->kt2 && sc->v2 && sc->p2 && sc->s && sc->o && sc->m && sc->l && sc->mx;
}

static void free16(scratch16 *sc) {
    free(sc->q2); free(sc->kt2); free(sc->v2); free(sc->p2); free(sc->s); free(sc->o); free(sc->m); free(sc->l);
    free(sc->mx);
}

/// e^x for the probabilities, which are rounded to bfloat16 (8 significant bits) before their
/// product: a degree-4 polynomial after the usual range reduction, relative error below 4e-5
/// (PyTorch's CPU flash attention uses a reduced-accuracy exp for the same reason). x ≤ 0 here
/// (scores minus their maximum); very negative x gives 0 through scalef.
BF16 static inline __m512 exp16_probability(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.33654f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 24), r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/// The block's scores, s = q · k for its nq queries and nk keys; with `track`, also each row's
/// lane maxima over the nk keys (in sc->mx), so that the softmax needs no pass of its own for them.
BF16 static void scores16(const scratch16 *sc, int64_t j0, int64_t nq, int64_t nk, int64_t dh, int64_t ldq2,
                          int track) {
    int64_t chunks = (nk + 63) / 64;
    if (track)
        for (int64_t i = 0; i < nq; i++) _mm512_store_ps(sc->mx + i * 16, _mm512_set1_ps(-INFINITY));
    for (int64_t i0 = 0; i0 < nq; i0 += TR) {
        int64_t rows = nq - i0 < TR ? nq - i0 : TR;
        const uint32_t *q = sc->q2 + i0 * ldq2;
        for (int64_t c = 0; c < chunks; c++) {
            __m512 acc[TR][4];
            for (int r = 0; r < TR; r++)
                for (int u = 0; u < 4; u++) acc[r][u] = _mm512_setzero_ps();
            const uint32_t *kt = sc->kt2 + j0 + c * 64;
            for (int64_t p = 0; p < dh; p++) {
                const uint32_t *k = kt + p * sc->ldk2;
                __m512bh k0 = (__m512bh)_mm512_loadu_si512(k), k1 = (__m512bh)_mm512_loadu_si512(k + 16);
                __m512bh k2 = (__m512bh)_mm512_loadu_si512(k + 32), k3 = (__m512bh)_mm512_loadu_si512(k + 48);
                for (int r = 0; r < TR; r++) {
                    // Rows past nq read row 0's queries; their scores are never used.
                    __m512bh qv = (__m512bh)_mm512_set1_epi32((int)q[(r < rows ? r : 0) * ldq2 + p]);
                    acc[r][0] = _mm512_dpbf16_ps(acc[r][0], qv, k0);
                    acc[r][1] = _mm512_dpbf16_ps(acc[r][1], qv, k1);
                    acc[r][2] = _mm512_dpbf16_ps(acc[r][2], qv, k2);
                    acc[r][3] = _mm512_dpbf16_ps(acc[r][3], qv, k3);
                }
            }
            for (int r = 0; r < rows; r++)
                for (int u = 0; u < 4; u++) _mm512_store_ps(sc->s + (i0 + r) * BK + c * 64 + u * 16, acc[r][u]);
            if (track) {
                __mmask16 valid[4];
                for (int u = 0; u < 4; u++) valid[u] = chisel_tail16(nk - c * 64 - u * 16);
                for (int r = 0; r < rows; r++) {
                    __m512 mx = _mm512_load_ps(sc->mx + (i0 + r) * 16);
                    for (int u = 0; u < 4; u++) mx = _mm512_mask_max_ps(mx, valid[u], mx, acc[r][u]);
                    _mm512_store_ps(sc->mx + (i0 + r) * 16, mx);
                }
            }
        }
    }
}

BF16 static inline __attribute__((always_inline)) void pv16_tile(const scratch16 *sc, int64_t jp0, int64_t nq,
                                                                  int64_t npairs, int64_t dp, int64_t c0,
                                                                  int64_t width, const int nv) {
    __mmask16 masks[4];
    chisel_lane_masks(width, masks);
    for (int64_t i0 = 0; i0 < nq; i0 += 4) {
        int64_t rows = nq - i0 < 4 ? nq - i0 : 4;
        __m512 acc[4][4];
        for (int r = 0; r < 4; r++)
            for (int u = 0; u < nv; u++)
                acc[r][u] = _mm512_maskz_load_ps(masks[u], sc->o + (i0 + (r < rows ? r : 0)) * dp + c0 + u * 16);
        const uint32_t *p0 = sc->p2 + i0 * (BK / 2);
        const uint32_t *p1 = p0 + (rows > 1 ? 1 : 0) * (BK / 2), *p2 = p0 + (rows > 2 ? 2 : 0) * (BK / 2);
        const uint32_t *p3 = p0 + (rows > 3 ? 3 : 0) * (BK / 2);
        for (int64_t jp = 0; jp < npairs; jp++) {
            const uint32_t *vr = sc->v2 + (jp0 + jp) * dp + c0;
            __m512bh vv[4];
            for (int u = 0; u < nv; u++) vv[u] = (__m512bh)_mm512_load_si512(vr + u * 16);
            __m512bh b0 = (__m512bh)_mm512_set1_epi32((int)p0[jp]), b1 = (__m512bh)_mm512_set1_epi32((int)p1[jp]);
            __m512bh b2 = (__m512bh)_mm512_set1_epi32((int)p2[jp]), b3 = (__m512bh)_mm512_set1_epi32((int)p3[jp]);
            for (int u = 0; u < nv; u++) {
                acc[0][u] = _mm512_dpbf16_ps(acc[0][u], b0, vv[u]);
                acc[1][u] = _mm512_dpbf16_ps(acc[1][u], b1, vv[u]);
                acc[2][u] = _mm512_dpbf16_ps(acc[2][u], b2, vv[u]);
                acc[3][u] = _mm512_dpbf16_ps(acc[3][u], b3, vv[u]);
            }
        }
        for (int r = 0; r < rows; r++)
            for (int u = 0; u < nv; u++) _mm512_mask_store_ps(sc->o + (i0 + r) * dp + c0 + u * 16, masks[u], acc[r][u]);
    }
}

BF16 static void pv16(const scratch16 *sc, int64_t jp0, int64_t nq, int64_t npairs, int64_t d, int64_t dp) {
    for (int64_t c0 = 0; c0 < d; c0 += 64) {
        int64_t width = d - c0 < 64 ? d - c0 : 64;
        switch ((width + 15) / 16) {
        case 1: pv16_tile(sc, jp0, nq, npairs, dp, c0, width, 1); break;
        case 2: pv16_tile(sc, jp0, nq, npairs, dp, c0, width, 2); break;
        case 3: pv16_tile(sc, jp0, nq, npairs, dp, c0, width, 3); break;
        default: pv16_tile(sc, jp0, nq, npairs, dp, c0, width, 4); break;
        }
    }
}

/// dst[t] = src[t] · scale for t < d.
BF16 static void scaled_row16(float *dst, const float *src, int64_t d, float scale) {
    __m512 k = _mm512_set1_ps(scale);
    for (int64_t t = 0; t < d; t += 16) {
        __mmask16 mask = chisel_tail16(d - t);
        _mm512_mask_storeu_ps(dst + t, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, src + t), k));
    }
}

/// One row's online-softmax step over `visible` of its block's scores: the running maximum and
/// sum updated, the output so far rescaled, the probabilities written as bf16 pairs. `lanes`,
/// when not NULL, holds the row's lane maxima from scores16.
BF16 static float row_softmax16(float *row, uint32_t *pairs, int64_t n, int64_t visible, float *m, float *l,
                                float *o, int64_t d, const float *lanes) {
    __m512 mx = _mm512_set1_ps(*m);
    int64_t j = 0;
    if (lanes) {
        mx = _mm512_max_ps(mx, _mm512_load_ps(lanes));
    } else {
        for (; j + 16 <= visible; j += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(row + j));
        if (j < visible) mx = _mm512_mask_max_ps(mx, (__mmask16)((1u << (visible - j)) - 1), mx, _mm512_loadu_ps(row + j));
    }
    float peak = _mm512_reduce_max_ps(mx);
    __m512 sh = _mm512_set1_ps(peak), sum = _mm512_setzero_ps();
    for (j = 0; j < n; j += 32) {
        // Two vectors of 16 probabilities become 16 bf16 pairs; keys past `visible` get 0.
        __mmask16 m0 = j >= visible ? 0 : (visible - j >= 16 ? 0xFFFF : (__mmask16)((1u << (visible - j)) - 1));
        __mmask16 m1 = j + 16 >= visible ? 0 : (visible - j - 16 >= 16 ? 0xFFFF : (__mmask16)((1u << (visible - j - 16)) - 1));
        __m512 e0 = _mm512_maskz_mov_ps(m0, exp16_probability(_mm512_sub_ps(_mm512_maskz_loadu_ps(m0, row + j), sh)));
        __m512 e1 = _mm512_maskz_mov_ps(m1, exp16_probability(_mm512_sub_ps(_mm512_maskz_loadu_ps(m1, row + j + 16), sh)));
        // cvtne2ps puts e0's 16 values in the low half and e1's in the high half, in key order,
        // so as 32-bit words the result already holds pairs of neighbouring keys (j+2k, j+2k+1).
        _mm512_storeu_si512(pairs + j / 2, (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
        sum = _mm512_add_ps(sum, _mm512_add_ps(e0, e1));
    }
    float total = _mm512_reduce_add_ps(sum);
    float correction = *m == -INFINITY ? 0.0f : expf(*m - peak);
    *l = *l * correction + total;
    *m = peak;
    if (correction != 1.0f) scaled_row16(o, o, d, correction);
    return peak;
}

/// Key pairs of one head transposed, kt2[p][j] = pair(k[j][2p], k[j][2p + 1]) for p < dh, j < lk
/// (zeros past d and past lk, up to ldk2): each key row converted to pairs, then 16 × 16 register
/// blocks transposed (column-by-column reads of a wide qkv buffer share cache sets).
BF16 static void pack_key_pairs(uint32_t *kt2, int64_t ldk2, const float *kh, int64_t ldk, int64_t lk, int64_t d,
                                int64_t dh) {
    for (int64_t j0 = 0; j0 < lk; j0 += 16) {
        int64_t nj = lk - j0 < 16 ? lk - j0 : 16;
        for (int64_t p0 = 0; p0 < dh; p0 += 16) {
            __mmask16 m0 = chisel_tail16(d - 2 * p0), m1 = chisel_tail16(d - 2 * p0 - 16);
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                if (i >= nj) { r[i] = _mm512_setzero_ps(); continue; }
                const float *row = kh + (j0 + i) * ldk + 2 * p0;
                __m512bh words = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, row + 16), _mm512_maskz_loadu_ps(m0, row));
                r[i] = _mm512_castsi512_ps((__m512i)words);
            }
            chisel_transpose16(r);
            int64_t np = dh - p0 < 16 ? dh - p0 : 16;
            for (int64_t i = 0; i < np; i++) _mm512_storeu_ps((float *)(kt2 + (p0 + i) * ldk2 + j0), r[i]);
        }
    }
    int64_t filled = (lk + 15) / 16 * 16;
    for (int64_t p = 0; p < dh; p++) memset(kt2 + p * ldk2 + filled, 0, (size_t)(ldk2 - filled) * 4);
}

/// Value pairs along keys, v2[jp][c] = pair(v[2jp][c], v[2jp + 1][c]) for c < dp (zeros past d,
/// and for the missing partner of an odd last key).
BF16 static void pack_value_pairs(uint32_t *v2, const float *vh, int64_t ldv, int64_t lk, int64_t d, int64_t dp) {
    for (int64_t jp = 0; jp < (lk + 1) / 2; jp++) {
        const float *lo = vh + 2 * jp * ldv, *hi = 2 * jp + 1 < lk ? lo + ldv : NULL;
        for (int64_t c0 = 0; c0 < dp; c0 += 16) {
            __mmask16 mask = chisel_tail16(d - c0);
            __m512i a = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, lo + c0)));
            __m512i b = hi ? _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, hi + c0)))
                           : _mm512_setzero_si512();
            _mm512_store_si512(v2 + jp * dp + c0, _mm512_or_si512(a, _mm512_slli_epi32(b, 16)));
        }
    }
}

/// One query row's scaled pairs, q2[p] = pair(q[2p]·scale, q[2p + 1]·scale) for p < dh.
BF16 static void pack_query_pairs(uint32_t *q2, const float *qh, int64_t d, int64_t dh, float scale) {
    __m512 k = _mm512_set1_ps(scale);
    for (int64_t p0 = 0; p0 < dh; p0 += 16) {
        __mmask16 m0 = chisel_tail16(d - 2 * p0), m1 = chisel_tail16(d - 2 * p0 - 16);
        __m512 a = _mm512_mul_ps(_mm512_maskz_loadu_ps(m0, qh + 2 * p0), k);
        __m512 b = _mm512_mul_ps(_mm512_maskz_loadu_ps(m1, qh + 2 * p0 + 16), k);
        _mm512_mask_storeu_epi32(q2 + p0, chisel_tail16(dh - p0), (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
}

int chisel_attention_bf16(const float *q, const float *k, const float *v, float *out, int64_t batch, int64_t heads,
                          int64_t lq, int64_t lk, int64_t d, int64_t ldq, int64_t ldk, int64_t ldv, int64_t ldo,
                          float scale, int causal, int64_t parallelism, int64_t item_begin, int64_t item_end) {
    int64_t dp = (d + 15) / 16 * 16, dh = (d + 1) / 2, ldq2 = (dh + 15) / 16 * 16;
    int64_t qblocks = (lq + BQ - 1) / BQ;
    int64_t parts = chisel_attention_items(batch, heads, lq, parallelism) / (batch * heads);
    scratch16 sc;
    if (!alloc16(&sc, dh, dp, lk)) { free16(&sc); return -1; }
    memset(sc.q2, 0, (size_t)(BQ * ldq2) * 4);
    int64_t packed = -1;
    for (int64_t item = item_begin; item < item_end; item++) {
        int64_t bh = item / parts, part = item % parts, b = bh / heads, h = bh % heads;
        const float *qh = q + b * lq * ldq + h * d, *kh = k + b * lk * ldk + h * d, *vh = v + b * lk * ldv + h * d;
        if (packed != bh) {
            pack_key_pairs(sc.kt2, sc.ldk2, kh, ldk, lk, d, dh);
            pack_value_pairs(sc.v2, vh, ldv, lk, d, dp);
            packed = bh;
        }
        int64_t first = qblocks * part / parts, last = qblocks * (part + 1) / parts;
        for (int64_t qb = first; qb < last; qb++) {
            int64_t i0 = qb * BQ, nq = lq - i0 < BQ ? lq - i0 : BQ;
            for (int64_t i = 0; i < nq; i++) pack_query_pairs(sc.q2 + i * ldq2, qh + (i0 + i) * ldq, d, dh, scale);
            memset(sc.o, 0, (size_t)(BQ * dp) * 4);
            for (int64_t i = 0; i < BQ; i++) { sc.m[i] = -INFINITY; sc.l[i] = 0; }
            int64_t key_end = causal ? (i0 + nq < lk ? i0 + nq : lk) : lk;
            for (int64_t j0 = 0; j0 < key_end; j0 += BK) {
                int64_t nk = key_end - j0 < BK ? key_end - j0 : BK;
                int64_t rounded = (nk + 31) / 32 * 32;
                scores16(&sc, j0, nq, nk, dh, ldq2, !causal);
                for (int64_t i = 0; i < nq; i++) {
                    int64_t visible = nk;
                    if (causal) {
                        int64_t last_key = i0 + i - j0;
                        visible = last_key + 1 < nk ? (last_key + 1 > 0 ? last_key + 1 : 0) : nk;
                    }
                    if (visible == 0) {
                        memset(sc.p2 + i * (BK / 2), 0, (size_t)(BK / 2) * 4);
                        continue;
                    }
                    row_softmax16(sc.s + i * BK, sc.p2 + i * (BK / 2), rounded, visible, &sc.m[i], &sc.l[i],
                                  sc.o + i * dp, d, causal ? NULL : sc.mx + i * 16);
                }
                pv16(&sc, j0 / 2, nq, (nk + 1) / 2, d, dp);
            }
            float *oh = out + b * lq * ldo + h * d;
            for (int64_t i = 0; i < nq; i++)
                scaled_row16(oh + (i0 + i) * ldo, sc.o + i * dp, d, sc.l[i] > 0 ? 1.0f / sc.l[i] : 0.0f);
        }
    }
    free16(&sc);
    return 0;
}

int chisel_attention_bf16_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f");
}
#else
int chisel_attention_bf16(const float *q, const float *k, const float *v, float *out, int64_t batch, int64_t heads,
                          int64_t lq, int64_t lk, int64_t d, int64_t ldq, int64_t ldk, int64_t ldv, int64_t ldo,
                          float scale, int causal, int64_t parallelism, int64_t item_begin, int64_t item_end) {
    return -2;
}

int chisel_attention_bf16_supported(void) { return 0; }
#endif
