import ChiselCore
import ChiselTensor

/// A network's output must be finite: NaN or infinity there (a checkpoint with NaN weights, an
/// overflow) would otherwise become a black image or garbage tokens with exit status 0.
enum FiniteCheck {
    /// Throws, naming the network and the step, when `values` hold NaN or infinity.
    static func require(_ values: [Float], network: String, step: String? = nil, _ call: StageCall? = nil) throws {
        guard let bad = values.firstIndex(where: { !$0.isFinite }) else { return }
        let kind = values[bad].isNaN ? "NaN" : "infinite values"
        let count = values.lazy.filter { !$0.isFinite }.count
        let message = "the \(network) produced \(kind) (\(count) of \(values.count) values)"
            + (step.map { " at \($0)" } ?? "")
            + "; the checkpoint's weights may hold NaN or Inf: `chisel model inspect --deep` lists them"
        throw call?.failure(message, code: .model) ?? ChiselError(.model, message)
    }

    static func require(_ tensor: Tensor, network: String, step: String? = nil, _ call: StageCall? = nil) throws {
        try require(tensor.data, network: network, step: step, call)
    }
}
