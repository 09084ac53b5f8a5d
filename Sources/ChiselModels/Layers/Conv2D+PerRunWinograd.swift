import ChiselTensor

extension Conv2D {
    /// For networks that run once per image rather than once per step (the VAEs): Winograd
    /// weights are made for each run instead of kept (a few milliseconds per layer against about
    /// 120 MiB for SD's VAE).
    func makeWinogradWeightsPerRun() {
        winograd.keptWeightBytes = 0
        winograd.keptWeightBytesBF16 = 0
    }
}
