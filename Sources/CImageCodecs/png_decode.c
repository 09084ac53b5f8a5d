// PNG decoding from memory with libpng, errors caught with setjmp.
#include "codecs_internal.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

// Everything that changes after setjmp lives here, outside the frame that calls setjmp,
// so that its values are well defined after a longjmp.
typedef struct png_decode_ctx {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size;
    size_t offset;
    uint64_t max_pixels;
    cic_image *out;
    png_bytep *rows;
    uint8_t *samples;
    cic_status status;
} png_decode_ctx;

static void png_decode_on_error(png_structp png, png_const_charp text) {
    png_decode_ctx *ctx = png_get_error_ptr(png);
    if (ctx->status == CIC_OK) ctx->status = CIC_INVALID;
    // The first message is the cause; libpng may add its own after ours.
    if (ctx->out->message[0] == '\0') cic_set_message(ctx->out->message, "%s", text);
    png_longjmp(png, 1);
}

static void png_decode_on_warning(png_structp png, png_const_charp text) {
    png_decode_ctx *ctx = png_get_error_ptr(png);
    if (ctx->out->warning_count == 0) cic_set_message(ctx->out->warning, "%s", text);
    ctx->out->warning_count++;
}

static void png_decode_read(png_structp png, png_bytep destination, size_t length) {
    png_decode_ctx *ctx = png_get_io_ptr(png);
    if (length > ctx->size - ctx->offset) {
        ctx->status = CIC_TRUNCATED;
        cic_set_message(ctx->out->message, "the data ends after %zu bytes", ctx->size);
        png_error(png, "truncated");
    }
    memcpy(destination, ctx->data + ctx->offset, length);
    ctx->offset += length;
}

static void png_decode_fail(png_decode_ctx *ctx, cic_status status, const char *text) {
    ctx->status = status;
    cic_set_message(ctx->out->message, "%s", text);
    png_longjmp(ctx->png, 1);
}

// Copies the text chunks libpng has collected so far into the output.
static void png_decode_copy_texts(png_decode_ctx *ctx) {
    png_textp texts = NULL;
    int count = 0;
    png_get_text(ctx->png, ctx->info, &texts, &count);
    if (count <= 0 || texts == NULL) return;
    ctx->out->texts = calloc((size_t)count, sizeof(cic_text));
    if (ctx->out->texts == NULL) png_decode_fail(ctx, CIC_NO_MEMORY, "out of memory for text chunks");
    for (int i = 0; i < count; i++) {
        png_textp source = &texts[i];
        int utf8 = source->compression == PNG_ITXT_COMPRESSION_NONE ||
                   source->compression == PNG_ITXT_COMPRESSION_zTXt;
        const char *key = source->key != NULL ? source->key : "";
        const char *value = source->text != NULL ? source->text : "";
        size_t key_length = strlen(key);
        size_t value_length = utf8 ? source->itxt_length : source->text_length;
        if (value_length == 0) value_length = strlen(value);
        cic_text *target = &ctx->out->texts[i];
        ctx->out->text_count = (size_t)i + 1;
        target->key = malloc(key_length + 1);
        target->value = malloc(value_length + 1);
        if (target->key == NULL || target->value == NULL)
            png_decode_fail(ctx, CIC_NO_MEMORY, "out of memory for text chunks");
        memcpy(target->key, key, key_length + 1);
        memcpy(target->value, value, value_length);
        target->value[value_length] = '\0';
        target->key_length = key_length;
        target->value_length = value_length;
        target->is_utf8 = utf8;
    }
}

