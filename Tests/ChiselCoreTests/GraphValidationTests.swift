import ChiselCore
import Foundation
import Testing

@Suite struct GraphValidationTests {
    static let valid = """
        {
          "chisel": 1,
          "nodes": {
            "a": {"stage": "solid", "params": {"width": 8, "value": 0.25}},
            "b": {"stage": "add", "inputs": {"image": "a.image"}, "params": {"amount": 0.5}},
            "c": {"stage": "sum", "inputs": {"a": "a", "b": "b.image"}}
          }
        }
        """

    @Test func acceptsAValidGraphAndOrdersIt() throws {
        let plan = try compile(Self.valid)
        #expect(plan.nodes.map(\.id) == ["a", "b", "c"])
        #expect(plan.nodes[0].params["width"] == .int(8))
        #expect(plan.nodes[0].params["height"] == .int(4))  // default filled in
        #expect(plan.nodes[0].params["value"] == .float(0.25))
        #expect(plan.nodes[1].inputs["image"] == .output(node: 0, port: "image"))
        #expect(plan.nodes[0].consumers["image"] == 2)
    }

    @Test func ordersByDependencyNotFileOrder() throws {
        let plan = try compile("""
            {"chisel": 1, "nodes": {
              "last": {"stage": "add", "inputs": {"image": "mid.image"}},
              "mid": {"stage": "add", "inputs": {"image": "first.image"}},
              "first": {"stage": "solid"}
            }}
            """)
        #expect(plan.nodes.map(\.id) == ["first", "mid", "last"])
    }

