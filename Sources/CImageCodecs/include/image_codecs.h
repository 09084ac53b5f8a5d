// A thin C layer over libpng and libjpeg for ChiselImageIO.
//
// Both libraries report fatal errors with longjmp, which Swift cannot catch. Every function here
// catches them itself and returns a status plus a one-line message; nothing here prints, exits
// or leaks on an error path.
#ifndef CHISEL_IMAGE_CODECS_H
#define CHISEL_IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The size of every message buffer, terminating NUL included.
#define CIC_MESSAGE_SIZE 256

/// What a codec call ended with.
typedef enum cic_status {
    CIC_OK = 0,
    /// The data is damaged or not valid for the format.
    CIC_INVALID = 1,
    /// The data ends before the image does.
    CIC_TRUNCATED = 2,
    /// The header declares more pixels than the caller allows, or a size that overflows.
    CIC_TOO_LARGE = 3,
    /// A valid file using a feature that is not supported (e.g. 12-bit JPEG).
    CIC_UNSUPPORTED = 4,
    /// An allocation failed.
    CIC_NO_MEMORY = 5,
    /// The caller passed arguments that cannot be encoded.
    CIC_BAD_ARGUMENT = 6,
} cic_status;

/// One text entry of a PNG (tEXt, zTXt or iTXt), as raw bytes.
typedef struct cic_text {
    /// The keyword: Latin-1, not NUL-terminated.
    char *key;
    size_t key_length;
    /// The text: Latin-1 when `is_utf8` is 0 (tEXt, zTXt), UTF-8 otherwise (iTXt).
    char *value;
    size_t value_length;
    int is_utf8;
} cic_text;

/// A decoded image. All pointers are owned by the struct; release them with `cic_image_free`.
typedef struct cic_image {
    uint32_t width;
    uint32_t height;
    /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    int channels;
    /// 8 (samples are uint8_t) or 16 (samples are uint16_t in native byte order).
    int bit_depth;
    /// Interleaved samples, row by row: width * height * channels of them.
    void *samples;
    /// Text chunks (PNG only).
    cic_text *texts;
    size_t text_count;
    /// The TIFF structure of an EXIF block (JPEG APP1 after "Exif\0\0", or a PNG eXIf chunk).
    uint8_t *exif;
    size_t exif_length;
    /// How many non-fatal warnings the library reported; the first is in `warning`.
    int warning_count;
    char warning[CIC_MESSAGE_SIZE];
    /// Why the call failed, when it did.
    char message[CIC_MESSAGE_SIZE];
} cic_image;

/// Frees everything `image` owns and zeroes the pointers; safe to call twice.
void cic_image_free(cic_image *image);

/// Decodes a PNG held in memory.
///
/// Output: gray stays gray (1 or 2 channels), palette and colour become RGB or RGBA, tRNS
/// becomes an alpha channel, 1/2/4-bit samples are scaled to 8 bits, 16-bit stays 16-bit.
/// Fails with CIC_TOO_LARGE from the header alone when width * height > max_pixels; the
/// width and height fields are filled in then.
cic_status cic_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cic_image *out);

/// Decodes a JPEG held in memory to gray (1 channel) or RGB (3 channels), 8-bit.
///
/// CMYK and YCCK are converted to RGB (Adobe-inverted when an Adobe marker is present).
/// Data-damage warnings (premature end of file, bad Huffman code, ...) are treated as errors.
cic_status cic_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cic_image *out);

/// Bytes produced by an encoder; release them with `cic_buffer_free`.
typedef struct cic_buffer {
    uint8_t *data;
    size_t size;
    size_t capacity;
} cic_buffer;

/// Frees the bytes of `buffer` and zeroes it; safe to call twice.
void cic_buffer_free(cic_buffer *buffer);

/// A text entry to write into a PNG. Both strings are NUL-terminated.
typedef struct cic_text_in {
    /// Latin-1 keyword, 1 to 79 bytes.
    const char *key;
    /// Latin-1 for tEXt/zTXt, UTF-8 for iTXt.
    const char *value;
    /// 0 for a Latin-1 chunk (tEXt/zTXt), 1 for an international one (iTXt).
    int is_utf8;
    /// 1 to deflate the text (zTXt, or compressed iTXt).
    int compress;
} cic_text_in;

/// Encodes interleaved samples as a PNG.
///
/// `samples` are uint8_t for bit_depth 8, native-order uint16_t for 16; channels 1 to 4.
/// compression_level is 0 to 9, or -1 for the library default.
cic_status cic_png_encode(const void *samples, uint32_t width, uint32_t height, int channels,
                          int bit_depth, const cic_text_in *texts, size_t text_count,
                          int compression_level, cic_buffer *out, char *message);

/// Encodes 8-bit interleaved gray (channels 1) or RGB (channels 3) samples as a baseline JPEG.
///
/// quality is 1 to 100; chroma is subsampled 4:2:0 below quality 90 and kept 4:4:4 from 90 on.
/// Huffman tables are optimised. `app1` (NULL for none), at most 65533 bytes, is written as an
/// APP1 segment (EXIF: "Exif\0\0" and a TIFF structure) right after the SOI/JFIF header.
cic_status cic_jpeg_encode(const uint8_t *samples, uint32_t width, uint32_t height, int channels,
                           int quality, const uint8_t *app1, size_t app1_length, cic_buffer *out, char *message);

#ifdef __cplusplus
}
#endif

#endif