static cic_status png_decode_run(png_decode_ctx *ctx) {
    if (setjmp(png_jmpbuf(ctx->png))) {
        return ctx->status == CIC_OK ? CIC_INVALID : ctx->status;
    }
    png_structp png = ctx->png;
    png_infop info = ctx->info;
    cic_image *out = ctx->out;

    png_set_read_fn(png, ctx, png_decode_read);
    // Let every valid size reach our own pixel-limit check, which gives the clearer message.
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);

    png_uint_32 width = png_get_image_width(png, info);
    png_uint_32 height = png_get_image_height(png, info);
    int color_type = png_get_color_type(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    out->width = width;
    out->height = height;
    if ((uint64_t)width * (uint64_t)height > ctx->max_pixels) {
        png_decode_fail(ctx, CIC_TOO_LARGE, "image above the pixel limit");
    }
    // Worst case after expansion is 4 channels of 2 bytes; check before libpng sizes its row buffers.
    size_t worst_case = 0;
    if (!cic_sample_bytes(width, height, 4, 2, &worst_case)) {
        png_decode_fail(ctx, CIC_TOO_LARGE, "image size overflows memory sizes");
    }

    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (bit_depth == 16) png_set_swap(png);
#endif
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int out_depth = png_get_bit_depth(png, info);
    if (channels < 1 || channels > 4 || (out_depth != 8 && out_depth != 16)) {
        png_decode_fail(ctx, CIC_UNSUPPORTED, "unexpected sample layout after expansion");
    }
    size_t total = 0;
    if (!cic_sample_bytes(width, height, channels, out_depth / 8, &total)) {
        png_decode_fail(ctx, CIC_TOO_LARGE, "image size overflows memory sizes");
    }
    size_t stride = (size_t)width * (size_t)channels * (size_t)(out_depth / 8);
    if (png_get_rowbytes(png, info) != stride) {
        png_decode_fail(ctx, CIC_INVALID, "unexpected row size after expansion");
    }
    out->channels = channels;
    out->bit_depth = out_depth;

    ctx->samples = malloc(total);
    ctx->rows = malloc((size_t)height * sizeof(png_bytep));
    if (ctx->samples == NULL || ctx->rows == NULL) {
        png_decode_fail(ctx, CIC_NO_MEMORY, "out of memory for the pixels");
    }
    for (png_uint_32 y = 0; y < height; y++) ctx->rows[y] = ctx->samples + (size_t)y * stride;
    png_read_image(png, ctx->rows);
    // Text chunks may also follow the image data.
    png_read_end(png, info);

    png_decode_copy_texts(ctx);
#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 exif_length = 0;
    png_bytep exif = NULL;
    if (png_get_eXIf_1(png, info, &exif_length, &exif) != 0 && exif != NULL && exif_length > 0) {
        out->exif = malloc(exif_length);
        if (out->exif == NULL) png_decode_fail(ctx, CIC_NO_MEMORY, "out of memory for EXIF data");
        memcpy(out->exif, exif, exif_length);
        out->exif_length = exif_length;
    }
#endif
    out->samples = ctx->samples;
    ctx->samples = NULL;
    return CIC_OK;
}

cic_status cic_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cic_image *out) {
    if (out == NULL) return CIC_BAD_ARGUMENT;
    memset(out, 0, sizeof(*out));
    if (data == NULL || size == 0) {
        cic_set_message(out->message, "the data is empty");
        return CIC_TRUNCATED;
    }
    png_decode_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.data = data;
    ctx.size = size;
    ctx.max_pixels = max_pixels;
    ctx.out = out;
    ctx.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_decode_on_error, png_decode_on_warning);
    if (ctx.png != NULL) ctx.info = png_create_info_struct(ctx.png);
    cic_status status;
    if (ctx.png == NULL || ctx.info == NULL) {
        cic_set_message(out->message, "cannot create libpng structures");
        status = CIC_NO_MEMORY;
    } else {
        status = png_decode_run(&ctx);
    }
    png_destroy_read_struct(ctx.png != NULL ? &ctx.png : NULL, ctx.info != NULL ? &ctx.info : NULL, NULL);
    free(ctx.rows);
    free(ctx.samples);
    if (status != CIC_OK) cic_image_free(out);
    return status;
}
