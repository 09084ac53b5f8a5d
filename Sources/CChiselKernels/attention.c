#include "chisel_kernels.h"
#include "simd_math.h"

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

/// Query blocks are split into `parts` ranges per (batch, head) so that few heads (the VAE has
/// one) still spread over the cores, and so that the items divide evenly among them where a
/// few more parts can make them: SD 2.x's 5 heads at 64² on 2 cores are 10 items, 5 each, not
/// 3 heads on one core and 2 on the other.
static int64_t query_parts(int64_t batch, int64_t heads, int64_t lq, int64_t parallelism) {
    int64_t blocks = (lq + BQ - 1) / BQ, bh = batch * heads;
    int64_t parts = (2 * parallelism + bh - 1) / bh;
    if (parts < 1) parts = 1;
    if (parallelism > 1) {
        for (int64_t p = parts; p < parts + parallelism && p <= blocks; p++) {
            if (bh * p % parallelism == 0) { parts = p; break; }
        }
    }
    return parts < blocks ? parts : blocks;
}

int64_t chisel_attention_items(int64_t batch, int64_t heads, int64_t lq, int64_t parallelism) {
    return batch * heads * query_parts(batch, heads, lq, parallelism);
}

typedef struct {
    float *q;      // BQ × dp, scaled queries
    float *kt;     // dp × ldkt, all keys of the head, transposed
    int64_t ldkt;
    float *vp;     // lk × dp, all values of the head, rows packed
    float *s;      // BQ × BK, scores then probabilities
    float *o;      // BQ × dp, unnormalised output
    float *m, *l;  // BQ running maxima and sums
} scratch;

static int scratch_alloc(scratch *sc, int64_t dp, int64_t lk) {
    // Room for a whole last block of zeros, and one more cache line so that rows a power of two
    // apart do not all fall in the same few cache sets.
    sc->ldkt = round16(lk) + BK + 16;
    sc->vp = aligned_alloc(64, (size_t)(lk * dp) * sizeof(float));
    sc->q = aligned_alloc(64, (size_t)(BQ * dp) * sizeof(float));
    sc->kt = aligned_alloc(64, (size_t)(dp * sc->ldkt) * sizeof(float));
    sc->s = aligned_alloc(64, (size_t)(BQ * BK) * sizeof(float));
    sc->o = aligned_alloc(64, (size_t)(BQ * dp) * sizeof(float));
    sc->m = aligned_alloc(64, BQ * sizeof(float));
    sc->l = aligned_alloc(64, BQ * sizeof(float));
    return sc->q && sc->kt && sc->vp && sc->s && sc->o && sc->m && sc->l;
}

static void scratch_free(scratch *sc) {
    free(sc->q); free(sc->kt); free(sc->vp); free(sc->s); free(sc->o); free(sc->m); free(sc->l);
}

// ---------------------------------------------------------------------------------------------
// Portable path.

static void scores_scalar(const scratch *sc, int64_t j0, int64_t nq, int64_t nk, int64_t d, int64_t dp) {
    for (int64_t i = 0; i < nq; i++)
        for (int64_t j = 0; j < nk; j++) {
            float sum = 0;
            for (int64_t t = 0; t < d; t++) sum += sc->q[i * dp + t] * sc->kt[t * sc->ldkt + j0 + j];
            sc->s[i * BK + j] = sum;
        }
}

static float row_max_scalar(const float *row, int64_t n, float start) {
    for (int64_t j = 0; j < n; j++) start = row[j] > start ? row[j] : start;
    return start;
}

