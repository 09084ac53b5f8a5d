import ChiselTensor
import Foundation

/// diffusers' `get_timestep_embedding` (embeddings.py) with max period 10000 and scale 1: for
/// each value t, sinusoids of frequencies exp(−ln(10000)·i / (half − shift)), i < half = dim/2,
/// sines then cosines (cosines first with `flipSinToCos`), a zero column appended for an odd
/// `dim`; FP32 throughout, with −ln(10000) rounded to FP32 as PyTorch multiplies it in.
enum SinusoidalEmbedding {
    static func embed(_ values: [Float], dim: Int, flipSinToCos: Bool, freqShift: Int = 0) -> Tensor {
        let half = dim / 2
        var out = Tensor(zeros: [values.count, dim])
        let logBase = Float(-log(10000.0))
        let frequencies = (0..<half).map { expf(logBase * Float($0) / Float(half - freqShift)) }
        for (b, t) in values.enumerated() {
            for (i, frequency) in frequencies.enumerated() {
                let angle = t * frequency
                let (first, second) = flipSinToCos ? (cosf(angle), sinf(angle)) : (sinf(angle), cosf(angle))
                out.data[b * dim + i] = first
                out.data[b * dim + half + i] = second
            }
        }
        return out
    }
}
