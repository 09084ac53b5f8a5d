#include "chisel_startup.h"
#include "chisel_kernels.h"

// glibc gives each thread that allocates before malloc is configured an arena of its own, whose
// heaps hold at most 64 MiB: a larger block allocated on such a thread is a fresh mapping each
// time, faulted in page by page. The Swift runtime starts threads before main's first line, so
// a call from main is too late; a load-time constructor runs before any thread exists.
// Measured on the amused-512 BF16 img2img edit: 2,469 mappings and 15.2 s with the call from
// main, none of 64 MiB or more and 13.4 s with the settings in place from the start.
__attribute__((constructor)) static void chisel_startup_configure_malloc(void) { chisel_keep_large_blocks(); }