static float exp_row_scalar(float *row, int64_t n, float shift) {
    float sum = 0;
    for (int64_t j = 0; j < n; j++) { row[j] = expf(row[j] - shift); sum += row[j]; }
    return sum;
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

enum { TR = 6 };  // rows per score tile: 6 × 4 accumulators of 16 lanes

/// S[i][0..nk) = Q[i]·Kᵀ over the key block at j0, in tiles of 6 rows × 64 keys.
AVX512 static void scores_avx512(const scratch *sc, int64_t j0, int64_t nq, int64_t nk, int64_t d, int64_t dp) {
    int64_t chunks = (nk + 63) / 64;
    for (int64_t i0 = 0; i0 < nq; i0 += TR) {
        int64_t rows = nq - i0 < TR ? nq - i0 : TR;
        for (int64_t c = 0; c < chunks; c++) {
            __m512 acc[TR][4];
            for (int r = 0; r < TR; r++)
                for (int u = 0; u < 4; u++) acc[r][u] = _mm512_setzero_ps();
            const float *kt = sc->kt + j0 + c * 64;
            const float *q = sc->q + i0 * dp;
            if (rows == TR) {
                for (int64_t t = 0; t < d; t++) {
                    const float *k = kt + t * sc->ldkt;
                    __m512 k0 = _mm512_loadu_ps(k), k1 = _mm512_loadu_ps(k + 16);
                    __m512 k2 = _mm512_loadu_ps(k + 32), k3 = _mm512_loadu_ps(k + 48);
                    for (int r = 0; r < TR; r++) {
                        __m512 qv = _mm512_set1_ps(q[r * dp + t]);
                        acc[r][0] = _mm512_fmadd_ps(qv, k0, acc[r][0]);
                        acc[r][1] = _mm512_fmadd_ps(qv, k1, acc[r][1]);
                        acc[r][2] = _mm512_fmadd_ps(qv, k2, acc[r][2]);
                        acc[r][3] = _mm512_fmadd_ps(qv, k3, acc[r][3]);
                    }
                }
            } else {
                for (int64_t t = 0; t < d; t++) {
                    const float *k = kt + t * sc->ldkt;
                    __m512 k0 = _mm512_loadu_ps(k), k1 = _mm512_loadu_ps(k + 16);
                    __m512 k2 = _mm512_loadu_ps(k + 32), k3 = _mm512_loadu_ps(k + 48);
                    for (int r = 0; r < rows; r++) {
                        __m512 qv = _mm512_set1_ps(q[r * dp + t]);
                        acc[r][0] = _mm512_fmadd_ps(qv, k0, acc[r][0]);
                        acc[r][1] = _mm512_fmadd_ps(qv, k1, acc[r][1]);
                        acc[r][2] = _mm512_fmadd_ps(qv, k2, acc[r][2]);
                        acc[r][3] = _mm512_fmadd_ps(qv, k3, acc[r][3]);
                    }
                }
            }
            for (int r = 0; r < rows; r++)
                for (int u = 0; u < 4; u++) _mm512_store_ps(sc->s + (i0 + r) * BK + c * 64 + u * 16, acc[r][u]);
        }
    }
}

AVX512 static float row_max_avx512(const float *row, int64_t n, float start) {
    __m512 m = _mm512_set1_ps(start);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(row + j));
    if (j < n) m = _mm512_mask_max_ps(m, (__mmask16)((1u << (n - j)) - 1), m, _mm512_loadu_ps(row + j));
    return _mm512_reduce_max_ps(m);
}

