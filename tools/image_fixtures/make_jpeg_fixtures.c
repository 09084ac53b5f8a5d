// Writes the JPEG test fixtures of ChiselImageIO with libjpeg(-turbo).
//
// Build and run through generate.sh. Every image shows the same upright pattern, four
// solid quadrants of a 64x32 picture, so tests can check colours after decoding:
//   top-left red (220,30,30)    top-right green (30,200,60)
//   bottom-left blue (40,60,210) bottom-right yellow (230,220,40)
// The gray fixture uses levels 30, 100, 170, 240 in the same places. CMYK fixtures use
// inks: top-left cyan, top-right magenta, bottom-left yellow, bottom-right 50% black,
// which are RGB (0,255,255), (255,0,255), (255,255,0), (128,128,128).
// orientation_N.jpg stores the pattern so that applying EXIF orientation N makes it upright.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

#define W 64
#define H 32

static const uint8_t RGB[4][3] = {{220, 30, 30}, {30, 200, 60}, {40, 60, 210}, {230, 220, 40}};
static const uint8_t GRAY[4] = {30, 100, 170, 240};
// Ink amounts (255 = full ink) per quadrant: C, M, Y, K.
static const uint8_t INK[4][4] = {{255, 0, 0, 0}, {0, 255, 0, 0}, {0, 0, 255, 0}, {0, 0, 0, 127}};

static int quadrant(int x, int y) { return (y >= H / 2) * 2 + (x >= W / 2); }

// Where stored pixel (sx, sy) of a stored image of sw x sh lands in the upright picture.
static void display_position(int orientation, int sx, int sy, int sw, int sh, int *dx, int *dy) {
    switch (orientation) {
    case 2: *dx = sw - 1 - sx; *dy = sy; break;
    case 3: *dx = sw - 1 - sx; *dy = sh - 1 - sy; break;
    case 4: *dx = sx; *dy = sh - 1 - sy; break;
    case 5: *dx = sy; *dy = sx; break;
    case 6: *dx = sh - 1 - sy; *dy = sx; break;
    case 7: *dx = sh - 1 - sy; *dy = sw - 1 - sx; break;
    case 8: *dx = sy; *dy = sw - 1 - sx; break;
    default: *dx = sx; *dy = sy; break;
    }
}

typedef struct {
    const char *path;
    int width, height, components;
    J_COLOR_SPACE in_space, jpeg_space;
    int quality, progressive, full_chroma, jfif, adobe;
    const uint8_t *app1;
    size_t app1_length;
} job;

static void write_jpeg(const job *j, const uint8_t *pixels) {
    FILE *file = fopen(j->path, "wb");
    if (!file) { perror(j->path); exit(1); }
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr err;
    cinfo.err = jpeg_std_error(&err);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, file);
    cinfo.image_width = j->width;
    cinfo.image_height = j->height;
    cinfo.input_components = j->components;
    cinfo.in_color_space = j->in_space;
    jpeg_set_defaults(&cinfo);
    jpeg_set_colorspace(&cinfo, j->jpeg_space);
    jpeg_set_quality(&cinfo, j->quality, TRUE);
    cinfo.optimize_coding = TRUE;
    cinfo.write_JFIF_header = j->jfif;
    cinfo.write_Adobe_marker = j->adobe;
    if (j->full_chroma) {
        for (int c = 0; c < cinfo.num_components; c++) {
            cinfo.comp_info[c].h_samp_factor = 1;
            cinfo.comp_info[c].v_samp_factor = 1;
        }
    }
    if (j->progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    if (j->app1) jpeg_write_marker(&cinfo, JPEG_APP0 + 1, j->app1, (unsigned)j->app1_length);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * j->width * j->components);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    fclose(file);
}

static void put16(uint8_t *p, int little, unsigned v) {
    if (little) { p[0] = v & 0xFF; p[1] = v >> 8; } else { p[0] = v >> 8; p[1] = v & 0xFF; }
}
static void put32(uint8_t *p, int little, unsigned v) {
    if (little) { put16(p, 1, v & 0xFFFF); put16(p + 2, 1, v >> 16); } else { put16(p, 0, v >> 16); put16(p + 2, 0, v & 0xFFFF); }
}

