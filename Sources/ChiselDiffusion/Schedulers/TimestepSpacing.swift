import ChiselBase
import Foundation

/// numpy's float64 range helpers, reproduced to the bit because diffusers builds timesteps with them.
enum NumPy {
    /// `np.linspace(start, stop, num)`: `i·step + start`, the last one exactly `stop`; one sample is `[start]`.
    static func linspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
        guard num > 1 else { return num == 1 ? [start] : [] }
        let step = (stop - start) / Double(num - 1)
        var out = (0..<num).map { Double($0) * step + start }
        out[num - 1] = stop
        return out
    }

    /// `np.arange(start, stop, step)` for floats: length ceil((stop-start)/step), values `start + i·delta`
    /// with `delta = (start + step) - start`, as numpy's fill does.
    static func arange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
        let length = max(Int(((stop - start) / step).rounded(.up)), 0)
        guard length > 0 else { return [] }
        let delta = (start + step) - start
        return (0..<length).map { $0 == 0 ? start : start + Double($0) * delta }
    }

    /// `np.round`: half to even.
    static func round(_ x: Double) -> Double { x.rounded(.toNearestOrEven) }

    /// `np.interp(x, arange(len(fp)), fp)` in float64 (numpy's slope formula, exact at the nodes).
    static func interp(_ x: Double, _ fp: [Float]) -> Double {
        let last = fp.count - 1
        if x <= 0 { return Double(fp[0]) }
        if x >= Double(last) { return Double(fp[last]) }
        let j = Int(x.rounded(.down))
        if Double(j) == x { return Double(fp[j]) }
        let slope = (Double(fp[j + 1]) - Double(fp[j])) / 1.0
        return slope * (x - Double(j)) + Double(fp[j])
    }
}

/// The timestep spacings of diffusers' `set_timesteps` (Lin et al. 2023, Table 2), shared by all classes.
/// Classes differ in how many points they take (`n` or `n + 1` then drop the last) and in the
/// dtype they keep; those differences stay in the classes' own files.
enum Spacing {
    /// `np.linspace(0, last, num)[::-1]`: descending, not rounded.
    static func linspace(last: Double, count: Int) -> [Double] {
        NumPy.linspace(0, last, count).reversed()
    }

    /// `(np.arange(0, count) * ratio).round()[::-1] + offset`: descending integers.
    static func leading(count: Int, ratio: Int, offset: Int) -> [Double] {
        (0..<count).reversed().map { Double($0 * ratio + offset) }
    }

    /// `np.arange(from, 0, -ratio).round() - 1`: descending integers.
    static func trailing(from start: Int, ratio: Double) -> [Double] {
        NumPy.arange(Double(start), 0, -ratio).map { NumPy.round($0) - 1 }
    }

    /// The float-timestep classes' rule (Euler, Euler ancestral, LMS, Heun): `n` points, float32.
    static func discreteFloat(_ spacing: TimestepSpacing, count: Int, trainSteps: Int, offset: Int) -> [Double] {
        switch spacing {
        case .linspace:
            // np.linspace(..., dtype=float32): computed in float64, stored as float32.
            return linspace(last: Double(trainSteps - 1), count: count).map { Double(Float($0)) }
        case .leading:
            return leading(count: count, ratio: trainSteps / count, offset: offset)
        case .trailing:
            return trailing(from: trainSteps, ratio: Double(trainSteps) / Double(count))
        }
    }

    /// The integer-timestep classes' rule (DDIM, DDPM): `n` points, rounded.
    static func discreteInteger(_ spacing: TimestepSpacing, count: Int, trainSteps: Int, offset: Int) -> [Double] {
        switch spacing {
        case .linspace: return linspace(last: Double(trainSteps - 1), count: count).map(NumPy.round)
        case .leading: return leading(count: count, ratio: trainSteps / count, offset: offset)
        case .trailing: return trailing(from: trainSteps, ratio: Double(trainSteps) / Double(count))
        }
    }

    /// The multistep classes' rule (DPM-Solver, UniPC): `n + 1` points with the last dropped, rounded;
    /// `last` is `num_train_timesteps` less the λ-clipped tail.
    static func multistep(_ spacing: TimestepSpacing, count: Int, trainSteps: Int, last: Int, offset: Int) -> [Double] {
        switch spacing {
        case .linspace:
            return Array(linspace(last: Double(last - 1), count: count + 1).map(NumPy.round).dropLast())
        case .leading:
            return Array(leading(count: count + 1, ratio: last / (count + 1), offset: offset).dropLast())
        case .trailing:
            return trailing(from: last, ratio: Double(trainSteps) / Double(count))
        }
    }
}
