#include "chisel_kernels.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static dnnl_engine_t engine;
static dnnl_status_t engine_status = dnnl_runtime_error;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void make_engine(void) { engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0); }

static dnnl_engine_t get_engine(void) {
    pthread_once(&engine_once, make_engine);
    return engine_status == dnnl_success ? engine : NULL;
}

static int fail(char *error, size_t size, const char *what, dnnl_status_t status) {
    if (error && size) snprintf(error, size, "%s failed (oneDNN status %d)", what, (int)status);
    return (int)(status == dnnl_success ? dnnl_runtime_error : status);
}

#define CHECK(call, what)                                                     \
    do {                                                                      \
        dnnl_status_t s_ = (call);                                            \
        if (s_ != dnnl_success) { fail(error, error_size, what, s_); goto failed; } \
    } while (0)

/// A plain user buffer and, when the primitive wants another layout (or dtype), the reorder to
/// it. The reordered copy lives only for one run, so a network's kernels do not each keep an
/// activation-sized buffer.
typedef struct {
    dnnl_memory_desc_t user_md;
    dnnl_memory_desc_t kernel_md;
    dnnl_primitive_t reorder;
    int needs_reorder;
} staged_input;

static dnnl_status_t stage_create(staged_input *staged, const dnnl_memory_desc_t *user,
                                  const dnnl_memory_desc_t *kernel) {
    memset(staged, 0, sizeof(*staged));
    staged->user_md = *user;
    staged->kernel_md = *kernel;
    staged->needs_reorder = !dnnl_memory_desc_equal(user, kernel);
    if (!staged->needs_reorder) return dnnl_success;
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, user, get_engine(), kernel, get_engine(), NULL);
    if (s != dnnl_success) return s;
    s = dnnl_primitive_create(&staged->reorder, pd);
    dnnl_primitive_desc_destroy(pd);
    return s;
}

/// Sets `kernel_data` to the buffer the kernel reads: `data` itself, or a reordered copy in
/// `*owned`, which the caller frees after the run.
static dnnl_status_t stage_run(staged_input *staged, dnnl_stream_t stream, const void *data, void **kernel_data,
                               void **owned) {
    *owned = NULL;
    if (!staged->needs_reorder) {
        *kernel_data = (void *)data;
        return dnnl_success;
    }
    size_t size = dnnl_memory_desc_get_size(&staged->kernel_md);
    *owned = aligned_alloc(64, (size + 63) / 64 * 64);
    if (!*owned) return dnnl_out_of_memory;
    dnnl_memory_t from = NULL, to = NULL;
    dnnl_status_t s = dnnl_memory_create(&from, &staged->user_md, get_engine(), (void *)data);
    if (s == dnnl_success) s = dnnl_memory_create(&to, &staged->kernel_md, get_engine(), *owned);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        s = dnnl_primitive_execute(staged->reorder, stream, 2, args);
        if (s == dnnl_success) s = dnnl_stream_wait(stream);
    }
    if (from) dnnl_memory_destroy(from);
    if (to) dnnl_memory_destroy(to);
    *kernel_data = *owned;
    return s;
}

static void stage_destroy(staged_input *staged) {
    if (staged->reorder) dnnl_primitive_destroy(staged->reorder);
}

/// Reorders weights once into the kernel's layout; the result is owned by the caller.
static dnnl_status_t reorder_once(const dnnl_memory_desc_t *user, const void *data, const dnnl_memory_desc_t *kernel,
                                  void **out) {
    size_t size = dnnl_memory_desc_get_size(kernel);
    *out = aligned_alloc(64, (size + 63) / 64 * 64);
    if (!*out) return dnnl_out_of_memory;
    staged_input staged;
    dnnl_status_t s = stage_create(&staged, user, kernel);
    if (s != dnnl_success) { stage_destroy(&staged); return s; }
    if (!staged.needs_reorder) {
        memcpy(*out, data, size);
        stage_destroy(&staged);
        return dnnl_success;
    }
    dnnl_stream_t stream;
    s = dnnl_stream_create(&stream, get_engine(), dnnl_stream_default_flags);
    if (s == dnnl_success) {
        dnnl_memory_t from = NULL, to = NULL;
        s = dnnl_memory_create(&from, user, get_engine(), (void *)data);
        if (s == dnnl_success) s = dnnl_memory_create(&to, kernel, get_engine(), *out);
        if (s == dnnl_success) {
            dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
            s = dnnl_primitive_execute(staged.reorder, stream, 2, args);
            if (s == dnnl_success) s = dnnl_stream_wait(stream);
        }
        if (from) dnnl_memory_destroy(from);
        if (to) dnnl_memory_destroy(to);
        dnnl_stream_destroy(stream);
    }
    stage_destroy(&staged);
    return s;
}

