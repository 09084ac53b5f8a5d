import Foundation

/// Chisel's version (semantic versioning; CHANGELOG.md says what each one changed) and, for a
/// development build, the commit it was built from.
public enum ChiselVersion {
    /// The release this source tree is or leads to.
    public static let number = "0.9.0"

    /// What `chisel --version`, `chisel bench --json` and the images' `Version` say: the number,
    /// and a development build's commit ("0.9.0-dev+1a2b3c4d5e6f").
    public static let text: String = commit.map { "\(number)-dev+\($0.prefix(12))" } ?? number

    /// The commit of the checkout the running binary was built in (a binary under a checkout's
    /// `.build/`), read from its `.git` without running git; nil for an installed binary.
    public static let commit: String? = {
        guard let executable = executablePath(), let range = executable.range(of: "/.build/") else { return nil }
        return head(ofCheckout: String(executable[..<range.lowerBound]))
    }()

    static func executablePath() -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments.first
    }

    /// The commit `HEAD` names in the checkout at `root`: a detached hash, or its branch's
    /// commit from `refs/` or `packed-refs`.
    public static func head(ofCheckout root: String) -> String? {
        let git = root + "/.git"
        func read(_ path: String) -> String? {
            guard let data = FileManager.default.contents(atPath: path), data.count < 1 << 20 else { return nil }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let head = read(git + "/HEAD") else { return nil }
        guard head.hasPrefix("ref: ") else { return isHash(head) ? head : nil }
        let ref = String(head.dropFirst("ref: ".count))
        guard !ref.contains(".."), ref.hasPrefix("refs/") else { return nil }
        if let hash = read(git + "/" + ref), isHash(hash) { return hash }
        let packed = read(git + "/packed-refs")?.split(separator: "\n") ?? []
        for line in packed where line.hasSuffix(" " + ref) {
            let hash = String(line.prefix { $0 != " " })
            if isHash(hash) { return hash }
        }
        return nil
    }

    static func isHash(_ text: String) -> Bool {
        text.count >= 40 && text.allSatisfy { $0.isHexDigit }
    }
}
