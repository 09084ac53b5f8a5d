import ChiselCore
import Foundation

/// Shows run and batch progress: a bar with count, rate and ETA on a terminal, JSON lines
/// with `--progress json`, nothing otherwise.
final class ProgressRenderer: @unchecked Sendable {
    private enum Style { case bar, json, silent }

    private let style: Style
    private let lock = NSLock()
    private let start = Date()
    private var total: Int
    private var completed = 0
    private var unit: String
    private var detail = ""
    private var lastDraw = Date.distantPast
    private var barShown = false
    /// When the first counted step ended: seconds per step are timed from there, so model
    /// loading and encoding do not count as step time.
    private var stepStart: Date?

    init(mode: ProgressMode, total: Int, unit: String) {
        switch mode {
        case .auto: style = Terminal.stderrIsTerminal ? .bar : .silent
        case .bar: style = .bar
        case .json: style = .json
        case .none: style = .silent
        }
        self.total = total
        self.unit = unit
    }

    // MARK: Events

    /// `countSteps`: the bar counts a long stage's own steps (denoising) instead of nodes or items.
    func handle(_ event: RunEvent, item: Int? = nil, countNodes: Bool, countSteps: Bool = false) {
        switch style {
        case .silent:
            if case .warning(let node, let message) = event {
                Terminal.err("warning: " + (node.map { "node '\($0)': " } ?? "") + message)
            } else if case .note(let node, let message) = event {
                Terminal.err("note: " + (node.map { "node '\($0)': " } ?? "") + message)
            }
        case .json: emit(Self.json(event, item: item))
        case .bar:
            lock.lock()
            defer { lock.unlock() }
            switch event {
            case .nodeStarted(let node, let stage): detail = "\(node) (\(stage))"
            case .nodeFinished:
                if countNodes { completed += 1 }
            case .nodeProgress(let node, let done, let all):
                if countSteps {
                    if done == 1 { stepStart = Date() }
                    completed = done
                    total = all
                    detail = node
                } else {
                    detail = "\(node) \(done)/\(all)"
                }
            case .warning(let node, let message):
                clearLine()
                Terminal.err("warning: " + (node.map { "node '\($0)': " } ?? "") + message)
            case .note(let node, let message):
                clearLine()
                Terminal.err("note: " + (node.map { "node '\($0)': " } ?? "") + message)
            case .fileWritten: break
            }
            draw()
        }
    }

    func handle(_ event: BatchEvent) {
        switch event {
        case .run(let index, let runEvent):
            handle(runEvent, item: index, countNodes: false)
        case .itemStarted(let item):
            if style == .json {
                emit(.object([JSONMember(key: "event", value: "item_started"), JSONMember(key: "index", value: .int(item.index)),
                              JSONMember(key: "input", value: .string(item.image))]))
            }
        case .itemFinished(let report):
            switch style {
            case .silent:
                if report.status == .failed, let error = report.error { Terminal.err("error: \(error)") }
            case .json:
                var json = report.json
                if case .object(let members) = json {
                    json = .object([JSONMember(key: "event", value: "item_finished")] + members)
                }
                emit(json)
            case .bar:
                lock.lock()
                defer { lock.unlock() }
                completed += 1
                detail = ImageOrigin(path: report.input).stem + (report.status == .failed ? " failed" : "")
                if report.status == .failed, let error = report.error {
                    clearLine()
                    Terminal.err("error: \(error)")
                }
                draw(force: true)
            }
        }
    }

    /// Ends the bar's line so later output starts on a fresh one.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if style == .bar && barShown {
            draw(force: true)
            Terminal.write("\n", to: STDERR_FILENO)
            barShown = false
        }
    }

    // MARK: Drawing

    private func emit(_ json: JSONValue) {
        Terminal.err(json.serialized())
    }

    private func clearLine() {
        if barShown { Terminal.write("\r\u{1B}[2K", to: STDERR_FILENO, raw: true) }
    }

    private func draw(force: Bool = false) {
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let width = 24
        let fraction = total > 0 ? min(1, Double(completed) / Double(total)) : 0
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        var line = "\r\u{1B}[2K[\(bar)] \(completed)/\(total) \(unit)"
        if completed > 0 && elapsed > 0 {
            var rate = Double(completed) / elapsed
            if let stepStart, completed > 1 {
                rate = Double(completed - 1) / max(now.timeIntervalSince(stepStart), 1e-6)
            }
            line += rate < 1 ? String(format: "  %.2f s/%@", 1 / rate, String(unit.dropLast()))
                             : String(format: "  %.2f %@/s", rate, unit)
            let remaining = Double(total - completed) / rate
            line += "  ETA " + Self.clock(remaining)
        }
        line += "  " + Self.clock(elapsed)
        if !detail.isEmpty { line += "  " + detail }
        Terminal.write(line, to: STDERR_FILENO, raw: true)
        barShown = true
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "--:--" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                         : String(format: "%d:%02d", s / 60, s % 60)
    }

    static func json(_ event: RunEvent, item: Int?) -> JSONValue {
        var members: [JSONMember] = []
        func add(_ key: String, _ value: JSONValue) { members.append(JSONMember(key: key, value: value)) }
        switch event {
        case .nodeStarted(let node, let stage):
            add("event", "node_started"); add("node", .string(node)); add("stage", .string(stage))
        case .nodeFinished(let node, let stage, let seconds):
            add("event", "node_finished"); add("node", .string(node)); add("stage", .string(stage))
            add("seconds", .double((seconds * 1000).rounded() / 1000))
        case .nodeProgress(let node, let done, let all):
            add("event", "node_progress"); add("node", .string(node)); add("completed", .int(done)); add("total", .int(all))
        case .fileWritten(let node, let path):
            add("event", "file_written"); add("node", .string(node)); add("path", .string(path))
        case .warning(let node, let message):
            add("event", "warning")
            if let node { add("node", .string(node)) }
            add("message", .string(message))
        case .note(let node, let message):
            add("event", "note")
            if let node { add("node", .string(node)) }
            add("message", .string(message))
        }
        if let item { members.insert(JSONMember(key: "item", value: .int(item)), at: 1) }
        return .object(members)
    }
}
