import CChiselKernels

/// Process-wide allocation tuning for programs that run networks.
public enum Allocator {
    /// Lets malloc reuse freed memory for large blocks instead of returning it to the kernel
    /// and mapping fresh pages for the next one: a UNet step frees and allocates activations of
    /// tens of megabytes hundreds of times, and each fresh mapping costs a page fault per 4 KiB.
    /// It also puts every thread on one malloc arena, since glibc's per-thread arenas map any
    /// block over 64 MiB afresh (measured: VAE decode 512² 7.5 → 6.6 s, a bf16 UNet pair 4.4 →
    /// 4.2 s). Blocks are never mapped on their own (glibc refuses an mmap threshold above
    /// 32 MiB, so the larger blocks would still be) and the heap is never trimmed. It must run
    /// before other threads allocate, and it changes the whole process's malloc: executables
    /// built on ChiselCLI get it from a load-time constructor (Sources/CChiselStartup), since
    /// the Swift runtime has started threads before main runs.
    public static func keepLargeBlocks() { chisel_keep_large_blocks() }

    /// Frees the kernels' reused working buffers that no run is using (see
    /// `chisel_release_work_buffers`); networks call it when an evaluation ends, so the buffers
    /// are reused within one evaluation but do not outlive it.
    public static func releaseWorkBuffers() { chisel_release_work_buffers() }
}
