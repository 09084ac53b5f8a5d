import CChiselKernels

/// Process-wide allocation tuning for programs that run networks.
public enum Allocator {
    /// Lets malloc reuse freed memory for large blocks instead of returning it to the kernel
    /// and mapping fresh pages for the next one: a UNet step frees and allocates activations of
    /// tens of megabytes hundreds of times, and each fresh mapping costs a page fault per 4 KiB.
    /// Call once at start-up; it changes the whole process's malloc.
    public static func keepLargeBlocks() { chisel_keep_large_blocks() }
}
