#define _GNU_SOURCE
#include "chisel_kernels.h"
#include "simd_math.h"

#include <oneapi/dnnl/dnnl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/// Working memory for one run (scratchpads, staged activations), reused from run to run: a
/// fresh allocation of tens of megabytes costs its page faults on every run, which for a
/// Winograd convolution took longer than its arithmetic. A few buffers are kept, each grown to
/// the largest size asked of it up to WORK_KEPT_BYTES; larger requests, and requests while every
/// kept buffer is in use by another thread, get a fresh allocation that is freed after the run.
#define WORK_SLOTS 3
#define WORK_KEPT_BYTES ((size_t)160 << 20)

typedef struct {
    void *data;
    size_t size;
    atomic_flag busy;
} work_slot;

static work_slot work_slots[WORK_SLOTS] = {{NULL, 0, ATOMIC_FLAG_INIT}, {NULL, 0, ATOMIC_FLAG_INIT},
                                           {NULL, 0, ATOMIC_FLAG_INIT}};

typedef struct {
    void *data;
    int slot;
} work_buffer;

static work_buffer work_acquire(size_t size) {
    size = (size + 63) / 64 * 64;
    if (size <= WORK_KEPT_BYTES) {
        for (int i = 0; i < WORK_SLOTS; i++) {
            if (atomic_flag_test_and_set(&work_slots[i].busy)) continue;
            if (work_slots[i].size < size) {
                free(work_slots[i].data);
                work_slots[i].data = aligned_alloc(64, size);
                work_slots[i].size = work_slots[i].data ? size : 0;
            }
            if (work_slots[i].data) return (work_buffer){work_slots[i].data, i};
            atomic_flag_clear(&work_slots[i].busy);
            break;
        }
    }
    return (work_buffer){aligned_alloc(64, size), -1};
}

static void work_release(work_buffer *buffer) {
    if (buffer->slot >= 0) atomic_flag_clear(&work_slots[buffer->slot].busy);
    else free(buffer->data);
    buffer->data = NULL;
    buffer->slot = -1;
}

void chisel_release_work_buffers(void) {
    for (int i = 0; i < WORK_SLOTS; i++) {
        if (atomic_flag_test_and_set(&work_slots[i].busy)) continue;
        free(work_slots[i].data);
        work_slots[i].data = NULL;
        work_slots[i].size = 0;
        atomic_flag_clear(&work_slots[i].busy);
    }
}

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

/// Runs a staged reorder from `from` (in its user layout) into `to` (in its kernel layout).
static dnnl_status_t reorder_run(staged_input *staged, dnnl_stream_t stream, const void *from_data, void *to_data) {
    dnnl_memory_t from = NULL, to = NULL;
    dnnl_status_t s = dnnl_memory_create(&from, &staged->user_md, get_engine(), (void *)from_data);
    if (s == dnnl_success) s = dnnl_memory_create(&to, &staged->kernel_md, get_engine(), to_data);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        s = dnnl_primitive_execute(staged->reorder, stream, 2, args);
        if (s == dnnl_success) s = dnnl_stream_wait(stream);
    }
    if (from) dnnl_memory_destroy(from);
    if (to) dnnl_memory_destroy(to);
    return s;
}

/// Sets `kernel_data` to the buffer the kernel reads: `data` itself, or a reordered copy in
/// `*owned`, which the caller releases after the run.
static dnnl_status_t stage_run(staged_input *staged, dnnl_stream_t stream, const void *data, void **kernel_data,
                               work_buffer *owned) {
    if (!staged->needs_reorder) {
        *kernel_data = (void *)data;
        return dnnl_success;
    }
    *owned = work_acquire(dnnl_memory_desc_get_size(&staged->kernel_md));
    if (!owned->data) return dnnl_out_of_memory;
    *kernel_data = owned->data;
    return reorder_run(staged, stream, data, owned->data);
}

static void stage_destroy(staged_input *staged) {
    if (staged->reorder) dnnl_primitive_destroy(staged->reorder);
}

/// Reorders weights once into the kernel's layout; the result is owned by the caller.
static dnnl_status_t reorder_direct(const dnnl_memory_desc_t *user, const void *data, const dnnl_memory_desc_t *kernel,
                                    void **out) {
    size_t size = dnnl_memory_desc_get_size(kernel);
    *out = aligned_alloc(64, (size + 63) / 64 * 64);
    if (!*out) return dnnl_out_of_memory;
    staged_input staged;
    dnnl_status_t s = stage_create(&staged, user, kernel);
    if (s != dnnl_success) { stage_destroy(&staged); free(*out); *out = NULL; return s; }
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
    if (s != dnnl_success) { free(*out); *out = NULL; }
    return s;
}

