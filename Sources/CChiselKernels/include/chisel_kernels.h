#ifndef CHISEL_KERNELS_H
#define CHISEL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

// oneDNN primitives behind a small C interface: a convolution or a matmul is created once for
// its shapes with its weights reordered into the layout (and dtype) the kernel prefers, then run
// many times. Every function reports failure through its return value and an error buffer.

typedef struct chisel_conv chisel_conv;
typedef struct chisel_matmul chisel_matmul;

/// A 2-D convolution of NHWC float activations [n, ih, iw, ic] to NHWC floats [n, oh, ow, oc],
/// with OIHW float weights [oc, ic, kh, kw] and an optional bias [oc]. With bf16 != 0 the
/// weights are stored and multiplied in bfloat16 (activations are converted per call) and the
/// output stays float (bfloat16 with dst_bf16 != 0, for bf16 without accumulate). With accumulate
/// != 0 the result is added to what dst holds; with relu != 0 the result (after that sum) is
/// clamped at 0, fused into the kernel (a direct one: never Winograd). With a donor
/// (a kernel of the same layer built for another input size) the weights and bias come from it
/// and `weights`/`bias` are not read. With winograd != 0, a 3×3 stride-1 convolution built from a
/// donor uses oneDNN's float Winograd algorithm where it has one (for bf16, on the bfloat16
/// weights, with float input and output; never with dst_bf16) (activations are reordered to
/// and from its blocked layout each run): winograd = 1 keeps the transformed weights (about four
/// times the plain ones), 2 makes them from the donor's for each run and drops them after.
/// With band_rows > 0, a Winograd convolution of a single image (n = 1) taller than that runs in
/// bands of band_rows output rows, bounding its working memory. chisel_conv_is_winograd tells
/// which algorithm was built.
chisel_conv *chisel_conv_create(int64_t n, int64_t ic, int64_t ih, int64_t iw, int64_t oc, int64_t kh, int64_t kw,
                                int64_t stride, int64_t pad_top, int64_t pad_left, int64_t pad_bottom,
                                int64_t pad_right, int bf16, int accumulate, int dst_bf16, int winograd, int relu,
                                int64_t band_rows, const float *weights, const float *bias, const chisel_conv *donor,
                                char *error, size_t error_size);
int chisel_conv_is_winograd(const chisel_conv *conv);
int chisel_conv_run(chisel_conv *conv, const float *src, float *dst, char *error, size_t error_size);
/// Runs a bf16 convolution built with dst_bf16 on bfloat16 input into bfloat16 output.
int chisel_conv_run_half(chisel_conv *conv, const uint16_t *src, uint16_t *dst, char *error, size_t error_size);
/// Runs a bf16 convolution built with dst_bf16 on float input into bfloat16 output.
int chisel_conv_run_to_half(chisel_conv *conv, const float *src, uint16_t *dst, char *error, size_t error_size);
/// Runs a bf16 convolution on NHWC bfloat16 input, saving the per-run conversion.
int chisel_conv_run_bf16(chisel_conv *conv, const uint16_t *src, float *dst, char *error, size_t error_size);
void chisel_conv_output_size(const chisel_conv *conv, int64_t *oh, int64_t *ow);
void chisel_conv_destroy(chisel_conv *conv);

/// A 3×3, stride-1, padding-1 convolution by Winograd's F(2×2, 3×3) with bfloat16 products
/// (winograd_bf16.c), for ic a multiple of 32 and oc of 64 on CPUs with AVX-512 BF16 (NULL
/// otherwise, or when memory runs out). Weights OIHW floats, bias optional. A run covers output
/// tile rows [row_begin, row_end) of chisel_wino16_rows(n, h) (two output rows each) of an NHWC
/// input in floats or (src_bf16) bfloat16, into NHWC floats (added to what dst holds with
/// accumulate) or (dst_bf16, not with accumulate) bfloat16; relu clamps the result at 0 after
/// any sum. Returns 0, or −1 when scratch memory cannot be allocated.
typedef struct chisel_wino16 chisel_wino16;
chisel_wino16 *chisel_wino16_create(const float *weights, const float *bias, int64_t ic, int64_t oc);
void chisel_wino16_destroy(chisel_wino16 *w);
int chisel_wino16_supported(void);
int64_t chisel_wino16_rows(int64_t n, int64_t h);
int chisel_wino16_run(const chisel_wino16 *w, const void *src, int src_bf16, int64_t n, int64_t h, int64_t width,
                      void *dst, int dst_bf16, int accumulate, int relu, int64_t row_begin, int64_t row_end);

