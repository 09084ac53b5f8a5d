import ChiselBase
extension ConfigReader {
    /// The block keys diffusers' `Encoder` / `Decoder` pair takes (AutoencoderKL, VQModel): one
    /// `DownEncoderBlock2D` and one `UpDecoderBlock2D` per `block_out_channels` entry, GroupNorm
    /// groups dividing every width, SiLU.
    func checkAutoencoderBlocks(blockOutChannels: [Int], normGroups: Int) throws {
        let down = try strings("down_block_types", default: ["DownEncoderBlock2D"])
        let up = try strings("up_block_types", default: ["UpDecoderBlock2D"])
        guard down.count == blockOutChannels.count, down.allSatisfy({ $0 == "DownEncoderBlock2D" }) else {
            throw failure("down_block_types", "must be one DownEncoderBlock2D per block_out_channels entry")
        }
        guard up.count == blockOutChannels.count, up.allSatisfy({ $0 == "UpDecoderBlock2D" }) else {
            throw failure("up_block_types", "must be one UpDecoderBlock2D per block_out_channels entry")
        }
        guard blockOutChannels.allSatisfy({ $0 % normGroups == 0 }) else {
            throw failure("norm_num_groups", "\(normGroups) does not divide every block_out_channels entry")
        }
        let act = try string("act_fn", default: "silu")
        guard act == "silu" else { throw failure("act_fn", "'\(act)' is not supported") }
    }
}
