// A libjpeg error manager that longjmps back with a status instead of calling exit().
#ifndef CHISEL_JPEG_ERRORS_H
#define CHISEL_JPEG_ERRORS_H

#include "codecs_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <jpeglib.h>

typedef struct cic_jpeg_error {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    cic_status status;
    /// Where the first error message goes (CIC_MESSAGE_SIZE bytes).
    char *message;
    /// Where the first warning goes (CIC_MESSAGE_SIZE bytes), or NULL to drop warnings.
    char *warning;
    int *warning_count;
} cic_jpeg_error;

/// Installs the handlers on `error` and returns the libjpeg view of it.
struct jpeg_error_mgr *cic_jpeg_error_init(cic_jpeg_error *error, char *message, char *warning,
                                           int *warning_count);

/// Records `status` and `text` as the failure and longjmps back; never returns.
void cic_jpeg_fail(j_common_ptr cinfo, cic_status status, const char *text) __attribute__((noreturn));

#endif
