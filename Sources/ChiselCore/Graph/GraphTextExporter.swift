/// Writes a graph in another tool's language, for the images a run saves: ComfyUI's API-format
/// `prompt`, so that dropping a Chisel output on ComfyUI loads a workflow that does the same.
public protocol GraphTextExporter: Sendable {
    /// PNG text entries describing `graph` (a resolved graph document: every parameter given, seeds
    /// drawn), or none when the graph has parts the other tool has no equivalent for.
    func text(for graph: JSONValue) -> [(key: String, value: String)]
}
