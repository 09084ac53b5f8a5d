import Foundation

/// One shard of a batch spread over several processes or machines (a SLURM array task, a
/// Kubernetes Indexed Job's pod): shard `index` of `count` edits the items whose path relative
/// to the input folder hashes to it. The assignment is a pure function of that path, so every
/// item belongs to exactly one shard, the same one on every machine and every re-run, and files
/// added to the folder later do not move the items already assigned.
public struct BatchShard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// The whole batch as one shard.
    public static let all = BatchShard(uncheckedIndex: 0, count: 1)

    private init(uncheckedIndex index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// Shard `index` of `count`; 0 ≤ index < count.
    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw ShardError("the shard count must be at least 1, got \(count)") }
        guard (0..<count).contains(index) else {
            throw ShardError("shard \(index)/\(count) is out of range: the index runs from 0 to \(count - 1)")
        }
        self.init(uncheckedIndex: index, count: count)
    }

    /// `I/N` as written on the command line.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else {
            throw ShardError("'\(text)' is not a shard: give I/N (0 ≤ I < N), or auto")
        }
        try self.init(index: index, count: count)
    }

    /// The shard the engine running this process gives it: a SLURM array task
    /// (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN`, `SLURM_ARRAY_TASK_MAX`, `SLURM_ARRAY_TASK_COUNT`,
    /// `SLURM_ARRAY_TASK_STEP`) or a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, with the count
    /// from `count` or `CHISEL_SHARD_COUNT`). An array that does not start at 0 is shifted by its
    /// minimum; one with a step maps its task ids onto 0…N−1 by (id − min) / step.
    public static func fromEnvironment(_ environment: [String: String], count given: Int? = nil) throws -> BatchShard {
        func integer(_ name: String) throws -> Int? {
            guard let text = environment[name] else { return nil }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw ShardError("\(name)='\(text)' is not an integer")
            }
            return value
        }
        if let task = try integer("SLURM_ARRAY_TASK_ID") {
            let minimum = try integer("SLURM_ARRAY_TASK_MIN") ?? 0
            let step = try integer("SLURM_ARRAY_TASK_STEP") ?? 1
            guard step >= 1 else { throw ShardError("SLURM_ARRAY_TASK_STEP=\(step) must be at least 1") }
            guard (task - minimum) % step == 0 else {
                throw ShardError("SLURM array task \(task) is not on the array's step \(step) from \(minimum)")
            }
            let count: Int
            if let given {
                count = given
            } else if let total = try integer("SLURM_ARRAY_TASK_COUNT") {
                count = total
            } else if let maximum = try integer("SLURM_ARRAY_TASK_MAX") {
                count = (maximum - minimum) / step + 1
            } else {
                throw ShardError("SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX is; "
                                 + "give --shard-count")
            }
            return try BatchShard(index: (task - minimum) / step, count: count)
        }
        if let index = try integer("JOB_COMPLETION_INDEX") {
            guard let count = try given ?? integer("CHISEL_SHARD_COUNT") else {
                throw ShardError("JOB_COMPLETION_INDEX=\(index) is set, but not how many shards there are: give --shard-count N "
                                 + "(the Job's completions) or set CHISEL_SHARD_COUNT")
            }
            return try BatchShard(index: index, count: count)
        }
        throw ShardError("--shard auto found no shard in the environment: run it as a SLURM array task "
                         + "(SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job pod (JOB_COMPLETION_INDEX), or give --shard I/N")
    }

    /// Whether the item at `relativePath` (inside the input folder, '/'-separated) is this shard's.
    public func owns(relativePath: String) -> Bool {
        count == 1 || Int(Self.hash(relativePath) % UInt64(count)) == index
    }

    /// FNV-1a, 64-bit, of the path's UTF-8 bytes: the same on every machine and in every build.
    public static func hash(_ text: String) -> UInt64 {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01b3
        }
        return value
    }

    /// `I-of-N`, as `{shard}` expands in report paths.
    public var label: String { "\(index)-of-\(count)" }

    public var description: String { "\(index)/\(count)" }
}

/// A shard specification that cannot be used, in one line.
public struct ShardError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
