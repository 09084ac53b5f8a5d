#include "chisel_kernels.h"
#include "simd_math.h"

#include <stdlib.h>
#include <string.h>

// A 3×3, stride-1, padding-1 convolution by Winograd's F(2×2, 3×3) (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2016) with its products in bfloat16: each 4×4
// input tile becomes 16 transformed values per channel (Bᵀ d B, additions only, in FP32), each
// of the 16 is multiplied with its transformed weights (G g Gᵀ) over the channels with AVX-512
// BF16 dot products into FP32, and each 2×2 output tile is Aᵀ M A. That is 16 multiplications
// per 4 outputs instead of 36. oneDNN has no bfloat16 Winograd, and its FP32 one runs at half
// the bf16 rate. As with any bf16 convolution the inputs of the products are rounded to
// bfloat16, here after the transform (the transformed weights likewise), so the rounding is
// about twice a direct bf16 convolution's.
//
// Activations are channels-last (NHWC), in FP32 or bfloat16; the output is FP32 (optionally
// added to what it holds) or bfloat16, with the bias and an optional ReLU applied in the output
// transform.

#if defined(__x86_64__)
#include <immintrin.h>
#define W16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))

enum { TB = 24, TR = 6 };

struct chisel_wino16 {
    int64_t ic, oc;
    uint32_t *weights;  // 16 × ic/2 × oc: transformed weights, pairs of input channels
    float *bias;        // oc (zeros without one)
};

/// The bfloat16 pair (lo, hi) rounded to nearest even, as one 32-bit word.
static uint32_t pair_bits(float lo, float hi) {
    return (uint32_t)chisel_bf16_bits(lo) | ((uint32_t)chisel_bf16_bits(hi) << 16);
}

chisel_wino16 *chisel_wino16_create(const float *weights, const float *bias, int64_t ic, int64_t oc) {
    if (!chisel_wino16_supported() || ic % 32 != 0 || oc % 64 != 0 || ic <= 0 || oc <= 0) return NULL;
    static const float G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
    chisel_wino16 *w = calloc(1, sizeof *w);
    float *u = malloc(sizeof(float) * 16 * (size_t)(ic * oc));
    if (!w || !u) { free(w); free(u); return NULL; }
    w->ic = ic;
    w->oc = oc;
    w->weights = aligned_alloc(64, sizeof(uint32_t) * 16 * (size_t)(ic / 2 * oc));
    w->bias = aligned_alloc(64, sizeof(float) * (size_t)((oc + 15) / 16 * 16));
    if (!w->weights || !w->bias) { free(u); chisel_wino16_destroy(w); return NULL; }
    for (int64_t k = 0; k < oc; k++) {
        w->bias[k] = bias ? bias[k] : 0;
        for (int64_t c = 0; c < ic; c++) {
            const float *g = weights + (k * ic + c) * 9;
            float t[4][3];
            for (int a = 0; a < 4; a++)
                for (int j = 0; j < 3; j++) t[a][j] = G[a][0] * g[j] + G[a][1] * g[3 + j] + G[a][2] * g[6 + j];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++)
                    u[((a * 4 + b) * ic + c) * oc + k] = t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2];
        }
    }
    for (int64_t x = 0; x < 16; x++)
        for (int64_t p = 0; p < ic / 2; p++)
            for (int64_t k = 0; k < oc; k++)
                w->weights[(x * (ic / 2) + p) * oc + k] = pair_bits(u[(x * ic + 2 * p) * oc + k], u[(x * ic + 2 * p + 1) * oc + k]);
    free(u);
    return w;
}

void chisel_wino16_destroy(chisel_wino16 *w) {
    if (!w) return;
    free(w->weights);
    free(w->bias);
    free(w);
}

int chisel_wino16_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512f");
}

int64_t chisel_wino16_rows(int64_t n, int64_t h) { return n * ((h + 1) / 2); }

W16 static inline __m512 load16(const void *src, int bf16, int64_t offset) {
    if (bf16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)src + offset));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    return _mm512_loadu_ps((const float *)src + offset);
}

