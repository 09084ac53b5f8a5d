import ChiselCore
import Foundation

/// Writing to the terminal: results on stdout, problems and progress on stderr.
enum Terminal {
    private static let lock = NSLock()

    static func out(_ text: String, terminator: Bool = true) {
        write(terminator ? text + "\n" : text, to: STDOUT_FILENO)
    }

    static func err(_ text: String) {
        write(text + "\n", to: STDERR_FILENO)
    }

    static func write(_ text: String, to fd: Int32) {
        lock.lock()
        defer { lock.unlock() }
        let handle = fd == STDERR_FILENO ? FileHandle.standardError : FileHandle.standardOutput
        try? handle.write(contentsOf: Data(text.utf8))
    }

    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    /// Prints each problem on its own line and returns the exit code for failure.
    static func report(_ error: any Error) {
        switch error {
        case let errors as ChiselErrors:
            for e in errors.errors { err("error: \(e)") }
        case let chisel as ChiselError:
            err("error: \(chisel)")
        default:
            err("error: \(error)")
        }
    }
}