/// Reorders weights into the kernel's layout, through the plain OIHW float layout when oneDNN
/// has no direct reorder between the two (Winograd weights are made only from plain float ones,
/// also for a bf16 layer's bfloat16 weights).
static dnnl_status_t reorder_once(const dnnl_memory_desc_t *user, const void *data, const dnnl_memory_desc_t *kernel,
                                  void **out) {
    *out = NULL;
    dnnl_status_t s = reorder_direct(user, data, kernel, out);
    if (s == dnnl_success || user->ndims != 4) return s;
    dnnl_memory_desc_t plain;
    s = dnnl_memory_desc_init_by_tag(&plain, 4, user->dims, dnnl_f32, dnnl_oihw);
    if (s != dnnl_success) return s;
    void *middle = NULL;
    s = reorder_direct(user, data, &plain, &middle);
    if (s == dnnl_success) s = reorder_direct(&plain, middle, kernel, out);
    free(middle);
    return s;
}

/// The kernel's attributes: a user scratchpad; with `accumulate` the destination's values are
/// added (a sum post-op), then with `relu` the result is clamped at 0 (an eltwise post-op).
static dnnl_status_t make_attr(dnnl_primitive_attr_t *attr, int accumulate, int relu) {
    dnnl_status_t s = dnnl_primitive_attr_create(attr);
    if (s != dnnl_success) return s;
    s = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (s != dnnl_success || (!accumulate && !relu)) return s;
    dnnl_post_ops_t ops;
    s = dnnl_post_ops_create(&ops);
    if (s != dnnl_success) return s;
    if (accumulate) s = dnnl_post_ops_append_sum(ops, 1.0f);
    if (s == dnnl_success && relu) s = dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
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

/// What a convolution and a matmul share: the primitive, its staged source and destination,
/// weights and bias. When the kernel's destination layout is not the user's (Winograd works
/// on blocked layouts), `dst_out` reorders each result back and `dst_in` brings in what an
/// accumulating kernel adds to. Transient weights are kept in `source_weights_md`'s layout
/// and reordered into `weights_md` for each run, then dropped.
typedef struct {
    dnnl_primitive_t primitive;
    dnnl_memory_desc_t src_md, weights_md, bias_md, dst_md, scratch_md, source_weights_md;
    staged_input src, dst_in, dst_out;
    shared_buffer *weights;
    shared_buffer *bias;
    int has_bias, transient_weights;
    /// A bf16 kernel on a CPU where oneDNN has none (before AVX-512): the primitive is a float
    /// one on bfloat16-rounded weights, and each run rounds a float source to bfloat16 values
    /// (or widens a bfloat16 one) and narrows the result where the destination is bfloat16, so
    /// it computes what a bf16 kernel does (products of bfloat16 values summed in FP32) at FP32
    /// speed; its source is bfloat16 to the caller, its destination where `half_dst` says.
    int emulated, half_dst;
} kernel_core;

/// What an emulated bf16 run converts: a float source to bfloat16 values, a bfloat16 source to
/// floats, or a float result to bfloat16.
enum { ROUND_FLOATS, WIDEN_HALVES, NARROW_FLOATS };

typedef struct {
    const void *from;
    void *to;
    int kind;
} conversion;

static void convert_range(void *context, int64_t begin, int64_t end) {
    const conversion *job = context;
    if (job->kind == ROUND_FLOATS) {
        const float *from = job->from;
        float *to = job->to;
        for (int64_t i = begin; i < end; i++) to[i] = chisel_bf16_value(chisel_bf16_bits(from[i]));
    } else if (job->kind == WIDEN_HALVES) {
        const uint16_t *from = job->from;
        float *to = job->to;
        for (int64_t i = begin; i < end; i++) to[i] = chisel_bf16_value(from[i]);
    } else {
        const float *from = job->from;
        uint16_t *to = job->to;
        for (int64_t i = begin; i < end; i++) to[i] = chisel_bf16_bits(from[i]);
    }
}

/// Converts `count` values, on the kernels' threads when there are many.
static void convert(const void *from, void *to, size_t count, int kind) {
    conversion job = {from, to, kind};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t chunks = (int64_t)(count >> 16) + 1;
    if (chunks > cores) chunks = cores > 0 ? cores : 1;
    if (chunks < 2 || !chisel_parallel_chunks((int64_t)count, chunks, convert_range, &job))
        convert_range(&job, 0, (int64_t)count);
}

/// A copy of `count` floats rounded to bfloat16 values (kept as floats); NULL when out of memory.
static float *rounded_to_bf16(const float *values, size_t count) {
    float *out = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    if (out) convert(values, out, count, ROUND_FLOATS);
    return out;
}

/// Whether the caller's source, destination are bfloat16 for this kernel.
static int core_src_is_half(const kernel_core *core) {
    return core->emulated || core->src_md.data_type == dnnl_bf16;
}

static int core_dst_is_half(const kernel_core *core) {
    return core->emulated ? core->half_dst : core->dst_md.data_type == dnnl_bf16;
}

static void core_destroy(kernel_core *core) {
    if (core->primitive) dnnl_primitive_destroy(core->primitive);
    stage_destroy(&core->src);
    stage_destroy(&core->dst_in);
    stage_destroy(&core->dst_out);
    shared_release(core->weights);
    shared_release(core->bias);
}

/// Finishes a kernel from its primitive descriptor: staging, weights, bias. Weights come from
/// `donor` (another kernel of the same layer) when given, shared when the layout agrees and
/// reordered from the donor's copy otherwise; else from the caller's plain float array.
static dnnl_status_t core_finish(kernel_core *core, dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *user_src,
                                 const dnnl_memory_desc_t *user_dst, const dnnl_memory_desc_t *user_weights,
                                 const float *weights, const float *bias, int64_t bias_count, const kernel_core *donor,
                                 const kernel_core *sibling, int transient_weights, int accumulate) {
    dnnl_status_t s = dnnl_primitive_create(&core->primitive, pd);
    if (s != dnnl_success) return s;
    core->src_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    core->weights_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    core->dst_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    core->scratch_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    s = stage_create(&core->src, user_src, &core->src_md);
    if (s != dnnl_success) return s;
    if (user_dst && !dnnl_memory_desc_equal(user_dst, &core->dst_md)) {
        s = stage_create(&core->dst_out, &core->dst_md, user_dst);
        if (s == dnnl_success && accumulate) s = stage_create(&core->dst_in, user_dst, &core->dst_md);
        if (s != dnnl_success) return s;
    }
    if (sibling && dnnl_memory_desc_equal(&sibling->weights_md, &core->weights_md)) {
        // Another band of the same layer: the very same weights (or the same transient source).
        atomic_fetch_add(&sibling->weights->refs, 1);
        core->weights = sibling->weights;
        core->transient_weights = sibling->transient_weights;
        core->source_weights_md = sibling->source_weights_md;
    } else if (transient_weights && donor) {
        // Keep a reference to the donor's weights; each run reorders them into this kernel's layout.
        core->transient_weights = 1;
        core->source_weights_md = donor->weights_md;
        atomic_fetch_add(&donor->weights->refs, 1);
        core->weights = donor->weights;
    } else if (donor && dnnl_memory_desc_equal(&donor->weights_md, &core->weights_md)) {
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

/// The weights a run of `core` multiplies by: its own, or for transient weights a copy made in
/// its layout, which the caller frees (`*made`).
static dnnl_status_t core_weights(kernel_core *core, void **weights, void **made) {
    *made = NULL;
    *weights = core->weights->data;
    if (!core->transient_weights) return dnnl_success;
    dnnl_status_t s = reorder_once(&core->source_weights_md, core->weights->data, &core->weights_md, made);
    *weights = *made;
    return s;
}

/// Runs the kernel on `stream` with `weights`; `src` is in the user layout (float), or already
/// in the kernel's source layout and dtype when `direct`.
static int core_execute(kernel_core *core, dnnl_stream_t stream, const void *src, int direct, void *dst,
                        void *weights, char *error, size_t error_size) {
    dnnl_memory_t m_src = NULL, m_weights = NULL, m_bias = NULL, m_dst = NULL, m_scratch = NULL;
    work_buffer scratch = {NULL, -1}, staged_copy = {NULL, -1}, staged_dst = {NULL, -1};
    work_buffer emulated_src = {NULL, -1}, emulated_dst = {NULL, -1};
    void *kernel_src = NULL;
    void *caller_dst = dst;
    int result = 0;
    if (core->emulated) {
        // The float kernel gets the source as bfloat16 values, as a bf16 kernel would.
        size_t count = dnnl_memory_desc_get_size(&core->src_md) / sizeof(float);
        emulated_src = work_acquire(count * sizeof(float));
        if (!emulated_src.data) { result = fail(error, error_size, "source allocation", dnnl_out_of_memory); goto done; }
        convert(src, emulated_src.data, count, direct ? WIDEN_HALVES : ROUND_FLOATS);
        src = emulated_src.data;
        direct = 1;
        if (core->half_dst) {
            emulated_dst = work_acquire(dnnl_memory_desc_get_size(&core->dst_md));
            if (!emulated_dst.data) {
                result = fail(error, error_size, "destination allocation", dnnl_out_of_memory);
                goto done;
            }
            dst = emulated_dst.data;
        }
    }
    if (direct) kernel_src = (void *)src;
    else CHECK(stage_run(&core->src, stream, src, &kernel_src, &staged_copy), "source reorder");
    size_t scratch_size = dnnl_memory_desc_get_size(&core->scratch_md);
    if (scratch_size) {
        scratch = work_acquire(scratch_size);
        if (!scratch.data) { result = fail(error, error_size, "scratchpad allocation", dnnl_out_of_memory); goto done; }
    }
    void *kernel_dst = dst;
    if (core->dst_out.needs_reorder) {
        if (core->dst_in.needs_reorder) {
            CHECK(stage_run(&core->dst_in, stream, dst, &kernel_dst, &staged_dst), "destination reorder");
        } else {
            staged_dst = work_acquire(dnnl_memory_desc_get_size(&core->dst_md));
            if (!staged_dst.data) {
                result = fail(error, error_size, "destination allocation", dnnl_out_of_memory);
                goto done;
            }
            kernel_dst = staged_dst.data;
        }
    }
    CHECK(dnnl_memory_create(&m_src, &core->src_md, get_engine(), kernel_src), "memory");
    CHECK(dnnl_memory_create(&m_weights, &core->weights_md, get_engine(), weights), "memory");
    CHECK(dnnl_memory_create(&m_dst, &core->dst_md, get_engine(), kernel_dst), "memory");
    CHECK(dnnl_memory_create(&m_scratch, &core->scratch_md, get_engine(), scratch.data), "memory");
    dnnl_exec_arg_t args[5] = {
        {DNNL_ARG_SRC, m_src}, {DNNL_ARG_WEIGHTS, m_weights}, {DNNL_ARG_DST, m_dst}, {DNNL_ARG_SCRATCHPAD, m_scratch}};
    int count = 4;
    if (core->has_bias) {
        CHECK(dnnl_memory_create(&m_bias, &core->bias_md, get_engine(), core->bias->data), "memory");
        args[count++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, m_bias};
    }
    CHECK(dnnl_primitive_execute(core->primitive, stream, count, args), "execute");
    CHECK(dnnl_stream_wait(stream), "wait");
    if (core->dst_out.needs_reorder) {
        CHECK(reorder_run(&core->dst_out, stream, kernel_dst, dst), "destination reorder");
    }
    if (core->emulated && core->half_dst) {
        convert(dst, caller_dst, dnnl_memory_desc_get_size(&core->dst_md) / sizeof(float), NARROW_FLOATS);
    }
    goto done;
failed:
    result = -1;
done:
    if (m_src) dnnl_memory_destroy(m_src);
    if (m_weights) dnnl_memory_destroy(m_weights);
    if (m_bias) dnnl_memory_destroy(m_bias);
    if (m_dst) dnnl_memory_destroy(m_dst);
    if (m_scratch) dnnl_memory_destroy(m_scratch);
    work_release(&scratch);
    work_release(&staged_copy);
    work_release(&staged_dst);
    work_release(&emulated_src);
    work_release(&emulated_dst);
    return result;
}

/// Runs the kernel once, on its own stream.
static int core_run_any(kernel_core *core, const void *src, int direct, void *dst, char *error, size_t error_size) {
    dnnl_stream_t stream = NULL;
    void *weights = NULL, *made = NULL;
    int result = 0;
    CHECK(dnnl_stream_create(&stream, get_engine(), dnnl_stream_default_flags), "stream");
    CHECK(core_weights(core, &weights, &made), "weights reorder");
    result = core_execute(core, stream, src, direct, dst, weights, error, error_size);
    goto done;
failed:
    result = -1;
done:
    if (stream) dnnl_stream_destroy(stream);
    free(made);
    return result;
}

/// A convolution: one kernel for the whole input, or, for a banded Winograd convolution of one
/// large image, kernels for horizontal bands of `band_rows` output rows (the first band, the
/// middle ones, the last), so that Winograd's working memory, which grows with the input, stays
/// that of one band.
struct chisel_conv {
    kernel_core core;
    kernel_core middle, last;
    int64_t oh, ow, ih, iw, ic, oc, kh, pad_top;
    int64_t band_rows;
    int winograd;
};

/// A Winograd F(4×4, 3×3) (or F(2×2, 3×3)) primitive for a float 3×3 stride-1 convolution, on
/// the blocked layouts it needs; NULL (and no error) where oneDNN has none for this CPU or shape.
static dnnl_primitive_desc_t winograd_pd(const dnnl_dims_t src_dims, const dnnl_dims_t dst_dims,
                                         const dnnl_dims_t w_dims, const dnnl_memory_desc_t *bias, const dnnl_dims_t pad_l,
                                         const dnnl_dims_t pad_r, dnnl_primitive_attr_t attr) {
    dnnl_dims_t strides = {1, 1};
    dnnl_memory_desc_t src, dst, w;
    if (dnnl_memory_desc_init_by_tag(&src, 4, src_dims, dnnl_f32, dnnl_format_tag_any) != dnnl_success) return NULL;
    if (dnnl_memory_desc_init_by_tag(&dst, 4, dst_dims, dnnl_f32, dnnl_format_tag_any) != dnnl_success) return NULL;
    if (dnnl_memory_desc_init_by_tag(&w, 4, w_dims, dnnl_f32, dnnl_format_tag_any) != dnnl_success) return NULL;
    dnnl_convolution_desc_t desc;
    if (dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_winograd, &src, &w, bias,
                                           &dst, strides, pad_l, pad_r) != dnnl_success)
        return NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_desc_create(&pd, &desc, attr, get_engine(), NULL) != dnnl_success) return NULL;
    return pd;
}

typedef struct {
    int64_t n, ic, ih, iw, oc, kh, kw, stride, pad_top, pad_left, pad_bottom, pad_right;
    int bf16, accumulate, dst_bf16, winograd, relu;
    const float *weights, *bias;
    const kernel_core *donor, *sibling;
} conv_spec;

/// Builds one kernel. With `require_winograd`, fails (dnnl_unimplemented) unless it is Winograd.
static dnnl_status_t conv_core_create(kernel_core *core, const conv_spec *c, int require_winograd, int *winograd,
                                      char *error, size_t error_size) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t status = dnnl_success;
    float *rounded = NULL;
    int64_t oh = (c->ih + c->pad_top + c->pad_bottom - c->kh) / c->stride + 1;
    int64_t ow = (c->iw + c->pad_left + c->pad_right - c->kw) / c->stride + 1;
    dnnl_data_type_t compute = c->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_dims_t src_dims = {c->n, c->ic, c->ih, c->iw}, dst_dims = {c->n, c->oc, oh, ow};
    dnnl_dims_t w_dims = {c->oc, c->ic, c->kh, c->kw}, b_dims = {c->oc};
    dnnl_dims_t strides = {c->stride, c->stride}, pad_l = {c->pad_top, c->pad_left}, pad_r = {c->pad_bottom, c->pad_right};
    int has_bias = c->bias || (c->donor && c->donor->has_bias);
    dnnl_memory_desc_t user_src, src, dst, user_w, w_any, b;
    *winograd = 0;
    CHECK(dnnl_memory_desc_init_by_tag(&user_src, 4, src_dims, dnnl_f32, dnnl_nhwc), "source descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&src, 4, src_dims, compute, dnnl_nhwc), "source descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&dst, 4, dst_dims,
                                       (c->bf16 && c->dst_bf16 && !c->accumulate) ? dnnl_bf16 : dnnl_f32, dnnl_nhwc),
          "destination descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&user_w, 4, w_dims, dnnl_f32, dnnl_oihw), "weights descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, w_dims, compute, dnnl_format_tag_any), "weights descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&b, 1, b_dims, dnnl_f32, dnnl_a), "bias descriptor");
    CHECK(make_attr(&attr, c->accumulate, c->relu), "attributes");
    // Winograd is float only: a bf16 layer's Winograd kernel multiplies its bfloat16-rounded
    // weights in FP32, on float input and output.
    if (c->winograd && c->donor && !c->relu && !(c->bf16 && c->dst_bf16) && c->kh == 3 && c->kw == 3 && c->stride == 1)
        pd = winograd_pd(src_dims, dst_dims, w_dims, has_bias ? &b : NULL, pad_l, pad_r, attr);
    *winograd = pd != NULL;
    if (!pd && require_winograd) { status = dnnl_unimplemented; goto done; }
    int emulated = 0;
    if (!pd) {
        dnnl_convolution_desc_t desc;
        CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct, &src, &w_any,
                                                 has_bias ? &b : NULL, &dst, strides, pad_l, pad_r),
              "convolution descriptor");
        dnnl_status_t made = dnnl_primitive_desc_create(&pd, &desc, attr, get_engine(), NULL);
        if (made == dnnl_unimplemented && c->bf16) {
            // No bf16 convolution on this CPU: a float one that emulates it (kernel_core.emulated).
            pd = NULL;
            emulated = 1;
            CHECK(dnnl_memory_desc_init_by_tag(&dst, 4, dst_dims, dnnl_f32, dnnl_nhwc), "destination descriptor");
            CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, w_dims, dnnl_f32, dnnl_format_tag_any), "weights descriptor");
            CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct, &user_src,
                                                     &w_any, has_bias ? &b : NULL, &dst, strides, pad_l, pad_r),
                  "convolution descriptor");
            made = dnnl_primitive_desc_create(&pd, &desc, attr, get_engine(), NULL);
        }
        CHECK(made, "convolution primitive");
    }
    if (emulated && !c->donor) {
        rounded = rounded_to_bf16(c->weights, (size_t)(c->oc * c->ic * c->kh * c->kw));
        if (!rounded) { fail(error, error_size, "weights allocation", dnnl_out_of_memory); goto failed; }
    }
    CHECK(core_finish(core, pd, &user_src, &dst, &user_w, rounded ? rounded : c->weights, c->bias,
                      c->oc, c->donor, c->sibling, *winograd && c->winograd == 2, c->accumulate),
          "convolution setup");
    core->emulated = emulated;
    core->half_dst = c->bf16 && c->dst_bf16 && !c->accumulate;
    goto done;
