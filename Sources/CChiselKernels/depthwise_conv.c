#include "chisel_kernels.h"
#include "simd_math.h"

#include <stdint.h>

// A depthwise 3×3 convolution (stride 1, zero padding 1) on channels-last maps: each channel is
// filtered on its own, so the channels are the vector lanes and the nine taps are summed in
// order (top-left first) after the bias.

static void depthwise_scalar(const float *x, float *out, int64_t h, int64_t w, int64_t c, const float *taps,
                             const float *bias, int64_t row_begin, int64_t row_end) {
    for (int64_t row = row_begin; row < row_end; row++) {
        int64_t b = row / h, y = row % h;
        for (int64_t xo = 0; xo < w; xo++) {
            float *dst = out + (row * w + xo) * c;
            for (int64_t ch = 0; ch < c; ch++) dst[ch] = bias ? bias[ch] : 0.0f;
            for (int64_t dy = 0; dy < 3; dy++) {
                int64_t yi = y + dy - 1;
                if (yi < 0 || yi >= h) continue;
                for (int64_t dx = 0; dx < 3; dx++) {
                    int64_t xi = xo + dx - 1;
                    if (xi < 0 || xi >= w) continue;
                    const float *src = x + ((b * h + yi) * w + xi) * c, *tap = taps + (dy * 3 + dx) * c;
                    for (int64_t ch = 0; ch < c; ch++) dst[ch] += src[ch] * tap[ch];
                }
            }
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f,fma"))) static void depthwise_avx512(const float *x, float *out, int64_t h, int64_t w,
                                                                    int64_t c, const float *taps, const float *bias,
                                                                    int64_t row_begin, int64_t row_end) {
    for (int64_t row = row_begin; row < row_end; row++) {
        int64_t b = row / h, y = row % h;
        for (int64_t xo = 0; xo < w; xo++) {
            float *dst = out + (row * w + xo) * c;
            for (int64_t c0 = 0; c0 < c; c0 += 16) {
                __mmask16 mask = chisel_tail16(c - c0);
                __m512 acc = bias ? _mm512_maskz_loadu_ps(mask, bias + c0) : _mm512_setzero_ps();
                for (int64_t dy = 0; dy < 3; dy++) {
                    int64_t yi = y + dy - 1;
                    if (yi < 0 || yi >= h) continue;
                    for (int64_t dx = 0; dx < 3; dx++) {
                        int64_t xi = xo + dx - 1;
                        if (xi < 0 || xi >= w) continue;
                        const float *src = x + ((b * h + yi) * w + xi) * c + c0;
                        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, src),
                                              _mm512_maskz_loadu_ps(mask, taps + (dy * 3 + dx) * c + c0), acc);
                    }
                }
                _mm512_mask_storeu_ps(dst + c0, mask, acc);
            }
        }
    }
}
#endif

void chisel_depthwise_conv3x3(const float *x, float *out, int64_t h, int64_t w, int64_t c, const float *taps,
                              const float *bias, int64_t row_begin, int64_t row_end) {
#if defined(__x86_64__)
    if (chisel_has_avx512()) { depthwise_avx512(x, out, h, w, c, taps, bias, row_begin, row_end); return; }
#endif
    depthwise_scalar(x, out, h, w, c, taps, bias, row_begin, row_end);
}
