import ChiselBase
import Foundation
import Testing
@testable import ChiselDiffusion

@Suite struct SchedulerKindTests {
    @Test func everyKindHasOneRow() {
        for kind in SchedulerKind.allCases {
            #expect(SchedulerKind.table.filter { $0.kind == kind }.count == 1, "\(kind)")
        }
        // A name (ignoring case) may repeat within a row (A1111's "DDIM" is `ddim`) but never across rows.
        for row in SchedulerKind.table {
            for name in row.kind.names {
                let owners = SchedulerKind.table.filter { $0.kind.names.contains { $0.lowercased() == name.lowercased() } }
                #expect(owners.count == 1, "\(name) names \(owners.map(\.kind))")
            }
        }
    }

    @Test(arguments: [
        ("euler", SchedulerKind.euler), ("Euler a", .eulerAncestral), ("euler_ancestral", .eulerAncestral),
        ("EULER_A", .eulerAncestral), ("DPM++ 2M Karras", .dpmpp2MKarras), ("dpmpp_2m", .dpmpp2M),
        ("DPM++ 2M SDE Karras", .dpmpp2MSDEKarras), ("dpmpp_2m_sde", .dpmpp2MSDE), ("LMS Karras", .lmsKarras),
        ("uni_pc", .unipc), ("UniPC", .unipc), ("lcm", .lcm), ("DDIM", .ddim), ("ddpm", .ddpm), ("Heun", .heun),
        ("PLMS", .pndm), ("lms", .lms),
    ])
    func resolvesNames(name: String, kind: SchedulerKind) throws {
        #expect(try SchedulerKind(named: name) == kind)
    }

    @Test func unknownNameListsAcceptedOnes() {
        do {
            _ = try SchedulerKind(named: "dpm_fast")
            Issue.record("should fail")
        } catch let error as ChiselError {
            #expect(error.code == .invalidParameter)
            #expect(error.message.contains("dpmpp_2m_karras") && error.message.contains("Euler a"))
        } catch { Issue.record("\(error)") }
    }

    @Test func classesAndOverrides() {
        #expect(SchedulerKind.dpmpp2MSDEKarras.schedulerClass == .dpmSolverMultistep)
        #expect(SchedulerKind.dpmpp2MSDEKarras.overrides.algorithmType == .sdeDPMSolverPlusPlus)
        #expect(SchedulerKind.dpmpp2MSDEKarras.overrides.useKarrasSigmas == true)
        #expect(SchedulerKind.eulerAncestral.schedulerClass.rawValue == "EulerAncestralDiscreteScheduler")
    }

    @Test func declaredByClassName() throws {
        var config = SchedulerConfig()
        config.className = "PNDMScheduler"
        #expect(try SchedulerKind.declared(by: config) == .pndm)
        config.className = "DPMSolverMultistepScheduler"
        #expect(try SchedulerKind.declared(by: config) == .dpmpp2M)
        config.useKarrasSigmas = true
        #expect(try SchedulerKind.declared(by: config) == .dpmpp2MKarras)
        config.algorithmType = .sdeDPMSolverPlusPlus
        #expect(try SchedulerKind.declared(by: config) == .dpmpp2MSDEKarras)
        config.className = "FlowMatchEulerDiscreteScheduler"
        #expect(throws: ChiselError.self) { try SchedulerKind.declared(by: config) }
    }

    /// Like `X.from_config(pipe.scheduler.config)`: the user's class, the checkpoint's betas and prediction type.
    @Test func swappingKeepsBetasAndPredictionType() throws {
        var config = SchedulerConfig()
        config.className = "DDIMScheduler"
        config.betaSchedule = .scaledLinear
        config.betaStart = 0.00085
        config.betaEnd = 0.012
        config.predictionType = .vPrediction
        config.stepsOffset = 1
        let scheduler = try SchedulerKind.dpmpp2MKarras.makeScheduler(config: config)
        let dpm = try #require(scheduler as? DPMSolverMultistepScheduler)
        #expect(dpm.predictionType == .vPrediction)
        #expect(dpm.useKarras)
        let ddim = try DDIMScheduler(config: config)
        #expect(dpm.noiseSchedule == ddim.noiseSchedule)
        // The user's kind wins over the checkpoint's class-specific keys.
        config.useKarrasSigmas = false
        let again = try #require(try SchedulerKind.dpmpp2MKarras.makeScheduler(config: config) as? DPMSolverMultistepScheduler)
        #expect(again.useKarras)
    }
}

/// AUTOMATIC1111's sampler labels, `k_*` aliases and schedule types.
@Suite struct A1111SamplerNameTests {
    @Test(arguments: [("k_euler_a", SchedulerKind.eulerAncestral), ("k_euler", .euler), ("k_lms", .lms), ("k_heun", .heun),
                      ("k_dpmpp_2m", .dpmpp2M), ("k_dpmpp_2m_ka", .dpmpp2MKarras), ("DPM++ 2M SDE", .dpmpp2MSDE), ("PLMS", .pndm)])
    func labelsAndAliasesName(_ name: String, _ kind: SchedulerKind) throws {
        #expect(try SchedulerKind(named: name) == kind)
    }

    @Test(arguments: ["DPM++ SDE", "DPM++ 2S a", "DPM2", "DPM2 a Karras", "Restart", "DDIM CFG++", "DPM fast"])
    func samplersChiselLacksAreRefusedByName(_ name: String) {
        do {
            _ = try SchedulerKind(named: name)
            Issue.record("\(name) was accepted")
        } catch let error as ChiselError {
            #expect(error.message.contains("AUTOMATIC1111's sampler") && error.message.contains("not implemented"), "\(error)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func scheduleTypesPickTheVariant() throws {
        #expect(try SchedulerKind.dpmpp2M.withScheduleType("Karras") == .dpmpp2MKarras)
        #expect(try SchedulerKind.dpmpp2MKarras.withScheduleType("uniform") == .dpmpp2M)
        #expect(try SchedulerKind.euler.withScheduleType("Automatic") == .euler)
        #expect(throws: ChiselError.self) { try SchedulerKind.ddim.withScheduleType("karras") }
        #expect(throws: ChiselError.self) { try SchedulerKind.euler.withScheduleType("Exponential") }
        // What Chisel writes reads back as the kind it ran.
        for kind in SchedulerKind.allCases {
            guard let type = kind.a1111ScheduleType else { continue }
            #expect(try SchedulerKind(named: kind.a1111Sampler).withScheduleType(type) == kind, "\(kind)")
        }
    }
}
