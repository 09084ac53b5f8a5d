// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Chisel",
    platforms: [.macOS(.v14)],
    products: [
        // The library other packages depend on to write their own stages.
        .library(name: "Chisel", targets: ["ChiselBase", "ChiselCore", "ChiselImageIO", "ChiselStages", "ChiselTensor",
                                           "ChiselDiffusion", "ChiselModels", "ChiselModelStages"]),
        .library(name: "ChiselCLI", targets: ["ChiselCLI"]),
        .library(name: "ColorMatch", targets: ["ColorMatch"]),
        .executable(name: "chisel", targets: ["chisel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System C libraries.
        .systemLibrary(
            name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]),
        .systemLibrary(
            name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg",
            providers: [.apt(["libjpeg-dev"])]),
        // oneDNN: GEMM and convolution kernels with AVX-512 and bf16 (libdnnl-dev ships no .pc file).
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        // A thin C layer that turns libpng's and libjpeg's longjmp errors into return codes.
        .target(name: "CImageCodecs", dependencies: ["CPNG", "CJPEG"]),

        // What every module shares: the error type, JSON and config reading, generation info.
        .target(name: "ChiselBase"),
        // Values, the stage protocol, schemas, the graph compiler and runner, batches.
        .target(name: "ChiselCore", dependencies: ["ChiselBase"]),
        .target(name: "ChiselImageIO", dependencies: ["ChiselCore", "CImageCodecs"]),
        .target(name: "ChiselStages", dependencies: ["ChiselCore", "ChiselImageIO"]),
        // oneDNN convolution and matmul primitives behind a small C interface.
        .target(name: "CChiselKernels", dependencies: ["CDNNL"]),
        .target(name: "ChiselTensor", dependencies: ["ChiselBase", "CDNNL", "CChiselKernels"]),
        // Configures malloc before main, for the executables (through ChiselCLI).
        .target(name: "CChiselStartup", dependencies: ["CChiselKernels"]),
        // Schedulers, random streams, sampling loops and MaskGIT decoding.
        .target(name: "ChiselDiffusion", dependencies: ["ChiselBase", "ChiselTensor", "CChiselKernels"]),
        // Checkpoints and networks: safetensors, model formats, tokenizer, text encoders, VAE, UNet.
        .target(
            name: "ChiselModels", dependencies: ["ChiselBase", "ChiselTensor", "ChiselDiffusion", "CChiselKernels"],
            resources: [.copy("Resources")]),
        // The stages that use models, and the model loaders they register.
        .target(name: "ChiselModelStages", dependencies: ["ChiselCore", "ChiselImageIO", "ChiselStages", "ChiselModels", "ChiselDiffusion", "ChiselTensor"]),

        // Custom stage targets: each is a library with one registration entry point.
        .target(name: "ColorMatch", dependencies: ["ChiselCore"], path: "Plugins/ColorMatch/Sources"),

        // The command line as a library, so packages that add stages build their own `chisel`.
        .target(
            name: "ChiselCLI",
            dependencies: [
                "ChiselCore", "ChiselImageIO", "ChiselStages", "ChiselModels", "ChiselModelStages", "ChiselTensor",
                "ChiselDiffusion", "CChiselStartup", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The scene models Chisel trains itself (tools/train/), as the resource bundle
        // Chisel_ChiselBundledModels.resources beside `chisel`: models/scenes/ holds their diffusers
        // folders (scenes-sd/, scenes-mvtm/) once trained (docs/models.md#built-in-models).
        .target(name: "ChiselBundledModels", path: "models", sources: ["ChiselBundledModels.swift"],
                resources: [.copy("scenes")]),
        .executableTarget(name: "chisel", dependencies: ["ChiselCLI", "ColorMatch", "ChiselBundledModels"]),

        // What the test targets share: scratch folders, reproducible random data.
        .target(name: "ChiselTestSupport", dependencies: ["ChiselCore"], path: "Tests/ChiselTestSupport"),
        .testTarget(name: "ChiselCoreTests", dependencies: ["ChiselCore", "ChiselTestSupport"]),
        .testTarget(
            name: "ChiselImageIOTests", dependencies: ["ChiselTestSupport", "ChiselImageIO", "ChiselCore"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "ChiselTensorTests", dependencies: ["ChiselTestSupport", "ChiselTensor", "ChiselCore"]),
        .testTarget(
            name: "ChiselModelsTests", dependencies: ["ChiselTestSupport", "ChiselModels", "ChiselCore"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "ChiselDiffusionTests", dependencies: ["ChiselTestSupport", "ChiselDiffusion", "ChiselBase", "ChiselTensor"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "ChiselModelStagesTests",
            dependencies: ["ChiselTestSupport", "ChiselModelStages", "ChiselModels", "ChiselDiffusion", "ChiselTensor", "ChiselCore", "ChiselImageIO", "ChiselStages"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "ChiselStagesTests", dependencies: ["ChiselTestSupport", "ChiselStages", "ChiselImageIO", "ChiselCore"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "ColorMatchTests", dependencies: ["ColorMatch", "ChiselCore"], path: "Plugins/ColorMatch/Tests"),
        .testTarget(
            name: "ChiselCLITests", dependencies: ["ChiselTestSupport", "chisel", "ChiselCore", "ChiselImageIO"],
            resources: [.copy("Fixtures")]),
    ]
)