static dnnl_status_t make_attr(dnnl_primitive_attr_t *attr, int accumulate) {
    dnnl_status_t s = dnnl_primitive_attr_create(attr);
    if (s != dnnl_success) return s;
    s = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (s != dnnl_success || !accumulate) return s;
    dnnl_post_ops_t ops;
    s = dnnl_post_ops_create(&ops);
    if (s != dnnl_success) return s;
    s = dnnl_post_ops_append_sum(ops, 1.0f);
    if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(*attr, ops);
    dnnl_post_ops_destroy(ops);
    return s;
}

/// A reference-counted buffer, so kernels built for several input sizes of one layer share
/// their weights when their layouts agree.
typedef struct {
    void *data;
    atomic_int refs;
} shared_buffer;

static shared_buffer *shared_wrap(void *data) {
    shared_buffer *buffer = malloc(sizeof(shared_buffer));
    if (!buffer) return NULL;
    buffer->data = data;
    atomic_init(&buffer->refs, 1);
    return buffer;
}

static void shared_release(shared_buffer *buffer) {
    if (buffer && atomic_fetch_sub(&buffer->refs, 1) == 1) {
        free(buffer->data);
        free(buffer);
    }
}

/// What a convolution and a matmul share: the primitive, its staged source, weights and bias.
typedef struct {
    dnnl_primitive_t primitive;
    dnnl_memory_desc_t src_md, weights_md, bias_md, dst_md, scratch_md;
    staged_input src;
    shared_buffer *weights;
    shared_buffer *bias;
    int has_bias;
} kernel_core;

static void core_destroy(kernel_core *core) {
    if (core->primitive) dnnl_primitive_destroy(core->primitive);
    stage_destroy(&core->src);
    shared_release(core->weights);
    shared_release(core->bias);
}

/// Finishes a kernel from its primitive descriptor: staging, weights, bias. Weights come from
/// `donor` (another kernel of the same layer) when given, shared when the layout agrees and
/// reordered from the donor's copy otherwise; else from the caller's plain float array.
static dnnl_status_t core_finish(kernel_core *core, dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *user_src,
                                 const dnnl_memory_desc_t *user_weights, const float *weights, const float *bias,
                                 int64_t bias_count, const kernel_core *donor) {
    dnnl_status_t s = dnnl_primitive_create(&core->primitive, pd);
    if (s != dnnl_success) return s;
    core->src_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    core->weights_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    core->dst_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    core->scratch_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    s = stage_create(&core->src, user_src, &core->src_md);
    if (s != dnnl_success) return s;
    if (donor && dnnl_memory_desc_equal(&donor->weights_md, &core->weights_md)) {
        atomic_fetch_add(&donor->weights->refs, 1);
        core->weights = donor->weights;
    } else {
        void *data = NULL;
        s = donor ? reorder_once(&donor->weights_md, donor->weights->data, &core->weights_md, &data)
                  : reorder_once(user_weights, weights, &core->weights_md, &data);
        if (s != dnnl_success) { free(data); return s; }
        core->weights = shared_wrap(data);
        if (!core->weights) { free(data); return dnnl_out_of_memory; }
    }
    const float *bias_source = donor ? (donor->has_bias ? donor->bias->data : NULL) : bias;
    if (bias_source) {
        core->has_bias = 1;
        core->bias_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1);
        if (donor) {
            atomic_fetch_add(&donor->bias->refs, 1);
            core->bias = donor->bias;
        } else {
            float *copy = aligned_alloc(64, ((size_t)bias_count * sizeof(float) + 63) / 64 * 64);
            if (!copy) return dnnl_out_of_memory;
            memcpy(copy, bias, (size_t)bias_count * sizeof(float));
            core->bias = shared_wrap(copy);
            if (!core->bias) { free(copy); return dnnl_out_of_memory; }
        }
    }
    return dnnl_success;
}