// "Exif\0\0" + TIFF: IFD0 with Make ("Phone", stored out of line) and Orientation.
static size_t make_exif(uint8_t *out, int orientation, int little) {
    memcpy(out, "Exif\0\0", 6);
    uint8_t *t = out + 6;
    memcpy(t, little ? "II" : "MM", 2);
    put16(t + 2, little, 42);
    put32(t + 4, little, 8);
    put16(t + 8, little, 2);
    uint8_t *e = t + 10;
    put16(e, little, 0x010F); put16(e + 2, little, 2); put32(e + 4, little, 6); put32(e + 8, little, 38);
    e += 12;
    put16(e, little, 0x0112); put16(e + 2, little, 3); put32(e + 4, little, 1);
    put16(e + 8, little, (unsigned)orientation); put16(e + 10, little, 0);
    put32(t + 34, little, 0);
    memcpy(t + 38, "Phone\0", 6);
    return 6 + 44;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s output-folder\n", argv[0]); return 2; }
    char path[4096];
    static uint8_t rgb[W * H * 3], gray[W * H], cmyk[W * H * 4], cmyk_plain[W * H * 4];
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            int q = quadrant(x, y), i = y * W + x;
            memcpy(rgb + 3 * i, RGB[q], 3);
            gray[i] = GRAY[q];
            for (int c = 0; c < 4; c++) {
                cmyk[4 * i + c] = 255 - INK[q][c];  // Adobe convention: stored inverted
                cmyk_plain[4 * i + c] = INK[q][c];
            }
        }
    }
    job base = {0};
    base.width = W; base.height = H; base.quality = 95; base.full_chroma = 1; base.jfif = 1;

    job j = base;
    snprintf(path, sizeof path, "%s/baseline.jpg", argv[1]);
    j.path = path; j.components = 3; j.in_space = JCS_RGB; j.jpeg_space = JCS_YCbCr;
    write_jpeg(&j, rgb);

    j = base;
    snprintf(path, sizeof path, "%s/progressive.jpg", argv[1]);
    j.path = path; j.components = 3; j.in_space = JCS_RGB; j.jpeg_space = JCS_YCbCr;
    j.progressive = 1; j.full_chroma = 0; j.quality = 90;  // 4:2:0, exercising chroma upsampling
    write_jpeg(&j, rgb);

    j = base;
    snprintf(path, sizeof path, "%s/gray.jpg", argv[1]);
    j.path = path; j.components = 1; j.in_space = JCS_GRAYSCALE; j.jpeg_space = JCS_GRAYSCALE;
    write_jpeg(&j, gray);

    j = base;
    snprintf(path, sizeof path, "%s/cmyk_adobe.jpg", argv[1]);
    j.path = path; j.components = 4; j.in_space = JCS_CMYK; j.jpeg_space = JCS_CMYK; j.jfif = 0; j.adobe = 1;
    write_jpeg(&j, cmyk);

    j = base;
    snprintf(path, sizeof path, "%s/ycck_adobe.jpg", argv[1]);
    j.path = path; j.components = 4; j.in_space = JCS_CMYK; j.jpeg_space = JCS_YCCK; j.jfif = 0; j.adobe = 1;
    write_jpeg(&j, cmyk);

    j = base;
    snprintf(path, sizeof path, "%s/cmyk_plain.jpg", argv[1]);
    j.path = path; j.components = 4; j.in_space = JCS_CMYK; j.jpeg_space = JCS_CMYK; j.jfif = 0; j.adobe = 0;
    write_jpeg(&j, cmyk_plain);

    static uint8_t stored[W * H * 3];
    uint8_t exif[64];
    for (int o = 1; o <= 8; o++) {
        int sw = o >= 5 ? H : W, sh = o >= 5 ? W : H;
        for (int sy = 0; sy < sh; sy++) {
            for (int sx = 0; sx < sw; sx++) {
                int dx, dy;
                display_position(o, sx, sy, sw, sh, &dx, &dy);
                memcpy(stored + 3 * (sy * sw + sx), rgb + 3 * (dy * W + dx), 3);
            }
        }
        j = base;
        snprintf(path, sizeof path, "%s/orientation_%d.jpg", argv[1], o);
        j.path = path; j.components = 3; j.in_space = JCS_RGB; j.jpeg_space = JCS_YCbCr; j.jfif = 0;
        j.width = sw; j.height = sh;
        j.app1 = exif; j.app1_length = make_exif(exif, o, o % 2);  // odd: Intel order, even: Motorola
        write_jpeg(&j, stored);
    }

    // IFD0 offset far past the end of the block: must be ignored, image left as stored.
    static const uint8_t corrupt[] = {'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 0, 0xFF, 0xFF, 0x7F, 1, 0, 0x12, 0x01};
    j = base;
    snprintf(path, sizeof path, "%s/exif_corrupt.jpg", argv[1]);
    j.path = path; j.components = 3; j.in_space = JCS_RGB; j.jpeg_space = JCS_YCbCr; j.jfif = 0;
    j.app1 = corrupt; j.app1_length = sizeof corrupt;
    write_jpeg(&j, rgb);
    return 0;
}