failed:
    status = dnnl_runtime_error;
done:
    free(rounded);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return status;
}

/// The band of output rows [r0, r1): its input rows and the padding it needs above and below.
static void band_rows(const chisel_conv *conv, int64_t r0, int64_t r1, int64_t *in0, int64_t *rows, int64_t *top,
                      int64_t *bottom) {
    int64_t first = r0 - conv->pad_top, end = r1 - 1 + conv->kh - conv->pad_top;
    *in0 = first < 0 ? 0 : first;
    *top = first < 0 ? -first : 0;
    int64_t limit = end > conv->ih ? conv->ih : end;
    *bottom = end > conv->ih ? end - conv->ih : 0;
    *rows = limit - *in0;
}

chisel_conv *chisel_conv_create(int64_t n, int64_t ic, int64_t ih, int64_t iw, int64_t oc, int64_t kh, int64_t kw,
                                int64_t stride, int64_t pad_top, int64_t pad_left, int64_t pad_bottom,
                                int64_t pad_right, int bf16, int accumulate, int dst_bf16, int winograd, int relu,
                                int64_t band_rows_wanted, const float *weights, const float *bias,
                                const chisel_conv *donor, char *error, size_t error_size) {
    chisel_conv *conv = calloc(1, sizeof(chisel_conv));
    if (!conv) return NULL;
    if (!get_engine()) { fail(error, error_size, "engine creation", engine_status); goto failed; }
    conv->oh = (ih + pad_top + pad_bottom - kh) / stride + 1;
    conv->ow = (iw + pad_left + pad_right - kw) / stride + 1;
    conv->ih = ih; conv->iw = iw; conv->ic = ic; conv->oc = oc; conv->kh = kh; conv->pad_top = pad_top;
    conv_spec spec = {n, ic, ih, iw, oc, kh, kw, stride, pad_top, pad_left, pad_bottom, pad_right, bf16, accumulate,
                      dst_bf16, winograd, relu, weights, bias, donor ? &donor->core : NULL, NULL};
    if (winograd && !relu && n == 1 && stride == 1 && band_rows_wanted > 0 && conv->oh > band_rows_wanted) {
        // Bands: the first, the middle ones (absent with two bands) and the last, sharing weights.
        int64_t r = band_rows_wanted, last0 = (conv->oh - 1) / r * r;
        int ok = 1, is_wino = 0;
        int64_t in0, rows, top, bottom;
        kernel_core *cores[3] = {&conv->core, last0 > r ? &conv->middle : NULL, &conv->last};
        int64_t starts[3] = {0, r, last0}, ends[3] = {r, 2 * r, conv->oh};
        for (int k = 0; k < 3 && ok; k++) {
            if (!cores[k]) continue;
            band_rows(conv, starts[k], ends[k], &in0, &rows, &top, &bottom);
            conv_spec band = spec;
            band.ih = rows; band.pad_top = top; band.pad_bottom = bottom;
            band.sibling = k ? &conv->core : NULL;
            ok = conv_core_create(cores[k], &band, 1, &is_wino, error, error_size) == dnnl_success;
        }
        if (ok) {
            conv->band_rows = r;
            conv->winograd = 1;
            return conv;
        }
        core_destroy(&conv->core);
        core_destroy(&conv->middle);
        core_destroy(&conv->last);
        memset(&conv->core, 0, sizeof(kernel_core));
        memset(&conv->middle, 0, sizeof(kernel_core));
        memset(&conv->last, 0, sizeof(kernel_core));
        if (error && error_size) error[0] = 0;
    }
    if (conv_core_create(&conv->core, &spec, 0, &conv->winograd, error, error_size) != dnnl_success) goto failed;
    return conv;
failed:
    core_destroy(&conv->core);
    free(conv);
    return NULL;
}