/// row[j] = e^(row[j] − shift) for j < n; returns their sum.
AVX512 static float exp_row_avx512(float *row, int64_t n, float shift) {
    __m512 sh = _mm512_set1_ps(shift), sum = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 e = chisel_exp16(_mm512_sub_ps(_mm512_loadu_ps(row + j), sh));
        _mm512_storeu_ps(row + j, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (j < n) {
        __mmask16 mask = (__mmask16)((1u << (n - j)) - 1);
        __m512 e = chisel_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, row + j), sh));
        _mm512_mask_storeu_ps(row + j, mask, e);
        sum = _mm512_mask_add_ps(sum, mask, sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

/// O[i][c0..c0+16·NV) += Σ_j P[i][j]·V[j][…] for 4 rows at a time. NV is a compile-time
/// constant at each call site, so the accumulators stay in registers.
AVX512 static inline __attribute__((always_inline)) void accumulate_tile(
    const scratch *sc, const float *v, int64_t ldv, int64_t nq, int64_t nk, int64_t dp, int64_t c0, int64_t width,
    const int nv) {
    __mmask16 masks[4];
    chisel_lane_masks(width, masks);
    for (int64_t i0 = 0; i0 < nq; i0 += 4) {
        int64_t rows = nq - i0 < 4 ? nq - i0 : 4;
        __m512 acc[4][4];
        for (int r = 0; r < 4; r++)
            for (int u = 0; u < nv; u++)
                acc[r][u] = _mm512_maskz_load_ps(masks[u], sc->o + (i0 + (r < rows ? r : 0)) * dp + c0 + u * 16);
        const float *p = sc->s + i0 * BK;
        const float *p1 = p + (rows > 1 ? 1 : 0) * BK, *p2 = p + (rows > 2 ? 2 : 0) * BK, *p3 = p + (rows > 3 ? 3 : 0) * BK;
        for (int64_t j = 0; j < nk; j++) {
            const float *vr = v + j * ldv + c0;
            __m512 vv[4];
            for (int u = 0; u < nv; u++) vv[u] = _mm512_maskz_loadu_ps(masks[u], vr + u * 16);
            __m512 b0 = _mm512_set1_ps(p[j]), b1 = _mm512_set1_ps(p1[j]);
            __m512 b2 = _mm512_set1_ps(p2[j]), b3 = _mm512_set1_ps(p3[j]);
            for (int u = 0; u < nv; u++) {
                acc[0][u] = _mm512_fmadd_ps(b0, vv[u], acc[0][u]);
                acc[1][u] = _mm512_fmadd_ps(b1, vv[u], acc[1][u]);
                acc[2][u] = _mm512_fmadd_ps(b2, vv[u], acc[2][u]);
                acc[3][u] = _mm512_fmadd_ps(b3, vv[u], acc[3][u]);
            }
        }
        // Rows past nq computed duplicates of row 0; only real rows are stored, masked so a
        // head size that is not a multiple of 16 never writes past its row.
        for (int r = 0; r < rows; r++)
            for (int u = 0; u < nv; u++) _mm512_mask_store_ps(sc->o + (i0 + r) * dp + c0 + u * 16, masks[u], acc[r][u]);
    }
}

AVX512 static void accumulate_avx512(const scratch *sc, const float *v, int64_t ldv, int64_t nq, int64_t nk,
                                     int64_t d, int64_t dp) {
    for (int64_t c0 = 0; c0 < d; c0 += 64) {
        int64_t width = d - c0 < 64 ? d - c0 : 64;
        switch ((width + 15) / 16) {
        case 1: accumulate_tile(sc, v, ldv, nq, nk, dp, c0, width, 1); break;
        case 2: accumulate_tile(sc, v, ldv, nq, nk, dp, c0, width, 2); break;
        case 3: accumulate_tile(sc, v, ldv, nq, nk, dp, c0, width, 3); break;
        default: accumulate_tile(sc, v, ldv, nq, nk, dp, c0, width, 4); break;
        }
    }
}

/// The keys of one head transposed, kt[t][j] = k[j][t] for t < d, j < lk, zeros after lk up to
/// ldkt, in 16 × 16 register blocks: a column-by-column copy reads rows a multiple of 4 KiB
/// apart (3072 floats for a 1024-wide qkv row), which all fall in one cache set.
AVX512 static void pack_keys_avx512(float *kt, int64_t ldkt, const float *kh, int64_t ldk, int64_t lk, int64_t d) {
    for (int64_t j0 = 0; j0 < lk; j0 += 16) {
        int64_t nj = lk - j0 < 16 ? lk - j0 : 16;
        for (int64_t t0 = 0; t0 < d; t0 += 16) {
            __mmask16 mask = chisel_tail16(d - t0);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < nj ? _mm512_maskz_loadu_ps(mask, kh + (j0 + i) * ldk + t0) : _mm512_setzero_ps();
            chisel_transpose16(r);
            int64_t nt = d - t0 < 16 ? d - t0 : 16;
            for (int64_t i = 0; i < nt; i++) _mm512_storeu_ps(kt + (t0 + i) * ldkt + j0, r[i]);
        }
    }
    int64_t filled = round16(lk);
    for (int64_t t = 0; t < d; t++) memset(kt + t * ldkt + filled, 0, (size_t)(ldkt - filled) * sizeof(float));
}

// ---------------------------------------------------------------------------------------------
// AVX2 path (x86-64 without AVX-512): the same blocks in 8-lane registers. The packed buffers'
// zero padding lets every loop run whole vectors: keys to a multiple of 16, head columns to dp.

#define AVX2 __attribute__((target("avx2,fma")))

/// S[i][0..nk) = Q[i]·Kᵀ over the key block at j0, in tiles of 6 rows × 16 keys.
AVX2 static void scores_avx2(const scratch *sc, int64_t j0, int64_t nq, int64_t nk, int64_t d, int64_t dp) {
    int64_t chunks = (nk + 15) / 16;
    for (int64_t i0 = 0; i0 < nq; i0 += TR) {
        int64_t rows = nq - i0 < TR ? nq - i0 : TR;
        const float *q = sc->q + i0 * dp;
        for (int64_t c = 0; c < chunks; c++) {
            __m256 acc[TR][2];
            for (int r = 0; r < TR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
            const float *kt = sc->kt + j0 + c * 16;
            if (rows == TR) {
                for (int64_t t = 0; t < d; t++) {
                    const float *k = kt + t * sc->ldkt;
                    __m256 k0 = _mm256_loadu_ps(k), k1 = _mm256_loadu_ps(k + 8);
                    for (int r = 0; r < TR; r++) {
                        __m256 qv = _mm256_broadcast_ss(q + r * dp + t);
                        acc[r][0] = _mm256_fmadd_ps(qv, k0, acc[r][0]);
                        acc[r][1] = _mm256_fmadd_ps(qv, k1, acc[r][1]);
                    }
                }
            } else {
                for (int64_t t = 0; t < d; t++) {
                    const float *k = kt + t * sc->ldkt;
                    __m256 k0 = _mm256_loadu_ps(k), k1 = _mm256_loadu_ps(k + 8);
                    for (int r = 0; r < rows; r++) {
                        __m256 qv = _mm256_broadcast_ss(q + r * dp + t);
                        acc[r][0] = _mm256_fmadd_ps(qv, k0, acc[r][0]);
                        acc[r][1] = _mm256_fmadd_ps(qv, k1, acc[r][1]);
                    }
                }
            }
            for (int r = 0; r < rows; r++) {
                _mm256_storeu_ps(sc->s + (i0 + r) * BK + c * 16, acc[r][0]);
                _mm256_storeu_ps(sc->s + (i0 + r) * BK + c * 16 + 8, acc[r][1]);
            }
        }
    }
}

AVX2 static float row_max_avx2(const float *row, int64_t n, float start) {
    __m256 m = _mm256_set1_ps(start);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(row + j));
    float lanes[8];
    _mm256_storeu_ps(lanes, m);
    for (int i = 0; i < 8; i++) start = lanes[i] > start ? lanes[i] : start;
    for (; j < n; j++) start = row[j] > start ? row[j] : start;
    return start;
}

/// row[j] = e^(row[j] − shift) for j < n; returns their sum.
AVX2 static float exp_row_avx2(float *row, int64_t n, float shift) {
    __m256 sh = _mm256_set1_ps(shift), sum = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = chisel_exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), sh));
        _mm256_storeu_ps(row + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    float lanes[8], total = 0;
    _mm256_storeu_ps(lanes, sum);
    for (int i = 0; i < 8; i++) total += lanes[i];
    for (; j < n; j++) {
        row[j] = expf(row[j] - shift);
        total += row[j];
    }
    return total;
}