/// dst[m, n] = src[m, k] · weights[n, k]ᵀ (+ bias[n]) (+ dst when accumulate != 0), row-major
/// floats, the weights in PyTorch's Linear layout; bf16 and donor as for convolutions.
chisel_matmul *chisel_matmul_create(int64_t m, int64_t k, int64_t n, int bf16, int accumulate, const float *weights,
                                    const float *bias, const chisel_matmul *donor, char *error, size_t error_size);
int chisel_matmul_run(chisel_matmul *matmul, const float *src, float *dst, char *error, size_t error_size);
/// Runs a bf16 matmul on bfloat16 rows, saving the per-run conversion.
int chisel_matmul_run_bf16(chisel_matmul *matmul, const uint16_t *src, float *dst, char *error, size_t error_size);
void chisel_matmul_destroy(chisel_matmul *matmul);

/// Multi-head attention softmax(q·kᵀ·scale)·v on row-major float matrices whose rows hold all
/// heads side by side (row strides ldq, ldk, ldv, ldo; head h at columns h·d…h·d+d−1). Work is
/// split into items (batch × heads × ranges of query blocks, enough for `parallelism` threads);
/// this call runs items [item_begin, item_end), so callers can spread items over threads.
/// Returns 0, or −1 when scratch memory cannot be allocated.
int64_t chisel_attention_items(int64_t batch, int64_t heads, int64_t lq, int64_t parallelism);
int chisel_attention(const float *q, const float *k, const float *v, float *out, int64_t batch, int64_t heads,
                     int64_t lq, int64_t lk, int64_t d, int64_t ldq, int64_t ldk, int64_t ldv, int64_t ldo,
                     float scale, int causal, int64_t parallelism, int64_t item_begin, int64_t item_end);

/// The same attention with both products in bfloat16 (AVX-512 BF16), FP32 softmax and output;
/// returns −2 where the CPU lacks the instructions (check chisel_attention_bf16_supported).
int chisel_attention_bf16(const float *q, const float *k, const float *v, float *out, int64_t batch, int64_t heads,
                          int64_t lq, int64_t lk, int64_t d, int64_t ldq, int64_t ldk, int64_t ldv, int64_t ldo,
                          float scale, int causal, int64_t parallelism, int64_t item_begin, int64_t item_end);
int chisel_attention_bf16_supported(void);

/// Adds each channel's sum and sum of squares over rows [row_begin, row_end) of a rows × channels
/// matrix into `sum` and `sumsq` (double, `channels` each).
void chisel_channel_sums(const float *x, int64_t channels, int64_t row_begin, int64_t row_end, double *sum,
                         double *sumsq);
/// out = x·scale[c] + shift[c] per channel (then SiLU when silu != 0) over rows [row_begin, row_end).
void chisel_scale_shift(const float *x, float *out, int64_t channels, const float *scale, const float *shift,
                        int silu, int64_t row_begin, int64_t row_end);
/// As chisel_scale_shift, writing bfloat16 (round to nearest even).
void chisel_scale_shift_bf16(const float *x, uint16_t *out, int64_t channels, const float *scale, const float *shift,
                             int silu, int64_t row_begin, int64_t row_end);
/// Layer normalisation of rows [row_begin, row_end) of n features (two passes: mean, then the
/// variance about it), scaled by gamma and shifted by beta.
void chisel_layer_norm(const float *x, float *out, int64_t n, const float *gamma, const float *beta, float epsilon,
                       int64_t row_begin, int64_t row_end);
/// As chisel_channel_sums and chisel_scale_shift_bf16, reading bfloat16.
void chisel_channel_sums_half(const uint16_t *x, int64_t channels, int64_t row_begin, int64_t row_end, double *sum,
                              double *sumsq);
void chisel_scale_shift_half(const uint16_t *x, uint16_t *out, int64_t channels, const float *scale, const float *shift,
                             int silu, int64_t row_begin, int64_t row_end);
