@_exported import ChiselTestSupport
import ChiselCore
import ChiselModelStages

/// Calls of the model stages outside a graph, with `model` on their model input (every model
/// stage names it `model`) and the shared `makeCall` for the rest.
final class ModelStageRun<Model: LoadedModel>: Sendable {
    let model: Model
    let events = EventLog()

    init(_ model: Model) { self.model = model }

    /// A context for calls made by hand (a stage without the model input).
    var context: StageContext { StageContext(node: "n", run: RunInfo(), files: FileLedger(), events: events.sink) }

    func call(_ stage: any Stage.Type, _ params: [ParamSetting] = [], _ inputs: [InputSetting] = []) -> StageCall {
        makeCall(stage, params: params, inputs: [EncodePromptStage.model(model)] + inputs, events: events)
    }
}
