import ChiselCLI
import Vignette

// Chisel's whole command line, with the built-in stages and this package's.
await ChiselCLI.main(name: "chisel-vignette", stages: [Vignette.register])