/// Runs the kernel; `src` is in the user layout (float), or already in the kernel's source
/// layout and dtype when `direct`.
static int core_run_any(kernel_core *core, const void *src, int direct, void *dst, char *error, size_t error_size) {
    dnnl_stream_t stream = NULL;
    dnnl_memory_t m_src = NULL, m_weights = NULL, m_bias = NULL, m_dst = NULL, m_scratch = NULL;
    void *scratch = NULL;
    void *kernel_src = NULL, *staged_copy = NULL;
    int result = 0;
    CHECK(dnnl_stream_create(&stream, get_engine(), dnnl_stream_default_flags), "stream");
    if (direct) kernel_src = (void *)src;
    else CHECK(stage_run(&core->src, stream, src, &kernel_src, &staged_copy), "source reorder");
    size_t scratch_size = dnnl_memory_desc_get_size(&core->scratch_md);
    if (scratch_size) {
        scratch = aligned_alloc(64, (scratch_size + 63) / 64 * 64);
        if (!scratch) { result = fail(error, error_size, "scratchpad allocation", dnnl_out_of_memory); goto done; }
    }
    CHECK(dnnl_memory_create(&m_src, &core->src_md, get_engine(), kernel_src), "memory");
    CHECK(dnnl_memory_create(&m_weights, &core->weights_md, get_engine(), core->weights->data), "memory");
    CHECK(dnnl_memory_create(&m_dst, &core->dst_md, get_engine(), dst), "memory");
    CHECK(dnnl_memory_create(&m_scratch, &core->scratch_md, get_engine(), scratch), "memory");
    dnnl_exec_arg_t args[5] = {
        {DNNL_ARG_SRC, m_src}, {DNNL_ARG_WEIGHTS, m_weights}, {DNNL_ARG_DST, m_dst}, {DNNL_ARG_SCRATCHPAD, m_scratch}};
    int count = 4;
    if (core->has_bias) {
        CHECK(dnnl_memory_create(&m_bias, &core->bias_md, get_engine(), core->bias->data), "memory");
        args[count++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, m_bias};
    }
    CHECK(dnnl_primitive_execute(core->primitive, stream, count, args), "execute");
    CHECK(dnnl_stream_wait(stream), "wait");
    goto done;
failed:
    result = -1;
done:
    if (m_src) dnnl_memory_destroy(m_src);
    if (m_weights) dnnl_memory_destroy(m_weights);
    if (m_bias) dnnl_memory_destroy(m_bias);
    if (m_dst) dnnl_memory_destroy(m_dst);
    if (m_scratch) dnnl_memory_destroy(m_scratch);
    if (stream) dnnl_stream_destroy(stream);
    free(scratch);
    free(staged_copy);
    return result;
}

struct chisel_conv {
    kernel_core core;
    int64_t oh, ow;
};

chisel_conv *chisel_conv_create(int64_t n, int64_t ic, int64_t ih, int64_t iw, int64_t oc, int64_t kh, int64_t kw,
                                int64_t stride, int64_t pad_top, int64_t pad_left, int64_t pad_bottom,
                                int64_t pad_right, int bf16, int accumulate, int dst_bf16, const float *weights,
                                const float *bias, const chisel_conv *donor, char *error, size_t error_size) {
    chisel_conv *conv = calloc(1, sizeof(chisel_conv));
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (!conv) return NULL;
    if (!get_engine()) { fail(error, error_size, "engine creation", engine_status); goto failed; }
    conv->oh = (ih + pad_top + pad_bottom - kh) / stride + 1;
    conv->ow = (iw + pad_left + pad_right - kw) / stride + 1;
    dnnl_data_type_t compute = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_dims_t src_dims = {n, ic, ih, iw}, dst_dims = {n, oc, conv->oh, conv->ow};
    dnnl_dims_t w_dims = {oc, ic, kh, kw}, b_dims = {oc};
    dnnl_dims_t strides = {stride, stride}, pad_l = {pad_top, pad_left}, pad_r = {pad_bottom, pad_right};
    dnnl_memory_desc_t user_src, src, dst, user_w, w_any, b;
    CHECK(dnnl_memory_desc_init_by_tag(&user_src, 4, src_dims, dnnl_f32, dnnl_nhwc), "source descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&src, 4, src_dims, compute, dnnl_nhwc), "source descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&dst, 4, dst_dims, (bf16 && dst_bf16 && !accumulate) ? dnnl_bf16 : dnnl_f32,
                                       dnnl_nhwc), "destination descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&user_w, 4, w_dims, dnnl_f32, dnnl_oihw), "weights descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, w_dims, compute, dnnl_format_tag_any), "weights descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&b, 1, b_dims, dnnl_f32, dnnl_a), "bias descriptor");
    dnnl_convolution_desc_t desc;
    CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct, &src, &w_any,
                                             (bias || (donor && donor->core.has_bias)) ? &b : NULL, &dst, strides, pad_l, pad_r),
          "convolution descriptor");
    CHECK(make_attr(&attr, accumulate), "attributes");
    CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, get_engine(), NULL), "convolution primitive");
    CHECK(core_finish(&conv->core, pd, &user_src, &user_w, weights, bias, oc, donor ? &donor->core : NULL),
          "convolution setup");
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return conv;
failed:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    core_destroy(&conv->core);
    free(conv);
    return NULL;
}

