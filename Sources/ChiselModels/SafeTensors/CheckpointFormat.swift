import ChiselBase
import Foundation

/// Recognises checkpoint formats Chisel will not open.
public enum CheckpointFormat {
    static let pickleExtensions: Set<String> = ["ckpt", "pt", "pth", "bin", "pkl", "pickle"]

    /// Refuses pickle checkpoints by extension or content: unpickling can run arbitrary code.
    public static func refuseUnsafe(_ path: String) throws {
        let ext = (path as NSString).pathExtension.lowercased()
        var looksPickled = pickleExtensions.contains(ext)
        if !looksPickled, let handle = FileHandle(forReadingAtPath: path) {
            let head = [UInt8]((try? handle.read(upToCount: 9)) ?? Data())
            let size = (try? handle.seekToEnd()) ?? 0
            try? handle.close()
            // A raw pickle starts with PROTO (0x80) and a protocol number; torch.save writes a zip.
            // A safetensors header of 0x2_80–0x5_80 bytes starts the same way, but then has its
            // JSON's "{" at byte 8 and a length that fits the file.
            var length: UInt64 = 0
            for (i, byte) in head.prefix(8).enumerated() { length |= UInt64(byte) << (8 * UInt64(i)) }
            let safetensors = head.count == 9 && head[8] == UInt8(ascii: "{") && length <= size - min(size, 8)
            if head.count >= 2, head[0] == 0x80, (2...5).contains(head[1]), !safetensors { looksPickled = true }
            if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) { looksPickled = true }
        }
        if looksPickled {
            throw ChiselErrorFactory.model(
                "refusing a pickle checkpoint: loading it can execute arbitrary code. Convert it to safetensors "
                + "once, in a sandbox you trust, e.g. with Python: `import torch, safetensors.torch; "
                + "sd = torch.load(PATH, map_location='cpu', weights_only=True); sd = sd.get('state_dict', sd); "
                + "safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, 'model.safetensors')`",
                path)
        }
    }
}
