// JPEG decoding from memory with libjpeg(-turbo), errors caught with setjmp.
#include "jpeg_errors.h"

#include <stdlib.h>
#include <string.h>

/// Progressive files with more scans than this are rejected: each scan re-walks the whole
/// coefficient buffer, so a tiny file with thousands of scans could keep a decoder busy for hours.
#define CIC_JPEG_MAX_SCANS 1000

// Everything that changes after setjmp lives here, outside the frame that calls setjmp.
typedef struct jpeg_decode_ctx {
    struct jpeg_decompress_struct cinfo;
    cic_jpeg_error error;
    struct jpeg_progress_mgr progress;
    int created;
    const uint8_t *data;
    size_t size;
    uint64_t max_pixels;
    cic_image *out;
    uint8_t *samples;
    uint8_t *cmyk_row;
} jpeg_decode_ctx;

static void jpeg_decode_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr decompress = (j_decompress_ptr)cinfo;
    if (decompress->input_scan_number > CIC_JPEG_MAX_SCANS) {
        cic_jpeg_fail(cinfo, CIC_INVALID, "progressive JPEG with more than 1000 scans");
    }
}

// Keeps the TIFF part of the first "Exif\0\0" APP1 segment.
static void jpeg_decode_copy_exif(jpeg_decode_ctx *ctx) {
    for (jpeg_saved_marker_ptr marker = ctx->cinfo.marker_list; marker != NULL; marker = marker->next) {
        if (marker->marker != JPEG_APP0 + 1 || marker->data == NULL || marker->data_length < 6) continue;
        if (memcmp(marker->data, "Exif\0", 5) != 0) continue;
        size_t length = marker->data_length - 6;
        if (length == 0) return;
        ctx->out->exif = malloc(length);
        if (ctx->out->exif == NULL) cic_jpeg_fail((j_common_ptr)&ctx->cinfo, CIC_NO_MEMORY, "out of memory for EXIF data");
        memcpy(ctx->out->exif, marker->data + 6, length);
        ctx->out->exif_length = length;
        return;
    }
}

// (a * b) / 255 rounded, for a and b in 0...255.
static inline uint8_t jpeg_decode_scale(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)((t + (t >> 8)) >> 8);
}

// CMYK to RGB without a colour profile, the way libjpeg-based viewers do it.
static void jpeg_decode_cmyk_row(const uint8_t *cmyk, uint8_t *rgb, uint32_t width, int adobe_inverted) {
    for (uint32_t x = 0; x < width; x++) {
        unsigned c = cmyk[4 * x], m = cmyk[4 * x + 1], y = cmyk[4 * x + 2], k = cmyk[4 * x + 3];
        // Adobe files store 255 - ink; plain CMYK stores ink. Either way white has no ink.
        if (!adobe_inverted) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
        rgb[3 * x] = jpeg_decode_scale(c, k);
        rgb[3 * x + 1] = jpeg_decode_scale(m, k);
        rgb[3 * x + 2] = jpeg_decode_scale(y, k);
    }
}

static cic_status jpeg_decode_run(jpeg_decode_ctx *ctx) {
    j_decompress_ptr cinfo = &ctx->cinfo;
    if (setjmp(ctx->error.jump)) {
        return ctx->error.status == CIC_OK ? CIC_INVALID : ctx->error.status;
    }
    cic_image *out = ctx->out;
    jpeg_create_decompress(cinfo);
    ctx->created = 1;
    ctx->progress.progress_monitor = jpeg_decode_progress;
    cinfo->progress = &ctx->progress;
    jpeg_mem_src(cinfo, ctx->data, (unsigned long)ctx->size);
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(cinfo, TRUE);

    out->width = cinfo->image_width;
    out->height = cinfo->image_height;
    if ((uint64_t)cinfo->image_width * (uint64_t)cinfo->image_height > ctx->max_pixels) {
        cic_jpeg_fail((j_common_ptr)cinfo, CIC_TOO_LARGE, "image above the pixel limit");
    }
    int cmyk = 0;
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo->out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        // libjpeg turns YCCK into CMYK; the CMYK to RGB step is ours.
        cinfo->out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        cinfo->out_color_space = JCS_RGB;
        break;
    }
    jpeg_decode_copy_exif(ctx);

    jpeg_start_decompress(cinfo);
    uint32_t width = cinfo->output_width, height = cinfo->output_height;
    int channels = cmyk ? 3 : cinfo->output_components;
    if ((cmyk && cinfo->output_components != 4) || (!cmyk && channels != 1 && channels != 3)) {
        cic_jpeg_fail((j_common_ptr)cinfo, CIC_UNSUPPORTED, "unexpected number of colour components");
    }
    size_t total = 0;
    if (!cic_sample_bytes(width, height, channels, 1, &total)) {
        cic_jpeg_fail((j_common_ptr)cinfo, CIC_TOO_LARGE, "image size overflows memory sizes");
    }
    ctx->samples = malloc(total);
    if (ctx->samples == NULL) cic_jpeg_fail((j_common_ptr)cinfo, CIC_NO_MEMORY, "out of memory for the pixels");
    if (cmyk) {
        ctx->cmyk_row = malloc((size_t)width * 4);
        if (ctx->cmyk_row == NULL) cic_jpeg_fail((j_common_ptr)cinfo, CIC_NO_MEMORY, "out of memory for a row");
    }
    size_t stride = (size_t)width * (size_t)channels;
    while (cinfo->output_scanline < height) {
        uint8_t *target = ctx->samples + (size_t)cinfo->output_scanline * stride;
        JSAMPROW row = cmyk ? ctx->cmyk_row : target;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
            cic_jpeg_fail((j_common_ptr)cinfo, CIC_TRUNCATED, "the decoder stopped before the last row");
        }
        if (cmyk) jpeg_decode_cmyk_row(ctx->cmyk_row, target, width, cinfo->saw_Adobe_marker);
    }
    jpeg_finish_decompress(cinfo);

    out->channels = channels;
    out->bit_depth = 8;
    out->width = width;
    out->height = height;
    out->samples = ctx->samples;
    ctx->samples = NULL;
    return CIC_OK;
}

cic_status cic_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cic_image *out) {
    if (out == NULL) return CIC_BAD_ARGUMENT;
    memset(out, 0, sizeof(*out));
    if (data == NULL || size == 0) {
        cic_set_message(out->message, "the data is empty");
        return CIC_TRUNCATED;
    }
    jpeg_decode_ctx *ctx = calloc(1, sizeof(jpeg_decode_ctx));
    if (ctx == NULL) {
        cic_set_message(out->message, "out of memory");
        return CIC_NO_MEMORY;
    }
    ctx->data = data;
    ctx->size = size;
    ctx->max_pixels = max_pixels;
    ctx->out = out;
    ctx->cinfo.err = cic_jpeg_error_init(&ctx->error, out->message, out->warning, &out->warning_count);
    cic_status status = jpeg_decode_run(ctx);
    if (ctx->created) jpeg_destroy_decompress(&ctx->cinfo);
    free(ctx->samples);
    free(ctx->cmyk_row);
    free(ctx);
    if (status != CIC_OK) cic_image_free(out);
    return status;
}
