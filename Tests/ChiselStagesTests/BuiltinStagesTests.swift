import ChiselCore
import ChiselStages
import Foundation
import Testing

@Suite struct BuiltinStagesTests {
    static let names: Set<String> = [
        "load_image", "load_mask", "image_to_mask", "mask_to_image", "save_image", "resize", "crop", "pad",
        "grow_mask", "feather_mask", "invert_mask", "combine_masks", "composite", "canny", "control_tile",
    ]

    @Test func registersEveryStageOnce() throws {
        var registry = StageRegistry()
        try BuiltinStages.register(in: &registry)
        let schemas = registry.schemas
        #expect(schemas.count == Self.names.count)
        #expect(Set(schemas.map(\.name)) == Self.names)
        #expect(BuiltinStages.all.count == Self.names.count)
        #expect(Set(BuiltinStages.all.map { $0.schema.name }).count == Self.names.count)
        for name in Self.names {
            let stage = try #require(registry.stage(named: name))
            #expect(stage.schema.name == name)
        }
    }

    @Test func registeringTwiceIsAnError() throws {
        var registry = StageRegistry()
        try BuiltinStages.register(in: &registry)
        #expect(throws: ChiselError.self) { try BuiltinStages.register(in: &registry) }
    }

    /// Registration checks every schema (unique names, defaults of the declared type and range);
    /// registering one stage at a time names the stage that fails.
    @Test func everySchemaIsValidOnItsOwn() throws {
        for stage in BuiltinStages.all {
            var registry = StageRegistry()
            #expect(throws: Never.self, "\(stage.schema.name)") { try registry.register(stage) }
        }
    }

    @Test func everyDefaultValidatesAgainstItsDeclaration() {
        for stage in BuiltinStages.all {
            let schema = stage.schema
            #expect(!schema.doc.isEmpty)
            for spec in schema.params {
                #expect(!spec.doc.isEmpty, "\(schema.name).\(spec.name)")
                if let value = spec.defaultValue {
                    #expect(ParamChecker.problem(with: value.json, for: spec) == nil, "\(schema.name).\(spec.name)")
                } else if !spec.required {
                    // Unset optional parameters are only numbers (resize's scale, the threshold).
                    #expect([ParamType.float, .int].contains(spec.type), "\(schema.name).\(spec.name)")
                }
            }
        }
    }

    @Test func loadersReceiveBatchFiles() throws {
        #expect(LoadImageStage.schema.receivesFiles?.role == .image)
        #expect(LoadImageStage.schema.receivesFiles?.param == "path")
        #expect(LoadMaskStage.schema.receivesFiles?.role == .mask)
        #expect(LoadMaskStage.schema.receivesFiles?.param == "path")
        #expect(SaveImageStage.schema.param("path")?.type == .path(.output))
        for stage in BuiltinStages.all where stage != LoadImageStage.self && stage != LoadMaskStage.self {
            #expect(stage.schema.receivesFiles == nil, "\(stage.schema.name)")
        }
    }

    @Test func onlySaveImagePlansOutputFiles() throws {
        for stage in BuiltinStages.all where stage != SaveImageStage.self {
            var call = makeCall(stage)
            if stage.schema.param("path") != nil {
                // Any stage with a path: set it by name, as the loop does not know each stage's keys.
                call = StageCall(node: call.node, params: call.params.merging(["path": .string("/tmp/x.png")]) { $1 },
                                 inputs: call.inputs, context: call.context)
            }
            #expect(try stage.plannedOutputFiles(call).isEmpty, "\(stage.schema.name)")
        }
    }
}
