import ChiselBase

/// Short constructors for the errors the model code raises most.
enum ChiselErrorFactory {
    static func io(_ message: String, _ file: String) -> ChiselError {
        ChiselError(.io, message, file: file)
    }

    static func model(_ message: String, _ file: String, tensor: String? = nil) -> ChiselError {
        ChiselError(.model, message, file: file, tensor: tensor)
    }
}
