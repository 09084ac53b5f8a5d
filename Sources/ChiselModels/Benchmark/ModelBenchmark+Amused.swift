import ChiselBase
import ChiselTensor

extension ModelBenchmark {
    /// aMUSEd's networks alone, full size with random weights (`AmusedModel`'s public configs):
    /// the transformer of amused-256 (16×16 tokens) and amused-512 (32×32, halved inside) on a
    /// CFG pair, as one call, with its conditioning made beforehand, and as one guided call; the
    /// VQ model at 512².
    static func runAmused(precision: Precision, parts: [Part], repeats: Int, log: (String) -> Void) throws -> [Row] {
        var rows: [Row] = []
        if parts.contains(.uvit) {
            for architecture in AmusedModel.Architecture.allCases {
                log("building the \(architecture.rawValue) transformer (\(precision.rawValue), random weights)")
                let config = try UVit2DConfig(reader: ConfigReader(
                    json: JSONParser.parse(AmusedModel.publicTransformerConfig(architecture)),
                    file: "\(architecture.rawValue) transformer config"))
                let model = try UVit2DModel(config: config, weights: RandomWeights(), precision: precision)
                let grid = architecture.imageSide / 16, tokens = grid * grid
                let ids = noise(2 * tokens, seed: 6).map { Int32(abs($0) * Float(config.vocabSize - 1)) }
                let context = try Tensor(shape: [2, 77, config.encoderHiddenSize],
                                         data: noise(2 * 77 * config.encoderHiddenSize, seed: 7))
                let pooled = try Tensor(shape: [2, config.condEmbedDim], data: noise(2 * config.condEmbedDim, seed: 8))
                let side = Float(architecture.imageSide)
                let micro: [Float] = [side, side, 0, 0, 6, side, side, 0, 0, 6]
                let name = "U-ViT \(architecture.rawValue) \(grid)×\(grid)"
                rows.append(try time("\(name), CFG pair (batch 2)", precision, repeats, log) {
                    _ = try model.logits(ids: ids, batch: 2, height: grid, width: grid, encoderHiddenStates: context,
                                         pooledText: pooled, microConditioning: micro)
                })
                logProfile(log, runs: repeats + 1)
                let prepared = try model.conditioning(encoderHiddenStates: context, pooledText: pooled,
                                                      microConditioning: micro)
                rows.append(try time("\(name), CFG pair, conditioning made once", precision, repeats, log) {
                    _ = try model.logits(ids: ids, batch: 2, height: grid, width: grid, conditioning: prepared)
                })
                logProfile(log, runs: repeats + 1)
                rows.append(try time("\(name), guided pair, conditioning made once", precision, repeats, log) {
                    _ = try model.guidedLogits(ids: Array(ids.prefix(tokens)), batch: 1, height: grid, width: grid,
                                               conditioning: prepared, guidanceScale: 10)
                })
                logProfile(log, runs: repeats + 1)
            }
        }
        if parts.contains(.vq) {
            log("building the aMUSEd VQ model (\(precision.rawValue), random weights)")
            let config = try VQModelConfig(reader: ConfigReader(json: JSONParser.parse(AmusedModel.publicVQConfig),
                                                                file: "amused vqvae config"))
            let vq = try VQModel(config: config, weights: RandomWeights(), precision: precision)
            let image = try Tensor(shape: [1, 512, 512, 3], data: noise(512 * 512 * 3, seed: 9).map { 0.5 + 0.5 * $0 })
            let ids = noise(32 * 32, seed: 10).map { Int32(abs($0) * Float(config.codebookSize - 1)) }
            rows.append(try time("VQ encode + quantize 512²", precision, repeats, log) { _ = try vq.quantize(vq.encode(image)) })
            logProfile(log, runs: repeats + 1)
            rows.append(try time("VQ decode 512²", precision, repeats, log) {
                _ = try vq.decode(ids: ids, batch: 1, height: 32, width: 32)
            })
            logProfile(log, runs: repeats + 1)
        }
        return rows
    }
}
