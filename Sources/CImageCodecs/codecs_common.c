#include "codecs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cic_set_message(char *buffer, const char *format, ...) {
    if (buffer == NULL) return;
    va_list args;
    va_start(args, format);
    vsnprintf(buffer, CIC_MESSAGE_SIZE, format, args);
    va_end(args);
    buffer[CIC_MESSAGE_SIZE - 1] = '\0';
}

void cic_image_free(cic_image *image) {
    if (image == NULL) return;
    free(image->samples);
    image->samples = NULL;
    if (image->texts != NULL) {
        for (size_t i = 0; i < image->text_count; i++) {
            free(image->texts[i].key);
            free(image->texts[i].value);
        }
        free(image->texts);
    }
    image->texts = NULL;
    image->text_count = 0;
    free(image->exif);
    image->exif = NULL;
    image->exif_length = 0;
}

void cic_buffer_free(cic_buffer *buffer) {
    if (buffer == NULL) return;
    free(buffer->data);
    buffer->data = NULL;
    buffer->size = 0;
    buffer->capacity = 0;
}

int cic_buffer_append(cic_buffer *buffer, const uint8_t *bytes, size_t count) {
    if (count == 0) return 1;
    if (count > SIZE_MAX - buffer->size) return 0;
    size_t needed = buffer->size + count;
    if (needed > buffer->capacity) {
        size_t capacity = buffer->capacity < 4096 ? 4096 : buffer->capacity;
        while (capacity < needed) {
            if (capacity > SIZE_MAX / 2) { capacity = needed; break; }
            capacity *= 2;
        }
        uint8_t *grown = realloc(buffer->data, capacity);
        if (grown == NULL) return 0;
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->size, bytes, count);
    buffer->size = needed;
    return 1;
}

int cic_sample_bytes(uint32_t width, uint32_t height, int channels, int bytes_per_sample, size_t *result) {
    if (channels <= 0 || bytes_per_sample <= 0) return 0;
    size_t total = width;
    if (height != 0 && total > SIZE_MAX / height) return 0;
    total *= height;
    if (total > SIZE_MAX / (size_t)channels) return 0;
    total *= (size_t)channels;
    if (total > SIZE_MAX / (size_t)bytes_per_sample) return 0;
    total *= (size_t)bytes_per_sample;
    *result = total;
    return 1;
}
