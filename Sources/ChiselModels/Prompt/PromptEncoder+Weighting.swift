import ChiselBase

extension PromptEncoder {
    /// One chunk's weighting, in place on its 77 × hidden values `z` (row t is token t).
    func apply(_ weights: [Float], to z: UnsafeMutableBufferPointer<Float>, empty: [Float], chunkIndex: Int) throws {
        let hidden = z.count / weights.count
        switch weighting {
        case .a1111:
            // sd_emphasis.EmphasisOriginal.after_transformers, in float32 like torch.
            let originalMean = Self.mean(z)
            Self.scaleRows(z, by: weights, hidden: hidden)
            let newMean = Self.mean(z)
            let ratio = originalMean / newMean
            guard ratio.isFinite else {
                throw ChiselError(
                    .invalidParameter,
                    "prompt chunk \(chunkIndex + 1): the weighted hidden states average to \(newMean), so A1111's weighting cannot restore their mean \(originalMean); change the weights")
            }
            for i in z.indices { z[i] *= ratio }
        case .a1111NoNorm:
            Self.scaleRows(z, by: weights, hidden: hidden)
        case .comfy:
            // encode_token_weights: only tokens whose weight is not 1 move.
            for (t, weight) in weights.enumerated() where weight != 1 {
                for i in (t * hidden)..<((t + 1) * hidden) { z[i] = (z[i] - empty[i]) * weight + empty[i] }
            }
        case .ignore:
            break
        }
    }

    private static func scaleRows(_ z: UnsafeMutableBufferPointer<Float>, by weights: [Float], hidden: Int) {
        for (t, weight) in weights.enumerated() {
            for i in (t * hidden)..<((t + 1) * hidden) { z[i] *= weight }
        }
    }

    /// `Tensor.mean()` in float32; summed in double, which torch's cascaded float sum approaches.
    private static func mean(_ z: UnsafeMutableBufferPointer<Float>) -> Float {
        var sum = 0.0
        for value in z { sum += Double(value) }
        return Float(sum / Double(z.count))
    }
}