static int core_run(kernel_core *core, const float *src, float *dst, char *error, size_t error_size) {
    return core_run_any(core, src, 0, dst, error, error_size);
}

int chisel_conv_run(chisel_conv *conv, const float *src, float *dst, char *error, size_t error_size) {
    return core_run(&conv->core, src, dst, error, error_size);
}

int chisel_conv_run_half(chisel_conv *conv, const uint16_t *src, uint16_t *dst, char *error, size_t error_size) {
    if (conv->core.src_md.data_type != dnnl_bf16 || conv->core.dst_md.data_type != dnnl_bf16) {
        if (error && error_size) snprintf(error, error_size, "bfloat16 output from a convolution built for float");
        return -1;
    }
    return core_run_any(&conv->core, src, 1, dst, error, error_size);
}

int chisel_conv_run_bf16(chisel_conv *conv, const uint16_t *src, float *dst, char *error, size_t error_size) {
    if (conv->core.src_md.data_type != dnnl_bf16) {
        if (error && error_size) snprintf(error, error_size, "bfloat16 input to a convolution built for float");
        return -1;
    }
    return core_run_any(&conv->core, src, 1, dst, error, error_size);
}

void chisel_conv_output_size(const chisel_conv *conv, int64_t *oh, int64_t *ow) {
    *oh = conv->oh;
    *ow = conv->ow;
}

void chisel_conv_destroy(chisel_conv *conv) {
    if (!conv) return;
    core_destroy(&conv->core);
    free(conv);
}

struct chisel_matmul {
    kernel_core core;
};

chisel_matmul *chisel_matmul_create(int64_t m, int64_t k, int64_t n, int bf16, int accumulate, const float *weights,
                                    const float *bias, const chisel_matmul *donor, char *error, size_t error_size) {
    chisel_matmul *matmul = calloc(1, sizeof(chisel_matmul));
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (!matmul) return NULL;
    if (!get_engine()) { fail(error, error_size, "engine creation", engine_status); goto failed; }
    dnnl_data_type_t compute = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_dims_t src_dims = {m, k}, w_dims = {k, n}, dst_dims = {m, n}, b_dims = {1, n};
    dnnl_memory_desc_t user_src, src, dst, user_w, w_any, b;
    CHECK(dnnl_memory_desc_init_by_tag(&user_src, 2, src_dims, dnnl_f32, dnnl_ab), "source descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&src, 2, src_dims, compute, dnnl_ab), "source descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&dst, 2, dst_dims, dnnl_f32, dnnl_ab), "destination descriptor");
    // PyTorch's Linear weight is [n, k] row-major: as a k×n matrix that is the "ba" layout.
    CHECK(dnnl_memory_desc_init_by_tag(&user_w, 2, w_dims, dnnl_f32, dnnl_ba), "weights descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&w_any, 2, w_dims, compute, dnnl_format_tag_any), "weights descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&b, 2, b_dims, dnnl_f32, dnnl_ab), "bias descriptor");
    dnnl_matmul_desc_t desc;
    CHECK(dnnl_matmul_desc_init(&desc, &src, &w_any, (bias || (donor && donor->core.has_bias)) ? &b : NULL, &dst),
          "matmul descriptor");
    CHECK(make_attr(&attr, accumulate), "attributes");
    CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, get_engine(), NULL), "matmul primitive");
    CHECK(core_finish(&matmul->core, pd, &user_src, &user_w, weights, bias, n, donor ? &donor->core : NULL),
          "matmul setup");
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return matmul;
failed:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    core_destroy(&matmul->core);
    free(matmul);
    return NULL;
}

int chisel_matmul_run(chisel_matmul *matmul, const float *src, float *dst, char *error, size_t error_size) {
    return core_run(&matmul->core, src, dst, error, error_size);
}

int chisel_matmul_run_bf16(chisel_matmul *matmul, const uint16_t *src, float *dst, char *error, size_t error_size) {
    if (matmul->core.src_md.data_type != dnnl_bf16) {
        if (error && error_size) snprintf(error, error_size, "bfloat16 input to a matmul built for float");
        return -1;
    }
    return core_run_any(&matmul->core, src, 1, dst, error, error_size);
}

void chisel_matmul_destroy(chisel_matmul *matmul) {
    if (!matmul) return;
    core_destroy(&matmul->core);
    free(matmul);
}

int chisel_bf16_supported(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
}
