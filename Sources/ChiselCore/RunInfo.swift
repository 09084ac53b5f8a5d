/// What a stage knows about the run it is part of.
public struct RunInfo: Sendable {
    /// The item's number in a batch (0 for a single run).
    public var index: Int
    /// The stem of the run's main input file, for `{stem}` in save paths.
    public var stem: String?
    /// The file each loader node reads, by node id, for `{NODE.stem}`.
    public var loadedFiles: [String: String]
    /// The largest image, in pixels, that loaders accept.
    public var maxPixels: Int
    /// Whether the run is one item of a batch.
    public var isBatch: Bool
    /// Where outputs may go and whether they may replace files (batches, graphs from images).
    public var outputPolicy: OutputPolicy?

    public static let defaultMaxPixels = 100_000_000

    public init(index: Int = 0, stem: String? = nil, loadedFiles: [String: String] = [:],
                maxPixels: Int = RunInfo.defaultMaxPixels, isBatch: Bool = false, outputPolicy: OutputPolicy? = nil) {
        self.index = index
        self.stem = stem
        self.loadedFiles = loadedFiles
        self.maxPixels = maxPixels
        self.isBatch = isBatch
        self.outputPolicy = outputPolicy
    }
}