static int core_run(kernel_core *core, const float *src, float *dst, char *error, size_t error_size) {
    return core_run_any(core, src, 0, dst, error, error_size);
}

/// Runs a banded convolution band by band; transient weights are made once per run.
static int conv_run_bands(chisel_conv *conv, const float *src, float *dst, char *error, size_t error_size) {
    dnnl_stream_t stream = NULL;
    void *weights = NULL, *made = NULL;
    int result = 0;
    CHECK(dnnl_stream_create(&stream, get_engine(), dnnl_stream_default_flags), "stream");
    CHECK(core_weights(&conv->core, &weights, &made), "weights reorder");
    for (int64_t r0 = 0; r0 < conv->oh && result == 0; r0 += conv->band_rows) {
        int64_t r1 = r0 + conv->band_rows < conv->oh ? r0 + conv->band_rows : conv->oh;
        kernel_core *core = r0 == 0 ? &conv->core : (r1 == conv->oh ? &conv->last : &conv->middle);
        int64_t in0, rows, top, bottom;
        band_rows(conv, r0, r1, &in0, &rows, &top, &bottom);
        void *band_weights = weights, *band_made = NULL;
        if (core->weights != conv->core.weights || !dnnl_memory_desc_equal(&core->weights_md, &conv->core.weights_md))
            CHECK(core_weights(core, &band_weights, &band_made), "weights reorder");
        result = core_execute(core, stream, src + in0 * conv->iw * conv->ic, 0, dst + r0 * conv->ow * conv->oc,
                              band_weights, error, error_size);
        free(band_made);
    }
    goto done;
failed:
    result = -1;
done:
    if (stream) dnnl_stream_destroy(stream);
    free(made);
    return result;
}

