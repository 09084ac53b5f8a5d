import ChiselCore
import Foundation
import Testing

@Suite(.serialized) struct GraphRunnerTests {
    func run(_ text: String, concurrency: Int = 2, events: @escaping RunEventSink = { _ in }) async throws -> RunResult {
        let plan = try compile(text)
        let registry = try testRegistry()
        let runner = GraphRunner(plan: plan, models: ModelStore(specs: plan.models, registry: registry),
                                 maxConcurrentNodes: concurrency, events: events)
        return try await runner.run(plan.runInfo())
    }

    @Test func runsEachNodeOnceInDependencyOrder() async throws {
        SlowStage.log = RunLog()
        let events = Locked<[String]>([])
        _ = try await run("""
            {"chisel": 1, "nodes": {
              "d": {"stage": "slow", "inputs": {"image": "b.image"}, "params": {"millis": 1}},
              "b": {"stage": "slow", "inputs": {"image": "a.image"}, "params": {"millis": 1}},
              "a": {"stage": "slow", "params": {"millis": 1}},
              "c": {"stage": "slow", "inputs": {"image": "a.image"}, "params": {"millis": 1}}
            }}
            """, events: { event in
                if case .nodeStarted(let node, _) = event { events.withLock { $0.append(node) } }
            })
        let order = SlowStage.log.order
        #expect(order.count == 4)
        #expect(Set(order) == ["a", "b", "c", "d"])
        #expect(order.first == "a")
        let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        #expect(position["b"]! < position["d"]!)
        #expect(events.value.sorted() == ["a", "b", "c", "d"])
    }

    @Test func runsIndependentBranchesConcurrently() async throws {
        SlowStage.log = RunLog()
        _ = try await run("""
            {"chisel": 1, "nodes": {
              "x": {"stage": "slow", "params": {"millis": 200}},
              "y": {"stage": "slow", "params": {"millis": 200}}
            }}
            """, concurrency: 2)
        #expect(SlowStage.log.peak == 2)
        SlowStage.log = RunLog()
        _ = try await run("""
            {"chisel": 1, "nodes": {
              "x": {"stage": "slow", "params": {"millis": 20}},
              "y": {"stage": "slow", "params": {"millis": 20}}
            }}
            """, concurrency: 1)
        #expect(SlowStage.log.peak == 1)
    }

    @Test func sharesOutputsBetweenConsumers() async throws {
        let plan = try compile("""
            {"chisel": 1, "nodes": {
              "a": {"stage": "solid", "params": {"value": 0.25}},
              "b": {"stage": "add", "inputs": {"image": "a.image"}, "params": {"amount": 0.5}},
              "c": {"stage": "sum", "inputs": {"a": "a.image", "b": "b.image"}}
            }}
            """)
        // Capture the final value through a terminal node's input: run the plan and check c's sum.
        let registry = try testRegistry()
        let finished = Locked<[String: Double]>([:])
        let runner = GraphRunner(plan: plan, models: ModelStore(specs: [], registry: registry),
                                 events: { if case .nodeFinished(let n, _, let s) = $0 { finished.withLock { $0[n] = s } } })
        let result = try await runner.run(plan.runInfo())
        #expect(Set(result.nodeSeconds.keys) == ["a", "b", "c"])
        #expect(finished.value.count == 3)
    }

    @Test func aFailingNodeStopsTheRunAndIsNamed() async throws {
        do {
            _ = try await run("""
                {"chisel": 1, "nodes": {
                  "a": {"stage": "solid"},
                  "boom": {"stage": "fail", "inputs": {"image": "a.image"}},
                  "after": {"stage": "add", "inputs": {"image": "boom.image"}}
                }}
                """)
            Issue.record("the run should have failed")
        } catch let error as ChiselError {
            #expect(error.node == "boom")
            #expect(error.file == "test.json")
            #expect(error.description == "test.json: node 'boom': this stage always fails")
        }
    }

    @Test func conditionalOutputsAppearOnlyWithTheirInput() async throws {
        _ = try await run("""
            {"chisel": 1, "nodes": {
              "a": {"stage": "solid", "params": {"value": 0.75}},
              "s": {"stage": "sum", "inputs": {"a": "a.image", "b": "a.image"}},
              "t": {"stage": "sum", "inputs": {"a": "s.image"}}
            }}
            """)
    }

    @Test func plannedOutputsExpandTemplates() throws {
        let plan = try compile("""
            {"chisel": 1, "nodes": {
              "r": {"stage": "reader", "params": {"path": "/data/cat.png"}},
              "w": {"stage": "writer", "inputs": {"image": "r.image"}, "params": {"path": "/o/{stem}-{index:03}-{node}-{r.stem}.png"}}
            }}
            """, options: GraphOptions(workingDirectory: "/", checkInputFiles: false))
        #expect(plan.imageLoader == "r")
        let files = try plan.plannedOutputFiles(run: plan.runInfo(index: 7))
        #expect(files == ["/o/cat-007-w-cat.png"])
    }
}

@Suite struct PathTemplateTests {
    @Test func expandsPlaceholders() throws {
        let run = RunInfo(index: 42, stem: "photo", loadedFiles: ["mask": "/m/photo_mask.png"])
        let template = try PathTemplate("out/{stem}_{index}_{index:05}_{node}_{mask.stem}{{x}}.png")
        #expect(try template.expand(run: run, node: "save", origin: nil) == "out/photo_42_00042_save_photo_mask{x}.png")
    }

    @Test func fallsBackToTheImageOriginThenToOutput() throws {
        let template = try PathTemplate("{stem}.png")
        #expect(try template.expand(run: RunInfo(), node: "n", origin: ImageOrigin(path: "/a/b.c.jpg")) == "b.c.png")
        #expect(try template.expand(run: RunInfo(), node: "n", origin: nil) == "output.png")
    }

    @Test(arguments: ["{stem", "a}b", "{what}", "{index:x}", "{.stem}"])
    func rejectsBadTemplates(text: String) {
        #expect(throws: ChiselError.self) { try PathTemplate(text) }
    }
}

@Suite struct AtomicFileTests {
    @Test func writesAndLeavesNoTemporary() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chisel-atomic-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/sub/file.bin"
        try AtomicFile.write(Data([1, 2, 3]), to: path)
        try AtomicFile.write(Data([4, 5]), to: path)
        #expect(FileManager.default.contents(atPath: path) == Data([4, 5]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/sub") == ["file.bin"])
        // A stale temporary from a killed run is cleaned up.
        #expect(FileManager.default.createFile(atPath: folder + "/sub/.file.bin.999.chisel-tmp", contents: Data([9])))
        #expect(AtomicFile.removeStaleTemporaries(in: folder + "/sub") == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/sub") == ["file.bin"])
    }

    @Test func failsWithTheFileNamed() {
        #expect(throws: ChiselError.self) { try AtomicFile.write(Data([1]), to: "/proc/version/not-a-folder/x") }
    }
}
