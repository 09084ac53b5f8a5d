// JPEG encoding to memory with libjpeg(-turbo), errors caught with setjmp.
#include "jpeg_errors.h"

#include <stdlib.h>
#include <string.h>

// Everything that changes after setjmp lives here, outside the frame that calls setjmp.
typedef struct jpeg_encode_ctx {
    struct jpeg_compress_struct cinfo;
    cic_jpeg_error error;
    int created;
    unsigned char *bytes;
    unsigned long byte_count;
    const uint8_t *samples;
    uint32_t width;
    uint32_t height;
    int channels;
    int quality;
    const uint8_t *app1;
    size_t app1_length;
} jpeg_encode_ctx;

static cic_status jpeg_encode_run(jpeg_encode_ctx *ctx) {
    j_compress_ptr cinfo = &ctx->cinfo;
    if (setjmp(ctx->error.jump)) {
        return ctx->error.status == CIC_OK ? CIC_INVALID : ctx->error.status;
    }
    jpeg_create_compress(cinfo);
    ctx->created = 1;
    // libjpeg mallocs and grows the buffer; ctx->bytes always points at the current one.
    jpeg_mem_dest(cinfo, &ctx->bytes, &ctx->byte_count);
    cinfo->image_width = ctx->width;
    cinfo->image_height = ctx->height;
    cinfo->input_components = ctx->channels;
    cinfo->in_color_space = ctx->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, ctx->quality, TRUE);
    cinfo->optimize_coding = TRUE;
    if (ctx->channels == 3 && ctx->quality >= 90) {
        // At high quality, chroma subsampling costs more visible quality than it saves bytes.
        cinfo->comp_info[0].h_samp_factor = 1;
        cinfo->comp_info[0].v_samp_factor = 1;
    }
    jpeg_start_compress(cinfo, TRUE);
    if (ctx->app1 != NULL && ctx->app1_length > 0) {
        jpeg_write_marker(cinfo, JPEG_APP0 + 1, ctx->app1, (unsigned int)ctx->app1_length);
    }
    size_t stride = (size_t)ctx->width * (size_t)ctx->channels;
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW row = (JSAMPROW)(ctx->samples + (size_t)cinfo->next_scanline * stride);
        jpeg_write_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_compress(cinfo);
    return CIC_OK;
}

cic_status cic_jpeg_encode(const uint8_t *samples, uint32_t width, uint32_t height, int channels,
                           int quality, const uint8_t *app1, size_t app1_length, cic_buffer *out, char *message) {
    if (out == NULL || message == NULL) return CIC_BAD_ARGUMENT;
    memset(out, 0, sizeof(*out));
    message[0] = '\0';
    if (samples == NULL || width == 0 || height == 0 || (channels != 1 && channels != 3) ||
        quality < 1 || quality > 100 || app1_length > 65533) {
        cic_set_message(message, "invalid arguments for JPEG encoding");
        return CIC_BAD_ARGUMENT;
    }
    jpeg_encode_ctx *ctx = calloc(1, sizeof(jpeg_encode_ctx));
    if (ctx == NULL) {
        cic_set_message(message, "out of memory");
        return CIC_NO_MEMORY;
    }
    ctx->samples = samples;
    ctx->width = width;
    ctx->height = height;
    ctx->channels = channels;
    ctx->quality = quality;
    ctx->app1 = app1;
    ctx->app1_length = app1_length;
    ctx->cinfo.err = cic_jpeg_error_init(&ctx->error, message, NULL, NULL);
    cic_status status = jpeg_encode_run(ctx);
    if (ctx->created) jpeg_destroy_compress(&ctx->cinfo);
    if (status == CIC_OK) {
        out->data = ctx->bytes;
        out->size = ctx->byte_count;
        out->capacity = ctx->byte_count;
    } else {
        free(ctx->bytes);
    }
    free(ctx);
    return status;
}