/// As chisel_layer_norm, writing bfloat16.
void chisel_layer_norm_bf16(const float *x, uint16_t *out, int64_t n, const float *gamma, const float *beta,
                            float epsilon, int64_t row_begin, int64_t row_end);
/// As chisel_geglu, writing bfloat16.
void chisel_geglu_bf16(const float *x, uint16_t *out, int64_t width, int64_t row_begin, int64_t row_end);
/// GEGLU: rows of 2·width values → rows of width values a · GELU(b), b the second half.
void chisel_geglu(const float *x, float *out, int64_t width, int64_t row_begin, int64_t row_end);
/// In place: kind 0 SiLU, 1 GELU (erf form), 2 CLIP's quick GELU.
void chisel_activation(float *x, int64_t count, int kind);

/// RMS normalisation of rows [row_begin, row_end) of n features: x · 1/√(mean(x²) + epsilon), then
/// · gamma and + beta where not NULL (diffusers' `RMSNorm`, FP32).
void chisel_rms_norm(const float *x, float *out, int64_t n, const float *gamma, const float *beta, float epsilon,
                     int64_t row_begin, int64_t row_end);
/// As chisel_rms_norm, writing bfloat16.
void chisel_rms_norm_bf16(const float *x, uint16_t *out, int64_t n, const float *gamma, const float *beta,
                          float epsilon, int64_t row_begin, int64_t row_end);
/// Depthwise 3×3 convolution, stride 1, zero padding 1, of NHWC maps [n, h, w, c]: output rows
/// [row_begin, row_end) of the n·h rows; taps [9][c] (tap dy·3+dx, then channel), bias [c] or NULL.
void chisel_depthwise_conv3x3(const float *x, float *out, int64_t h, int64_t w, int64_t c, const float *taps,
                              const float *bias, int64_t row_begin, int64_t row_end);

/// Makes glibc's malloc keep freed large blocks for reuse instead of unmapping them.
void chisel_keep_large_blocks(void);

/// Frees the reused per-run working buffers (scratchpads, reordered activations) that no run
/// holds at the moment; the next runs allocate them again.
void chisel_release_work_buffers(void);

/// Whether oneDNN has float Winograd convolutions on this CPU (AVX-512 and later).
int chisel_winograd_supported(void);

/// Whether this CPU runs oneDNN's bfloat16 kernels natively (AVX-512 BF16 or AMX).
int chisel_bf16_supported(void);

/// Whether oneDNN has no bfloat16 kernels at all on this CPU (before AVX-512), so that bf16
/// convolutions and matmuls run as float kernels on bfloat16-rounded operands (the same
/// products, summed in FP32; float weights in memory; FP32 speed).
int chisel_bf16_emulated(void);

/// Calls body(context, begin, end) for `chunks` disjoint ranges covering [0, count), spread over
/// the OpenMP threads oneDNN itself runs on, and returns 1 when done; returns 0 (having called
/// nothing) where that runtime is not loaded, so the caller can use its own threads.
typedef void (*chisel_chunk_body)(void *context, int64_t begin, int64_t end);
int chisel_parallel_chunks(int64_t count, int64_t chunks, chisel_chunk_body body, void *context);

/// OpenMP's thread count for the next parallel region of the calling thread (0 without the runtime).
int chisel_openmp_max_threads(void);

/// The CPUs the process's affinity mask allows (taskset, SLURM's --cpus-per-task); 0 if unknown.
int chisel_affinity_cpu_count(void);

/// torch.multinomial(p, 1) on the CPU for one row of n probabilities: the first index of the
/// largest p[j] / (float)(-log1p(-u[j])), u[j] the 53-bit uniform of the words (2j, 2j + 1),
/// high word first. `bounds` is scratch for n floats.
int64_t chisel_multinomial_row(const float *p, const uint32_t *words, int64_t n, float *bounds);

/// SHA-256 (FIPS 180-4), streamed: init, update with the bytes in order, final.
typedef struct chisel_sha256 {
    uint32_t state[8];
    uint64_t length;
    uint8_t buffer[64];
    size_t buffered;
} chisel_sha256;

void chisel_sha256_init(chisel_sha256 *ctx);
void chisel_sha256_update(chisel_sha256 *ctx, const uint8_t *data, size_t count);
void chisel_sha256_final(chisel_sha256 *ctx, uint8_t digest[32]);

#endif
