import Foundation

/// Where SwiftPM resource bundles are looked for, without `Bundle.module` (which traps when a
/// bundle is missing): `$CHISEL_RESOURCES` when set, then the bundle of that name beside the main
/// bundle and beside the running executable (SwiftPM builds them next to the binaries,
/// `.build/<triple>/<configuration>/`, which is also where `swift test` runs from), then in
/// `../share/chisel/` from the executable's folder (where scripts/install.sh and the Debian
/// package put them: `PREFIX/bin/chisel`, `PREFIX/share/chisel/*.resources`). A copied
/// `chisel` needs its bundles beside it, or `CHISEL_RESOURCES` naming the folder that holds them
/// (or the one bundle).
public enum ResourceBundles {
    /// The candidate paths of the bundle `name` (e.g. `Chisel_ChiselModels.resources`), in order.
    public static func candidates(_ name: String) -> [String] {
        var paths: [String] = []
        if let override = ProcessInfo.processInfo.environment["CHISEL_RESOURCES"], !override.isEmpty {
            paths.append(override)
            paths.append(URL(fileURLWithPath: override).appendingPathComponent(name).path)
        }
        paths.append(Bundle.main.bundleURL.appendingPathComponent(name).path)
        var executables = [Bundle.main.executableURL].compactMap { $0 }
        // The binary itself when it was run through a symbolic link (a PATH entry pointing elsewhere).
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            executables.append(URL(fileURLWithPath: resolved))
        }
        for executable in executables {
            let folder = executable.deletingLastPathComponent()
            paths.append(folder.appendingPathComponent(name).path)
            paths.append(folder.deletingLastPathComponent().appendingPathComponent("share/chisel").appendingPathComponent(name).path)
        }
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }
}
