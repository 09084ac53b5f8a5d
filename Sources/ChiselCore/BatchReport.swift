/// What happened to one batch item; one line of the batch's JSON-lines report.
public struct BatchItemReport: Sendable, Equatable {
    public enum Status: String, Sendable {
        case done
        /// Every output existed already (a resumed batch).
        case skipped
        case failed
    }

    public var index: Int
    public var input: String
    public var mask: String?
    public var status: Status
    public var outputs: [String]
    public var seconds: Double
    public var error: String?

    public var json: JSONValue {
        var members: [JSONMember] = [
            JSONMember(key: "index", value: .int(index)),
            JSONMember(key: "input", value: .string(input)),
        ]
        if let mask { members.append(JSONMember(key: "mask", value: .string(mask))) }
        members += [
            JSONMember(key: "status", value: .string(status.rawValue)),
            JSONMember(key: "outputs", value: .array(outputs.map(JSONValue.string))),
            JSONMember(key: "seconds", value: .double((seconds * 1000).rounded() / 1000)),
        ]
        if let error { members.append(JSONMember(key: "error", value: .string(error))) }
        return .object(members)
    }
}

/// The counts at the end of a batch.
public struct BatchSummary: Sendable, Equatable {
    public var done = 0
    public var skipped = 0
    public var failed = 0
    public var seconds = 0.0

    public var total: Int { done + skipped + failed }
}

/// What a batch reports as it goes.
public enum BatchEvent: Sendable {
    case itemStarted(BatchItem)
    case itemFinished(BatchItemReport)
    /// An event of the graph run of item `index`.
    case run(index: Int, RunEvent)
}
