import ChiselBase
import ChiselTensor
import Foundation

/// Tiled encoding and decoding with diffusers' `enable_tiling()` semantics, so that large images
/// need the memory of one tile: tiles of the config's `sample_size` (its latent size when
/// decoding) start every 75% of a tile, each is encoded or decoded alone, and each is blended
/// into the tile above and then the one to its left over 25% of a tile (a linear ramp, the
/// neighbours already blended, in raster order), before the top-left 75% of every tile is
/// concatenated. The result differs from an untiled pass near tile borders, as diffusers' does.
extension AutoencoderKL {
    /// Whether diffusers' tiling would tile an image of this size (a side over the tile size).
    public func tilesEncode(width: Int, height: Int) -> Bool { width > config.sampleSize || height > config.sampleSize }

    /// Whether diffusers' tiling would tile a latent of this size.
    public func tilesDecode(width: Int, height: Int) -> Bool {
        let tile = config.sampleSize / config.downscale
        return width > tile || height > tile
    }

    /// Peak activation memory of an untiled pass over an image of `pixels` (the full-resolution
    /// levels' widest maps, three alive at once), for deciding when tiling is needed.
    public func untiledPeakBytes(pixels: Int) -> Int {
        let widest = config.blockOutChannels.prefix(2).max() ?? 0
        return 3 * pixels * widest * MemoryLayout<Float>.size
    }

    /// `encode` over tiles.
    public func encodeTiled(_ image: Tensor) throws -> (mean: Tensor, std: Tensor) {
        defer { Allocator.releaseWorkBuffers() }
        let tile = config.sampleSize, latentTile = config.sampleSize / config.downscale
        let blend = Int(Double(latentTile) * 0.25)
        let moments = try Self.tiled(image, tile: tile, stride: Int(Double(tile) * 0.75), blend: blend, keep: latentTile - blend) {
            var h = try encoder($0)
            if let quantConv { h = try quantConv(h) }
            return h
        }
        return splitMoments(moments)
    }

    /// `decode` over tiles.
    public func decodeTiled(_ latent: Tensor) throws -> Tensor {
        defer { Allocator.releaseWorkBuffers() }
        let tile = config.sampleSize, latentTile = config.sampleSize / config.downscale
        let blend = Int(Double(tile) * 0.25)
        return try Self.tiled(latent, tile: latentTile, stride: Int(Double(latentTile) * 0.75), blend: blend, keep: tile - blend) {
            var h = $0
            if let postQuantConv { h = try postQuantConv(h) }
            let out = try decoder(h)
            Allocator.releaseWorkBuffers()
            return out
        }
    }

    /// Runs `body` on tiles of `x` (N×H×W×C) and blends and joins the results.
    static func tiled(_ x: Tensor, tile: Int, stride: Int, blend: Int, keep: Int,
                      _ body: (Tensor) throws -> Tensor) throws -> Tensor {
        let (height, width) = (x.shape[1], x.shape[2])
        guard stride > 0 else { throw ChiselError(.model, "the VAE's tile size \(tile) is too small to tile") }
        var rows: [[Tensor]] = []
        for top in Swift.stride(from: 0, to: height, by: stride) {
            var row: [Tensor] = []
            for left in Swift.stride(from: 0, to: width, by: stride) {
                row.append(try body(try crop(x, top: top, left: left, height: min(tile, height - top), width: min(tile, width - left))))
            }
            rows.append(row)
        }
        for i in rows.indices {
            for j in rows[i].indices {
                if i > 0 { blendRows(from: rows[i - 1][j], into: &rows[i][j], extent: blend) }
                if j > 0 { blendColumns(from: rows[i][j - 1], into: &rows[i][j], extent: blend) }
            }
        }
        // Each tile's top-left keep × keep (less at the edges), joined.
        let n = x.shape[0], c = rows[0][0].shape[3]
        let heights = rows.map { min(keep, $0[0].shape[1]) }, widths = rows[0].map { min(keep, $0.shape[2]) }
        let outH = heights.reduce(0, +), outW = widths.reduce(0, +)
        var out = Tensor(zeros: [n, outH, outW, c])
        var y0 = 0
        for (i, row) in rows.enumerated() {
            var x0 = 0
            for (j, t) in row.enumerated() {
                let (th, tw) = (t.shape[1], t.shape[2])
                for b in 0..<n {
                    for y in 0..<heights[i] {
                        let source = ((b * th + y) * tw) * c
                        let target = ((b * outH + y0 + y) * outW + x0) * c
                        for k in 0..<(widths[j] * c) { out.data[target + k] = t.data[source + k] }
                    }
                }
                x0 += widths[j]
            }
            y0 += heights[i]
        }
        return out
    }

    static func crop(_ x: Tensor, top: Int, left: Int, height: Int, width: Int) throws -> Tensor {
        let (n, w, c) = (x.shape[0], x.shape[2], x.shape[3])
        var out = Tensor(zeros: [n, height, width, c])
        for b in 0..<n {
            for y in 0..<height {
                let source = ((b * x.shape[1] + top + y) * w + left) * c
                let target = ((b * height + y) * width) * c
                for k in 0..<(width * c) { out.data[target + k] = x.data[source + k] }
            }
        }
        return out
    }

    /// diffusers' `blend_v`: the first rows of `b` ramp from the last rows of `a` (the tile above).
    static func blendRows(from a: Tensor, into b: inout Tensor, extent: Int) { blend(from: a, into: &b, axis: 1, extent: extent) }

    /// diffusers' `blend_h`: the first columns of `b` ramp from the last columns of `a` (the tile to the left).
    static func blendColumns(from a: Tensor, into b: inout Tensor, extent: Int) { blend(from: a, into: &b, axis: 2, extent: extent) }

    /// Along `axis` (1: rows, 2: columns of N×H×W×C tiles), position k < e of `b` becomes
    /// `a[end − e + k] · (1 − k/e) + b[k] · k/e`, e = min(both lengths, extent), in FP32 as torch.
    static func blend(from a: Tensor, into b: inout Tensor, axis: Int, extent: Int) {
        let e = min(a.shape[axis], b.shape[axis], extent)
        guard e > 0 else { return }
        let (n, c) = (b.shape[0], b.shape[3])
        let across = min(a.shape[3 - axis], b.shape[3 - axis])
        for bi in 0..<n {
            for k in 0..<e {
                let t = Double(k) / Double(e)
                let keepA = Float(1 - t), takeB = Float(t)
                let ak = a.shape[axis] - e + k
                for other in 0..<across {
                    let (ay, ax, by, bx) = axis == 1 ? (ak, other, k, other) : (other, ak, other, k)
                    let ia = ((bi * a.shape[1] + ay) * a.shape[2] + ax) * c
                    let ib = ((bi * b.shape[1] + by) * b.shape[2] + bx) * c
                    for ch in 0..<c { b.data[ib + ch] = a.data[ia + ch] * keepA + b.data[ib + ch] * takeB }
                }
            }
        }
    }
}