/// O[i][0..dp) += Σ_j P[i][j]·V[j][…], 4 rows × 16 columns at a time (the padding columns of
/// the packed values are zeros, so they stay zero).
AVX2 static void accumulate_avx2(const scratch *sc, const float *v, int64_t ldv, int64_t nq, int64_t nk, int64_t dp) {
    for (int64_t c0 = 0; c0 < dp; c0 += 16) {
        for (int64_t i0 = 0; i0 < nq; i0 += 4) {
            int64_t rows = nq - i0 < 4 ? nq - i0 : 4;
            __m256 acc[4][2];
            for (int r = 0; r < 4; r++) {
                const float *o = sc->o + (i0 + (r < rows ? r : 0)) * dp + c0;
                acc[r][0] = _mm256_loadu_ps(o);
                acc[r][1] = _mm256_loadu_ps(o + 8);
            }
            const float *p0 = sc->s + i0 * BK;
            const float *p1 = p0 + (rows > 1 ? 1 : 0) * BK, *p2 = p0 + (rows > 2 ? 2 : 0) * BK, *p3 = p0 + (rows > 3 ? 3 : 0) * BK;
            for (int64_t j = 0; j < nk; j++) {
                const float *vr = v + j * ldv + c0;
                __m256 v0 = _mm256_loadu_ps(vr), v1 = _mm256_loadu_ps(vr + 8);
                __m256 b0 = _mm256_broadcast_ss(p0 + j), b1 = _mm256_broadcast_ss(p1 + j);
                __m256 b2 = _mm256_broadcast_ss(p2 + j), b3 = _mm256_broadcast_ss(p3 + j);
                acc[0][0] = _mm256_fmadd_ps(b0, v0, acc[0][0]);
                acc[0][1] = _mm256_fmadd_ps(b0, v1, acc[0][1]);
                acc[1][0] = _mm256_fmadd_ps(b1, v0, acc[1][0]);
                acc[1][1] = _mm256_fmadd_ps(b1, v1, acc[1][1]);
                acc[2][0] = _mm256_fmadd_ps(b2, v0, acc[2][0]);
                acc[2][1] = _mm256_fmadd_ps(b2, v1, acc[2][1]);
                acc[3][0] = _mm256_fmadd_ps(b3, v0, acc[3][0]);
                acc[3][1] = _mm256_fmadd_ps(b3, v1, acc[3][1]);
            }
            // Rows past nq computed duplicates of row 0; only real rows are stored.
            for (int r = 0; r < rows; r++) {
                float *o = sc->o + (i0 + r) * dp + c0;
                _mm256_storeu_ps(o, acc[r][0]);
                _mm256_storeu_ps(o + 8, acc[r][1]);
            }
        }
    }
}