int chisel_conv_run(chisel_conv *conv, const float *src, float *dst, char *error, size_t error_size) {
    if (conv->band_rows) return conv_run_bands(conv, src, dst, error, error_size);
    return core_run(&conv->core, src, dst, error, error_size);
}

int chisel_conv_run_half(chisel_conv *conv, const uint16_t *src, uint16_t *dst, char *error, size_t error_size) {
    if (!core_src_is_half(&conv->core) || !core_dst_is_half(&conv->core)) {
        if (error && error_size) snprintf(error, error_size, "bfloat16 output from a convolution built for float");
        return -1;
    }
    return core_run_any(&conv->core, src, 1, dst, error, error_size);
}

int chisel_conv_run_to_half(chisel_conv *conv, const float *src, uint16_t *dst, char *error, size_t error_size) {
    if (conv->band_rows || !core_dst_is_half(&conv->core)) {
        if (error && error_size) snprintf(error, error_size, "bfloat16 output from a convolution built for float");
        return -1;
    }
    return core_run_any(&conv->core, src, 0, dst, error, error_size);
}

int chisel_conv_run_bf16(chisel_conv *conv, const uint16_t *src, float *dst, char *error, size_t error_size) {
    if (!core_src_is_half(&conv->core)) {
        if (error && error_size) snprintf(error, error_size, "bfloat16 input to a convolution built for float");
        return -1;
    }
    return core_run_any(&conv->core, src, 1, dst, error, error_size);
}