/// The transformed input of nt tiles (tile row ty of one image, from tile tx0) into ut[ξ][t][pair].
W16 static void input_transform(const void *x, int bf16, int64_t h, int64_t w, int64_t ic, int64_t ty, int64_t tx0,
                                int64_t nt, uint32_t *ut) {
    int64_t pairs = ic / 2;
    for (int64_t t = 0; t < nt; t++) {
        int64_t y0 = 2 * ty - 1, x0 = 2 * (tx0 + t) - 1;
        for (int64_t c = 0; c < ic; c += 32) {
            __m512 v[2][4][4];
            for (int half = 0; half < 2; half++) {
                __m512 d[4][4];
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) {
                        int64_t yy = y0 + i, xx = x0 + j;
                        d[i][j] = (yy < 0 || yy >= h || xx < 0 || xx >= w) ? _mm512_setzero_ps()
                                  : load16(x, bf16, (yy * w + xx) * ic + c + 16 * half);
                    }
                // Bᵀ d B with Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
                __m512 s[4][4];
                for (int j = 0; j < 4; j++) {
                    s[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
                    s[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
                    s[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
                    s[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
                }
                for (int i = 0; i < 4; i++) {
                    v[half][i][0] = _mm512_sub_ps(s[i][0], s[i][2]);
                    v[half][i][1] = _mm512_add_ps(s[i][1], s[i][2]);
                    v[half][i][2] = _mm512_sub_ps(s[i][2], s[i][1]);
                    v[half][i][3] = _mm512_sub_ps(s[i][1], s[i][3]);
                }
            }
            // cvtne2ps puts the first 16 channels in the low half: as words, pairs (2p, 2p + 1).
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    _mm512_storeu_si512(ut + ((i * 4 + j) * TB + t) * pairs + c / 2,
                                        (__m512i)_mm512_cvtne2ps_pbh(v[1][i][j], v[0][i][j]));
        }
    }
}

/// m[ξ][t][k] = Σ_pairs ut[ξ][t][pair] · weights[ξ][pair][k], for each of the 16 ξ.
W16 static void products(const uint32_t *ut, const chisel_wino16 *wt, int64_t nt, float *m) {
    int64_t pairs = wt->ic / 2, oc = wt->oc;
    for (int x = 0; x < 16; x++) {
        const uint32_t *u = ut + x * TB * pairs, *wx = wt->weights + x * pairs * oc;
        float *mx = m + x * TB * oc;
        for (int64_t k0 = 0; k0 < oc; k0 += 64)
            for (int64_t t0 = 0; t0 < nt; t0 += TR) {
                int64_t rows = nt - t0 < TR ? nt - t0 : TR;
                __m512 acc[TR][4];
                for (int r = 0; r < TR; r++)
                    for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
                for (int64_t p = 0; p < pairs; p++) {
                    const uint32_t *wr = wx + p * oc + k0;
                    __m512bh w0 = (__m512bh)_mm512_loadu_si512(wr), w1 = (__m512bh)_mm512_loadu_si512(wr + 16);
                    __m512bh w2 = (__m512bh)_mm512_loadu_si512(wr + 32), w3 = (__m512bh)_mm512_loadu_si512(wr + 48);
                    for (int r = 0; r < TR; r++) {
                        // Rows past nt read tile t0's values; their sums are never stored.
                        __m512bh a = (__m512bh)_mm512_set1_epi32((int)u[(t0 + (r < rows ? r : 0)) * pairs + p]);
                        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, w0);
                        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, w1);
                        acc[r][2] = _mm512_dpbf16_ps(acc[r][2], a, w2);
                        acc[r][3] = _mm512_dpbf16_ps(acc[r][3], a, w3);
                    }
                }
                for (int r = 0; r < rows; r++)
                    for (int q = 0; q < 4; q++) _mm512_storeu_ps(mx + (t0 + r) * oc + k0 + 16 * q, acc[r][q]);
            }
    }
}

/// Aᵀ M A (Aᵀ = [1 1 1 0; 0 1 −1 −1]) plus the bias, (+ what dst holds), ReLU, into the output.
W16 static void output_transform(const float *m, const chisel_wino16 *wt, int64_t nt, int64_t h, int64_t w,
                                 int64_t ty, int64_t tx0, void *dst, int dst_bf16, int accumulate, int relu) {
    int64_t oc = wt->oc;
    for (int64_t t = 0; t < nt; t++)
        for (int64_t k = 0; k < oc; k += 16) {
            __m512 v[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) v[i][j] = _mm512_loadu_ps(m + ((i * 4 + j) * TB + t) * oc + k);
            __m512 s[2][4];
            for (int j = 0; j < 4; j++) {
                s[0][j] = _mm512_add_ps(_mm512_add_ps(v[0][j], v[1][j]), v[2][j]);
                s[1][j] = _mm512_sub_ps(_mm512_sub_ps(v[1][j], v[2][j]), v[3][j]);
            }
            __m512 b = _mm512_load_ps(wt->bias + k);
            for (int i = 0; i < 2; i++) {
                int64_t oy = 2 * ty + i;
                if (oy >= h) break;
                __m512 out[2] = {_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[i][0], s[i][1]), s[i][2]), b),
                                 _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[i][1], s[i][2]), s[i][3]), b)};
                for (int j = 0; j < 2; j++) {
                    int64_t ox = 2 * (tx0 + t) + j;
                    if (ox >= w) break;
                    int64_t at = (oy * w + ox) * oc + k;
                    __m512 o = out[j];
                    if (dst_bf16) {
                        if (relu) o = _mm512_max_ps(o, _mm512_setzero_ps());
                        chisel_store16_bf16(0xFFFF, (uint16_t *)dst + at, o);
                    } else {
                        float *f = (float *)dst + at;
                        if (accumulate) o = _mm512_add_ps(o, _mm512_loadu_ps(f));
                        if (relu) o = _mm512_max_ps(o, _mm512_setzero_ps());
                        _mm512_storeu_ps(f, o);
                    }
                }
            }
        }
}

