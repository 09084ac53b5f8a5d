/// The target that carries Chisel's trained scene models (the diffusers folders beside this
/// file) as the resource bundle `Chisel_ChiselBundledModels.resources`; `BundledModel` in
/// ChiselModelStages finds them there by name, so this module has no code of its own to call.
public enum ChiselBundledModels {
    /// The bundle's name, as SwiftPM builds it beside the executables.
    public static let bundleName = "Chisel_ChiselBundledModels.resources"
}