/// dst[t] = src[t] · scale for t < d.
AVX512 static void scaled_row_avx512(float *dst, const float *src, int64_t d, float scale) {
    __m512 k = _mm512_set1_ps(scale);
    for (int64_t t = 0; t < d; t += 16) {
        __mmask16 mask = chisel_tail16(d - t);
        _mm512_mask_storeu_ps(dst + t, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, src + t), k));
    }
}
#endif


int chisel_attention(const float *q, const float *k, const float *v, float *out, int64_t batch, int64_t heads,
                     int64_t lq, int64_t lk, int64_t d, int64_t ldq, int64_t ldk, int64_t ldv, int64_t ldo,
                     float scale, int causal, int64_t parallelism, int64_t item_begin, int64_t item_end) {
    int64_t dp = round16(d);
    int64_t qblocks = (lq + BQ - 1) / BQ;
    int64_t parts = query_parts(batch, heads, lq, parallelism);
    int fast = chisel_has_avx512(), avx2 = !fast && chisel_has_avx2();
    scratch sc;
    if (!scratch_alloc(&sc, dp, lk)) {
        scratch_free(&sc);
        return -1;
    }
    // Padding of the packed buffers stays zero, so whole-vector loads read zeros there.
    memset(sc.q, 0, (size_t)(BQ * dp) * sizeof(float));
    int64_t packed = -1;  // the (batch, head) whose keys sc.kt holds
    for (int64_t item = item_begin; item < item_end; item++) {
        int64_t bh = item / parts, part = item % parts;
        int64_t b = bh / heads, h = bh % heads;
        const float *qh = q + b * lq * ldq + h * d, *kh = k + b * lk * ldk + h * d, *vh = v + b * lk * ldv + h * d;
        if (packed != bh) {
#if defined(__x86_64__)
            if (fast) pack_keys_avx512(sc.kt, sc.ldkt, kh, ldk, lk, d); else
#endif
            for (int64_t t = 0; t < d; t++) {
                float *row = sc.kt + t * sc.ldkt;
                for (int64_t j = 0; j < lk; j++) row[j] = kh[j * ldk + t];
                memset(row + lk, 0, (size_t)(sc.ldkt - lk) * sizeof(float));
            }
            // The values too, in rows of dp: the head's rows in a wide qkv buffer are a multiple
            // of 4 KiB apart and would share cache sets.
            for (int64_t j = 0; j < lk; j++) {
                memcpy(sc.vp + j * dp, vh + j * ldv, (size_t)d * sizeof(float));
                memset(sc.vp + j * dp + d, 0, (size_t)(dp - d) * sizeof(float));
            }
            packed = bh;
        }
        int64_t first = qblocks * part / parts, last = qblocks * (part + 1) / parts;
        for (int64_t qb = first; qb < last; qb++) {
            int64_t i0 = qb * BQ, nq = lq - i0 < BQ ? lq - i0 : BQ;
            for (int64_t i = 0; i < nq; i++) {
#if defined(__x86_64__)
                if (fast) { scaled_row_avx512(sc.q + i * dp, qh + (i0 + i) * ldq, d, scale); continue; }
#endif
                for (int64_t t = 0; t < d; t++) sc.q[i * dp + t] = qh[(i0 + i) * ldq + t] * scale;
            }
            memset(sc.o, 0, (size_t)(BQ * dp) * sizeof(float));
            for (int64_t i = 0; i < BQ; i++) { sc.m[i] = -INFINITY; sc.l[i] = 0; }
            int64_t key_end = causal ? (i0 + nq < lk ? i0 + nq : lk) : lk;
            for (int64_t j0 = 0; j0 < key_end; j0 += BK) {
                int64_t nk = key_end - j0 < BK ? key_end - j0 : BK;
#if defined(__x86_64__)
                if (fast) scores_avx512(&sc, j0, nq, nk, d, dp); else
                if (avx2) scores_avx2(&sc, j0, nq, nk, d, dp); else
#endif
                scores_scalar(&sc, j0, nq, nk, d, dp);
                for (int64_t i = 0; i < nq; i++) {
                    float *row = sc.s + i * BK;
                    int64_t visible = nk;
                    if (causal) {
                        int64_t last_key = i0 + i - j0;  // the last key this query may see, relative to the block
                        visible = last_key + 1 < nk ? (last_key + 1 > 0 ? last_key + 1 : 0) : nk;
                    }
                    if (visible == 0) {
                        for (int64_t j = 0; j < nk; j++) row[j] = 0;
                        continue;
                    }
                    float peak;
#if defined(__x86_64__)
                    if (fast) peak = row_max_avx512(row, visible, sc.m[i]); else
                    if (avx2) peak = row_max_avx2(row, visible, sc.m[i]); else
#endif
                    peak = row_max_scalar(row, visible, sc.m[i]);
                    float sum;
#if defined(__x86_64__)
                    if (fast) sum = exp_row_avx512(row, visible, peak); else
                    if (avx2) sum = exp_row_avx2(row, visible, peak); else
#endif
                    sum = exp_row_scalar(row, visible, peak);
                    for (int64_t j = visible; j < nk; j++) row[j] = 0;
                    float correction = sc.m[i] == -INFINITY ? 0.0f : expf(sc.m[i] - peak);
                    sc.l[i] = sc.l[i] * correction + sum;
                    sc.m[i] = peak;
                    if (correction != 1.0f) {
#if defined(__x86_64__)
                        if (fast) scaled_row_avx512(sc.o + i * dp, sc.o + i * dp, d, correction); else
#endif
                        for (int64_t t = 0; t < d; t++) sc.o[i * dp + t] *= correction;
                    }
                }
#if defined(__x86_64__)
                if (fast) accumulate_avx512(&sc, sc.vp + j0 * dp, dp, nq, nk, d, dp); else
                if (avx2) accumulate_avx2(&sc, sc.vp + j0 * dp, dp, nq, nk, dp); else
#endif
                accumulate_scalar(&sc, sc.vp + j0 * dp, dp, nq, nk, d, dp);
            }
            float *oh = out + b * lq * ldo + h * d;
            for (int64_t i = 0; i < nq; i++) {
                float inv = sc.l[i] > 0 ? 1.0f / sc.l[i] : 0.0f;
#if defined(__x86_64__)
                if (fast) { scaled_row_avx512(oh + (i0 + i) * ldo, sc.o + i * dp, d, inv); continue; }
#endif
                for (int64_t t = 0; t < d; t++) oh[(i0 + i) * ldo + t] = sc.o[i * dp + t] * inv;
            }
        }
    }
    scratch_free(&sc);
    return 0;
}