int chisel_wino16_run(const chisel_wino16 *wt, const void *src, int src_bf16, int64_t n, int64_t h, int64_t w,
                      void *dst, int dst_bf16, int accumulate, int relu, int64_t row_begin, int64_t row_end) {
    uint32_t *ut = aligned_alloc(64, sizeof(uint32_t) * 16 * TB * (size_t)(wt->ic / 2));
    float *m = aligned_alloc(64, sizeof(float) * 16 * TB * (size_t)wt->oc);
    if (!ut || !m) { free(ut); free(m); return -1; }
    int64_t tile_rows = (h + 1) / 2, tile_cols = (w + 1) / 2;
    for (int64_t row = row_begin; row < row_end; row++) {
        int64_t image = row / tile_rows, ty = row % tile_rows;
        const char *x = (const char *)src + image * h * w * wt->ic * (src_bf16 ? 2 : 4);
        char *y = (char *)dst + image * h * w * wt->oc * (dst_bf16 ? 2 : 4);
        for (int64_t tx0 = 0; tx0 < tile_cols; tx0 += TB) {
            int64_t nt = tile_cols - tx0 < TB ? tile_cols - tx0 : TB;
            input_transform(x, src_bf16, h, w, wt->ic, ty, tx0, nt, ut);
            products(ut, wt, nt, m);
            output_transform(m, wt, nt, h, w, ty, tx0, y, dst_bf16, accumulate, relu);
        }
    }
    free(ut);
    free(m);
    return 0;
}
#else
struct chisel_wino16 { int unused; };
chisel_wino16 *chisel_wino16_create(const float *weights, const float *bias, int64_t ic, int64_t oc) { return NULL; }
void chisel_wino16_destroy(chisel_wino16 *w) {}
int chisel_wino16_supported(void) { return 0; }
int64_t chisel_wino16_rows(int64_t n, int64_t h) { return n * ((h + 1) / 2); }
int chisel_wino16_run(const chisel_wino16 *wt, const void *src, int src_bf16, int64_t n, int64_t h, int64_t w,
                      void *dst, int dst_bf16, int accumulate, int relu, int64_t row_begin, int64_t row_end) {
    return -2;
}
#endif
