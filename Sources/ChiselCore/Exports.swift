// The error type lives in ChiselBase so that the tensor and diffusion modules can use it
// without the graph machinery; everything that imports ChiselCore sees it as before.
@_exported import ChiselBase
