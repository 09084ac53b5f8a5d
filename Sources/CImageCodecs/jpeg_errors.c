#include "jpeg_errors.h"

#include <jerror.h>
#include <string.h>

static void cic_jpeg_format(j_common_ptr cinfo, char *target) {
    char text[JMSG_LENGTH_MAX];
    memset(text, 0, sizeof(text));
    (*cinfo->err->format_message)(cinfo, text);
    cic_set_message(target, "%s", text);
}

static void cic_jpeg_error_exit(j_common_ptr cinfo) {
    cic_jpeg_error *error = (cic_jpeg_error *)cinfo->err;
    if (error->status == CIC_OK) {
        switch (error->pub.msg_code) {
        case JERR_INPUT_EOF:
        case JERR_INPUT_EMPTY:
            error->status = CIC_TRUNCATED;
            break;
        case JERR_BAD_PRECISION:
        case JERR_NOT_COMPILED:
        case JERR_CONVERSION_NOTIMPL:
        case JERR_ARITH_NOTIMPL:
            error->status = CIC_UNSUPPORTED;
            break;
        case JERR_OUT_OF_MEMORY:
            error->status = CIC_NO_MEMORY;
            break;
        case JERR_IMAGE_TOO_BIG:
            error->status = CIC_TOO_LARGE;
            break;
        default:
            error->status = CIC_INVALID;
            break;
        }
        cic_jpeg_format(cinfo, error->message);
    }
    longjmp(error->jump, 1);
}

// Warnings that mean the pixels are damaged or missing: libjpeg would fill them with gray and
// carry on, but a batch run must report such files, so they end the decode.
static int cic_jpeg_warning_is_fatal(int code) {
    switch (code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_MUST_RESYNC:
#if defined(D_ARITH_CODING_SUPPORTED) || JPEG_LIB_VERSION >= 70
    case JWRN_ARITH_BAD_CODE:
#endif
        return 1;
    default:
        return 0;
    }
}

static void cic_jpeg_emit_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;  // trace messages
    cic_jpeg_error *error = (cic_jpeg_error *)cinfo->err;
    error->pub.num_warnings++;
    if (cic_jpeg_warning_is_fatal(error->pub.msg_code)) {
        if (error->status == CIC_OK) {
            error->status = error->pub.msg_code == JWRN_JPEG_EOF ? CIC_TRUNCATED : CIC_INVALID;
            cic_jpeg_format(cinfo, error->message);
        }
        longjmp(error->jump, 1);
    }
    if (error->warning_count != NULL) {
        if (*error->warning_count == 0 && error->warning != NULL) cic_jpeg_format(cinfo, error->warning);
        (*error->warning_count)++;
    }
}

// libjpeg's default prints to stderr; messages reach the caller through the status instead.
static void cic_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

struct jpeg_error_mgr *cic_jpeg_error_init(cic_jpeg_error *error, char *message, char *warning,
                                           int *warning_count) {
    struct jpeg_error_mgr *manager = jpeg_std_error(&error->pub);
    manager->error_exit = cic_jpeg_error_exit;
    manager->emit_message = cic_jpeg_emit_message;
    manager->output_message = cic_jpeg_output_message;
    error->status = CIC_OK;
    error->message = message;
    error->warning = warning;
    error->warning_count = warning_count;
    return manager;
}

void cic_jpeg_fail(j_common_ptr cinfo, cic_status status, const char *text) {
    cic_jpeg_error *error = (cic_jpeg_error *)cinfo->err;
    if (error->status == CIC_OK) {
        error->status = status;
        cic_set_message(error->message, "%s", text);
    }
    longjmp(error->jump, 1);
}