    /// Each kind of error the issue lists, with the node and JSON path it must name.
    @Test(arguments: [
        // unsupported format version
        (#"{"chisel": 2, "nodes": {"a": {"stage": "solid"}}}"#, nil, "chisel", "unsupported format version 2"),
        (#"{"nodes": {"a": {"stage": "solid"}}}"#, nil, "chisel", "missing format version"),
        // unknown stage
        (#"{"chisel": 1, "nodes": {"a": {"stage": "sollid"}}}"#, "a", "nodes.a.stage", "unknown stage 'sollid' (did you mean 'solid'?)"),
        // unknown param
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid", "params": {"widht": 3}}}}"#, "a", "nodes.a.params.widht", "unknown parameter 'widht' for stage 'solid' (did you mean 'width'?)"),
        // missing param
        (#"{"chisel": 1, "nodes": {"a": {"stage": "reader"}}}"#, "a", "nodes.a.params.path", "missing required parameter 'path'"),
        // mistyped params
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid", "params": {"width": "big"}}}}"#, "a", "nodes.a.params.width", "parameter 'width' expects an int, got a string"),
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid", "params": {"width": 2.5}}}}"#, "a", "nodes.a.params.width", "expects an int, got a number"),
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid", "params": {"flag": 1}}}}"#, "a", "nodes.a.params.flag", "expects true or false, got an integer"),
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid", "params": {"kind": "odd"}}}}"#, "a", "nodes.a.params.kind", "\"odd\" is not one of \"plain\", \"fancy\""),
        // out of range
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid", "params": {"width": 0}}}}"#, "a", "nodes.a.params.width", "0 is out of range 1...4096"),
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid", "params": {"value": 1.5}}}}"#, "a", "nodes.a.params.value", "out of range 0...1"),
        // unknown source node
        (#"{"chisel": 1, "nodes": {"b": {"stage": "add", "inputs": {"image": "nowhere.image"}}}}"#, "b", "nodes.b.inputs.image", "names unknown node 'nowhere'"),
        // unknown source port
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid"}, "b": {"stage": "add", "inputs": {"image": "a.picture"}}}}"#, "b", "nodes.b.inputs.image", "node 'a' (stage 'solid') has no output 'picture'"),
        // unknown input port
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid"}, "b": {"stage": "add", "inputs": {"img": "a.image", "image": "a.image"}}}}"#, "b", "nodes.b.inputs.img", "unknown input 'img' for stage 'add'"),
        // port type mismatch
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid"}, "s": {"stage": "sum", "inputs": {"a": "a.image", "b": "a.image"}}, "b": {"stage": "add", "inputs": {"image": "s.mask"}}}}"#, "b", "nodes.b.inputs.image", "type mismatch: input 'image' takes image, but 's.mask' is mask"),
        // conditional output without its input
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid"}, "s": {"stage": "sum", "inputs": {"a": "a.image"}}, "t": {"stage": "coverage", "inputs": {"mask": "s.mask"}}}}"#, "t", "nodes.t.inputs.mask", "produced only when input 'b' of 's' is connected"),
        // required input left unconnected
        (#"{"chisel": 1, "nodes": {"b": {"stage": "add"}}}"#, "b", "nodes.b.inputs.image", "required input 'image' (image) is not connected"),
        // cycle
        (#"{"chisel": 1, "nodes": {"x": {"stage": "add", "inputs": {"image": "y.image"}}, "y": {"stage": "add", "inputs": {"image": "x.image"}}}}"#, "x", "nodes.x.inputs", "cycle: x → y → x"),
        (#"{"chisel": 1, "nodes": {"x": {"stage": "add", "inputs": {"image": "x.image"}}}}"#, "x", "nodes.x.inputs", "cycle: x → x"),
        // duplicate ids
        ("{\"chisel\": 1, \"nodes\": {\n\"a\": {\"stage\": \"solid\"},\n\"a\": {\"stage\": \"solid\"}}}", "a", "nodes.a", "duplicate node id 'a' (line 3; first defined on line 2)"),
        // structure
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid", "param": {}}}}"#, "a", "nodes.a.param", "unknown key \"param\" (did you mean 'params'?)"),
        (#"{"chisel": 1, "node": {}}"#, nil, "node", "unknown top-level key \"node\""),
        (#"{"chisel": 1, "nodes": {"a b": {"stage": "solid"}}}"#, "a b", "nodes.a b", "must be letters, digits"),
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid", "params": {"width": "${size}"}}}}"#, "a", "nodes.a.params.width", "unknown variable 'size'"),
        (#"{"chisel": 1, "nodes": {"a": {"stage": "uses_model", "inputs": {"model": "sd"}}}}"#, "a", "nodes.a.inputs.model", "unknown model 'sd'"),
        (#"{"chisel": 1, "nodes": {"a": {"stage": "solid"}, "w": {"stage": "writer", "inputs": {"image": "a.image"}, "params": {"path": "{colour}.png"}}}}"#, "w", "nodes.w.params.path", "unknown placeholder {colour}"),
        (#"[1]"#, nil, "$", "a graph is a JSON object"),
    ] as [(String, String?, String, String)])
    func reportsEachKindOfError(graph: String, node: String?, path: String, message: String) throws {
        let found = problems(graph)
        let match = found.first { $0.jsonPath == path }
        #expect(match != nil, "no problem at \(path); got \(found.map(\.description))")
        guard let match else { return }
        #expect(match.node == node)
        #expect(match.file == "test.json")
        #expect(match.message.contains(message), "\(match.message)")
    }

    @Test func reportsEveryProblemInOneRun() {
        let found = problems("""
            {
              "chisel": 1,
              "nodes": {
                "a": {"stage": "solid", "params": {"width": -1, "colour": 3}},
                "b": {"stage": "nope"},
                "c": {"stage": "add", "inputs": {"image": "ghost.image"}},
                "d": {"stage": "add"},
                "e": {"stage": "add", "inputs": {"image": "f.image"}},
                "f": {"stage": "add", "inputs": {"image": "e.image"}}
              }
            }
            """)
        let paths = Set(found.compactMap(\.jsonPath))
        #expect(paths.isSuperset(of: ["nodes.a.params.width", "nodes.a.params.colour", "nodes.b.stage",
                                      "nodes.c.inputs.image", "nodes.d.inputs.image", "nodes.e.inputs"]),
                "\(found.map(\.description))")
        #expect(found.count == 6)
        #expect(found.allSatisfy { $0.description.hasPrefix("test.json: node '") })
    }

    @Test func variablesSubstituteWithTheirTypeAndInterpolate() throws {
        let plan = try compile("""
            {"chisel": 1, "variables": {"size": 16, "tag": "v1"},
             "nodes": {"a": {"stage": "solid", "params": {"width": "${size}", "label": "run-${tag}-${size}"}}}}
            """)
        #expect(plan.nodes[0].params["width"] == .int(16))
        #expect(plan.nodes[0].params["label"] == .string("run-v1-16"))
        let overridden = try compile("""
            {"chisel": 1, "variables": {"size": 16},
             "nodes": {"a": {"stage": "solid", "params": {"width": "${size}"}}}}
            """, options: GraphOptions(workingDirectory: "/cwd", variables: ["size": .int(32)]))
        #expect(overridden.nodes[0].params["width"] == .int(32))
    }

    @Test func setOverridesParamsAndIsValidatedLikeThem() throws {
        let options = GraphOptions(workingDirectory: "/cwd", overrides: [
            try ParamOverride.parse("a.width=64"), try ParamOverride.parse("a.label=hello world"),
        ])
        let plan = try compile(Self.valid, options: options)
        #expect(plan.nodes[0].params["width"] == .int(64))
        #expect(plan.nodes[0].params["label"] == .string("hello world"))

        let bad = GraphOptions(workingDirectory: "/cwd", overrides: [
            try ParamOverride.parse("a.width=9999999"), try ParamOverride.parse("zz.width=1"),
            try ParamOverride.parse("a.nope=1"),
        ])
        let found = problems(Self.valid, options: bad).map(\.description)
        #expect(found.contains { $0.contains("--set a.width=9999999") && $0.contains("out of range") })
        #expect(found.contains { $0.contains("--set zz.width=1: no node 'zz'") })
        #expect(found.contains { $0.contains("--set a.nope=1: stage 'solid' has no parameter 'nope'") })
        #expect(throws: ChiselError.self) { try ParamOverride.parse("nodot=1") }
        #expect(throws: ChiselError.self) { try ParamOverride.parse("a.b") }
    }

    /// Relative paths: graph values against the graph's folder, --set values against the
    /// working directory, output paths of a batch under its output folder.
    @Test func resolvesRelativePathsByWhereTheyCameFrom() throws {
        let graph = """
            {"chisel": 1, "nodes": {
              "r": {"stage": "reader", "params": {"path": "in/photo.png"}},
              "w": {"stage": "writer", "inputs": {"image": "r.image"}, "params": {"path": "out/{stem}.png"}}
            }}
            """
        var options = GraphOptions(workingDirectory: "/cwd", checkInputFiles: false)
        var plan = try compile(graph, options: options)
        #expect(plan.nodes[0].params["path"] == .string("/graphs/in/photo.png"))
        #expect(plan.nodes[1].params["path"] == .string("/graphs/out/{stem}.png"))

        options.overrides = [try ParamOverride.parse("r.path=other.png"), try ParamOverride.parse("w.path=/abs/x.png")]
        plan = try compile(graph, options: options)
        #expect(plan.nodes[0].params["path"] == .string("/cwd/other.png"))
        #expect(plan.nodes[1].params["path"] == .string("/abs/x.png"))

        options.overrides = []
        options.batch = BatchBinding(outputRoot: "/results")
        plan = try compile(graph, options: options)
        #expect(plan.nodes[1].params["path"] == .string("/results/out/{stem}.png"))
        #expect(PathResolver(base: "/x").resolve("a/../b/./c.png") == "/x/b/c.png")
    }

    @Test func checksThatInputFilesExist() {
        let found = problems(#"{"chisel": 1, "nodes": {"r": {"stage": "reader", "params": {"path": "missing.png"}}}}"#)
        #expect(found.map(\.description) == ["test.json: node 'r' (nodes.r.params.path): file not found: /graphs/missing.png"])
    }

    @Test func batchPicksTheLoaderThatReceivesFiles() throws {
        let two = """
            {"chisel": 1, "nodes": {
              "r1": {"stage": "reader"}, "r2": {"stage": "reader", "params": {"path": "/etc/hostname"}},
              "s": {"stage": "sum", "inputs": {"a": "r1.image", "b": "r2.image"}},
              "w": {"stage": "writer", "inputs": {"image": "s.image"}, "params": {"path": "{stem}.png"}}
            }}
            """
        let batch = GraphOptions(workingDirectory: "/cwd", batch: BatchBinding(outputRoot: "/out"))
        // A batch must write something, or it could not tell which items are done.
        let silent = two.replacingOccurrences(of: "\"w\": {\"stage\": \"writer\"", with: "\"w\": {\"stage\": \"sum\"")
            .replacingOccurrences(of: "\"inputs\": {\"image\": \"s.image\"}, \"params\": {\"path\": \"{stem}.png\"}", with: "\"inputs\": {\"a\": \"s.image\", \"b\": \"s.image\"}")
        var named1 = batch
        named1.batch?.imageNode = "r1"
        #expect(problems(silent, options: named1).contains { $0.message.contains("the graph writes no file") })
        #expect(problems(two, options: batch).contains { $0.message.contains("several image loaders (r1, r2)") })
        var named = batch
        named.batch?.imageNode = "r1"
        #expect(try compile(two, options: named).imageLoader == "r1")
        named.batch?.imageNode = "s"
        #expect(problems(two, options: named).contains { $0.message.contains("--image-node s: node 's' is not a image loader") })
        let field = two.replacingOccurrences(of: "\"nodes\"", with: "\"batch\": {\"image\": \"r1\"}, \"nodes\"")
        #expect(try compile(field, options: batch).imageLoader == "r1")
        // Without a batch, r1 misses its path.
        #expect(problems(two).contains { $0.jsonPath == "nodes.r1.params.path" })
    }

    @Test func modelsNeedALoader() {
        let graph = #"{"chisel": 1, "models": {"sd": {"path": "/tmp"}}, "nodes": {"a": {"stage": "uses_model", "inputs": {"model": "sd"}}}}"#
        let found = problems(graph)
        #expect(found.count == 1)
        #expect(found.first?.message.contains("no model loaders") == true)
    }

    @Test func registryRejectsInconsistentSchemas() throws {
        enum Bad: Stage {
            static let schema = StageSchema("bad", "Bad default.", params: [Param<Int>("n", default: 5, range: 0...3, "N.")])
            static func run(_ call: StageCall) async throws -> StageOutputs { [] }
        }
        var registry = StageRegistry()
        #expect(throws: ChiselError.self) { try registry.register(Bad.self) }
        try registry.register(SolidStage.self)
        #expect(throws: ChiselError.self) { try registry.register(SolidStage.self) }
    }
}
