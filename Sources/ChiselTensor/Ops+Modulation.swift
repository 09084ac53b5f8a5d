import CChiselKernels
import ChiselBase

extension Ops {
    /// `x · (1 + scale) + shift` per sample, the adaptive modulation of diffusers' ConvNeXt block
    /// (`ConvNextBlock` in uvit_2d.py): `x` is N×…×C, `modulation` N×2C with the scales first.
    public static func modulate(_ x: Tensor, by modulation: Tensor) throws -> Tensor {
        let channels = x.lastDimension
        guard x.rank >= 2, modulation.rank == 2, modulation.shape == [x.shape[0], 2 * channels] else {
            throw ChiselError(.internal, "cannot modulate \(x.shape) by \(modulation.shape)")
        }
        let batch = x.shape[0]
        var scale = [Float](repeating: 0, count: batch * channels), shift = scale
        for b in 0..<batch {
            for c in 0..<channels {
                scale[b * channels + c] = 1 + modulation.data[b * 2 * channels + c]
                shift[b * channels + c] = modulation.data[b * 2 * channels + channels + c]
            }
        }
        var out = Tensor(uninitialized: x.shape)
        KernelProfile.measure("modulate") {
            x.data.withUnsafeBufferPointer { src in
                out.data.withUnsafeMutableBufferPointer { dst in
                    scale.withUnsafeBufferPointer { k in
                        shift.withUnsafeBufferPointer { t in
                            guard let source = src.baseAddress, let target = dst.baseAddress, let k0 = k.baseAddress,
                                let t0 = t.baseAddress
                            else { return }
                            RowKernel.perSample(rows: x.rows, rowsPerSample: x.rows / batch) { sample, rows in
                                chisel_scale_shift(source, target, Int64(channels), k0 + sample * channels,
                                                   t0 + sample * channels, 0, Int64(rows.lowerBound),
                                                   Int64(rows.upperBound))
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