int chisel_conv_is_winograd(const chisel_conv *conv) { return conv->winograd; }

void chisel_conv_output_size(const chisel_conv *conv, int64_t *oh, int64_t *ow) {
    *oh = conv->oh;
    *ow = conv->ow;
}

void chisel_conv_destroy(chisel_conv *conv) {
    if (!conv) return;
    core_destroy(&conv->core);
    core_destroy(&conv->middle);
    core_destroy(&conv->last);
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
    float *rounded = NULL;
    int emulated = 0;
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
    const dnnl_memory_desc_t *with_bias = (bias || (donor && donor->core.has_bias)) ? &b : NULL;
    CHECK(dnnl_matmul_desc_init(&desc, &src, &w_any, with_bias, &dst), "matmul descriptor");
    CHECK(make_attr(&attr, accumulate, 0), "attributes");
    dnnl_status_t made = dnnl_primitive_desc_create(&pd, &desc, attr, get_engine(), NULL);
    if (made == dnnl_unimplemented && bf16) {
        // No bf16 matmul on this CPU: a float one that emulates it (kernel_core.emulated).
        pd = NULL;
        emulated = 1;
        CHECK(dnnl_memory_desc_init_by_tag(&w_any, 2, w_dims, dnnl_f32, dnnl_format_tag_any), "weights descriptor");
        CHECK(dnnl_matmul_desc_init(&desc, &user_src, &w_any, with_bias, &dst), "matmul descriptor");
        made = dnnl_primitive_desc_create(&pd, &desc, attr, get_engine(), NULL);
    }
    CHECK(made, "matmul primitive");
    if (emulated && !donor) {
        rounded = rounded_to_bf16(weights, (size_t)(k * n));
        if (!rounded) { fail(error, error_size, "weights allocation", dnnl_out_of_memory); goto failed; }
    }
    CHECK(core_finish(&matmul->core, pd, &user_src, NULL, &user_w, rounded ? rounded : weights, bias, n,
                      donor ? &donor->core : NULL, NULL, 0, 0),
          "matmul setup");
    matmul->core.emulated = emulated;
    free(rounded);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return matmul;
failed:
    free(rounded);
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
    if (!core_src_is_half(&matmul->core)) {
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

int chisel_winograd_supported(void) {
    // oneDNN's ISA values are bit sets, each including the ones it extends.
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core;
}

static int bf16_emulated = 0;
static pthread_once_t bf16_once = PTHREAD_ONCE_INIT;

static void probe_bf16(void) {
    dnnl_dims_t dims = {16, 16};
    dnnl_memory_desc_t a, w, out;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    if (!get_engine() || dnnl_memory_desc_init_by_tag(&a, 2, dims, dnnl_bf16, dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&w, 2, dims, dnnl_bf16, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&out, 2, dims, dnnl_f32, dnnl_ab) != dnnl_success ||
        dnnl_matmul_desc_init(&desc, &a, &w, NULL, &out) != dnnl_success)
        return;
    bf16_emulated = dnnl_primitive_desc_create(&pd, &desc, NULL, get_engine(), NULL) == dnnl_unimplemented;
    if (pd) dnnl_primitive_desc_destroy(pd);
}

int chisel_bf16_emulated(void) {
    pthread_once(&bf16_once, probe_bf16);
    return bf16_emulated;
}

int chisel_bf16_supported(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
}

// Parallel loops on oneDNN's own OpenMP threads. oneDNN's threads spin for a while after each of
// its calls, waiting for the next; work spread over other threads (Dispatch's) in that time
// competes with them for the cores. Running this target's kernels on the same team keeps one
// thread per core busy. The runtime is the GNU one Debian's oneDNN is built with, found by name
// in the loaded process, so nothing is linked for it.
typedef void (*gomp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);
typedef int (*omp_int_fn)(void);

static gomp_parallel_fn gomp_parallel;
static omp_int_fn omp_thread_num, omp_num_threads, omp_max_threads;
static pthread_once_t omp_once = PTHREAD_ONCE_INIT;

static void find_omp(void) {
    gomp_parallel = (gomp_parallel_fn)dlsym(RTLD_DEFAULT, "GOMP_parallel");
    omp_thread_num = (omp_int_fn)dlsym(RTLD_DEFAULT, "omp_get_thread_num");
    omp_num_threads = (omp_int_fn)dlsym(RTLD_DEFAULT, "omp_get_num_threads");
    omp_max_threads = (omp_int_fn)dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    if (!omp_thread_num || !omp_num_threads) gomp_parallel = NULL;
}

typedef struct {
    chisel_chunk_body body;
    void *context;
    int64_t count, chunks;
} chunk_job;

static void chunk_entry(void *data) {
    const chunk_job *job = data;
    int64_t threads = omp_num_threads();
    for (int64_t i = omp_thread_num(); i < job->chunks; i += threads)
        job->body(job->context, job->count * i / job->chunks, job->count * (i + 1) / job->chunks);
}

int chisel_parallel_chunks(int64_t count, int64_t chunks, chisel_chunk_body body, void *context) {
    pthread_once(&omp_once, find_omp);
    if (!gomp_parallel || chunks < 1) return 0;
    chunk_job job = {body, context, count, chunks};
    gomp_parallel(chunk_entry, &job, (unsigned)chunks, 0);
    return 1;
}

int chisel_openmp_max_threads(void) {
    pthread_once(&omp_once, find_omp);
    return omp_max_threads ? omp_max_threads() : 0;
}

int chisel_affinity_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}
