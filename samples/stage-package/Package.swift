// swift-tools-version: 6.0
import PackageDescription

// A package outside Chisel that adds a stage and builds its own `chisel`, with every command
// (run, validate, batch, report, img2img, inpaint, refine, sheet, stages, model, import, bench).
// Copied elsewhere, point the path at a checkout of Chisel.
let package = Package(
    name: "StagePackage",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Chisel", path: "../.."),
    ],
    targets: [
        .target(name: "Vignette", dependencies: [.product(name: "Chisel", package: "Chisel")]),
        .executableTarget(
            name: "chisel-vignette",
            dependencies: ["Vignette", .product(name: "ChiselCLI", package: "Chisel")]),
        .testTarget(name: "VignetteTests", dependencies: ["Vignette", .product(name: "Chisel", package: "Chisel")]),
    ]
)
