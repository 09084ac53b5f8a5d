// PNG encoding to memory with libpng, errors caught with setjmp.
#include "codecs_internal.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

// Everything that changes after setjmp lives here, outside the frame that calls setjmp.
typedef struct png_encode_ctx {
    png_structp png;
    png_infop info;
    cic_buffer buffer;
    png_bytep *rows;
    png_textp texts;
    char *message;
    cic_status status;
} png_encode_ctx;

static void png_encode_on_error(png_structp png, png_const_charp text) {
    png_encode_ctx *ctx = png_get_error_ptr(png);
    if (ctx->status == CIC_OK) {
        ctx->status = CIC_INVALID;
        cic_set_message(ctx->message, "%s", text);
    }
    png_longjmp(png, 1);
}

static void png_encode_on_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void png_encode_write(png_structp png, png_bytep bytes, size_t length) {
    png_encode_ctx *ctx = png_get_io_ptr(png);
    if (!cic_buffer_append(&ctx->buffer, bytes, length)) {
        ctx->status = CIC_NO_MEMORY;
        cic_set_message(ctx->message, "out of memory for the encoded PNG");
        png_error(png, "out of memory");
    }
}

static void png_encode_flush(png_structp png) { (void)png; }

static cic_status png_encode_run(png_encode_ctx *ctx, const void *samples, uint32_t width, uint32_t height,
                                 int channels, int bit_depth, const cic_text_in *texts, size_t text_count,
                                 int compression_level) {
    if (setjmp(png_jmpbuf(ctx->png))) {
        return ctx->status == CIC_OK ? CIC_INVALID : ctx->status;
    }
    png_structp png = ctx->png;
    png_infop info = ctx->info;
    static const int color_types[4] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                       PNG_COLOR_TYPE_RGB_ALPHA};
    png_set_write_fn(png, ctx, png_encode_write, png_encode_flush);
    png_set_IHDR(png, info, width, height, bit_depth, color_types[channels - 1], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (compression_level >= 0 && compression_level <= 9) png_set_compression_level(png, compression_level);
    if (text_count > 0) {
        if (text_count > (size_t)INT32_MAX) png_error(png, "too many text entries");
        ctx->texts = calloc(text_count, sizeof(png_text));
        if (ctx->texts == NULL) {
            ctx->status = CIC_NO_MEMORY;
            png_error(png, "out of memory for text entries");
        }
        for (size_t i = 0; i < text_count; i++) {
            png_textp text = &ctx->texts[i];
            if (texts[i].is_utf8) {
                text->compression = texts[i].compress ? PNG_ITXT_COMPRESSION_zTXt : PNG_ITXT_COMPRESSION_NONE;
            } else {
                text->compression = texts[i].compress ? PNG_TEXT_COMPRESSION_zTXt : PNG_TEXT_COMPRESSION_NONE;
            }
            // libpng copies the strings; it does not write through these pointers.
            text->key = (png_charp)texts[i].key;
            text->text = (png_charp)texts[i].value;
            text->text_length = strlen(texts[i].value);
        }
        png_set_text(png, info, ctx->texts, (int)text_count);
    }
    png_write_info(png, info);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (bit_depth == 16) png_set_swap(png);
#endif
    size_t stride = (size_t)width * (size_t)channels * (size_t)(bit_depth / 8);
    ctx->rows = malloc((size_t)height * sizeof(png_bytep));
    if (ctx->rows == NULL) {
        ctx->status = CIC_NO_MEMORY;
        png_error(png, "out of memory for row pointers");
    }
    // libpng copies each row before transforming it, so the caller's samples stay untouched.
    for (uint32_t y = 0; y < height; y++) ctx->rows[y] = (png_bytep)samples + (size_t)y * stride;
    png_write_image(png, ctx->rows);
    png_write_end(png, NULL);
    return CIC_OK;
}

cic_status cic_png_encode(const void *samples, uint32_t width, uint32_t height, int channels, int bit_depth,
                          const cic_text_in *texts, size_t text_count, int compression_level, cic_buffer *out,
                          char *message) {
    if (out == NULL || message == NULL) return CIC_BAD_ARGUMENT;
    memset(out, 0, sizeof(*out));
    message[0] = '\0';
    size_t total = 0;
    if (samples == NULL || width == 0 || height == 0 || width > PNG_UINT_31_MAX || height > PNG_UINT_31_MAX ||
        channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16) ||
        (text_count > 0 && texts == NULL) ||
        !cic_sample_bytes(width, height, channels, bit_depth / 8, &total)) {
        cic_set_message(message, "invalid arguments for PNG encoding");
        return CIC_BAD_ARGUMENT;
    }
    png_encode_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.message = message;
    ctx.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_encode_on_error, png_encode_on_warning);
    if (ctx.png != NULL) ctx.info = png_create_info_struct(ctx.png);
    cic_status status;
    if (ctx.png == NULL || ctx.info == NULL) {
        cic_set_message(message, "cannot create libpng structures");
        status = CIC_NO_MEMORY;
    } else {
        status = png_encode_run(&ctx, samples, width, height, channels, bit_depth, texts, text_count,
                                compression_level);
    }
    png_destroy_write_struct(ctx.png != NULL ? &ctx.png : NULL, ctx.info != NULL ? &ctx.info : NULL);
    free(ctx.rows);
    free(ctx.texts);
    if (status == CIC_OK) {
        *out = ctx.buffer;
    } else {
        cic_buffer_free(&ctx.buffer);
    }
    return status;
}
