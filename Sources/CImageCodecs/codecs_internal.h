// Helpers shared by the codec files; not part of the public header.
#ifndef CHISEL_CODECS_INTERNAL_H
#define CHISEL_CODECS_INTERNAL_H

#include "image_codecs.h"

#include <stdarg.h>

/// Formats into a CIC_MESSAGE_SIZE buffer, always NUL-terminated, truncating quietly.
void cic_set_message(char *buffer, const char *format, ...) __attribute__((format(printf, 2, 3)));

/// Appends bytes to a buffer, growing it geometrically; returns 0 when memory runs out.
int cic_buffer_append(cic_buffer *buffer, const uint8_t *bytes, size_t count);

/// Computes width * height * channels * bytes_per_sample, returning 0 if it overflows size_t.
int cic_sample_bytes(uint32_t width, uint32_t height, int channels, int bytes_per_sample, size_t *result);

#endif
