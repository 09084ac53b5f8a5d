/// The scheduler (sampler) a schedule belongs to, by its Chisel name.
public enum SchedulerKind: String, Sendable, CaseIterable {
    case ddim, ddpm, pndm, lms, euler
    case eulerAncestral = "euler_a"
    case heun
    case dpmpp2M = "dpmpp_2m"
    case dpmpp2MKarras = "dpmpp_2m_karras"
    case dpmpp2MSDEKarras = "dpmpp_2m_sde_karras"
    case unipc, lcm
}
