import Foundation

/// One input of a batch: an image file and, with a masks folder, its same-named mask.
public struct BatchItem: Sendable, Equatable {
    public var index: Int
    public var image: String
    public var mask: String?
    /// Whether a mask was asked for (`--masks`): an item without one then fails.
    public var expectsMask: Bool
    public var stem: String { ImageOrigin(path: image).stem }
    /// The image's path relative to the input folder (which is read flat: its file name), the
    /// key that assigns the item to a shard.
    public var relativePath: String { (image as NSString).lastPathComponent }

    public init(index: Int, image: String, mask: String? = nil, expectsMask: Bool? = nil) {
        self.index = index
        self.image = image
        self.mask = mask
        self.expectsMask = expectsMask ?? (mask != nil)
    }

    /// The file name endings a batch picks up.
    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "jpe"]

    /// The image files of `folder` in name order (hidden files skipped), with their masks from
    /// `masks` matched by stem (`photo.jpg` ↔ `photo.png`). An image without a mask gets none;
    /// the run reports it.
    public static func list(folder: String, masks: String? = nil) throws -> [BatchItem] {
        let files = try imageFiles(in: folder)
        var maskByStem: [String: String] = [:]
        if let masks {
            for path in try imageFiles(in: masks) {
                let stem = ImageOrigin(path: path).stem
                if maskByStem[stem] == nil { maskByStem[stem] = path }
            }
        }
        return files.enumerated().map { index, path in
            BatchItem(index: index, image: path, mask: masks == nil ? nil : maskByStem[ImageOrigin(path: path).stem],
                      expectsMask: masks != nil)
        }
    }

    private static func imageFiles(in folder: String) throws -> [String] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw ChiselError(.io, "not a folder", file: folder)
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw ChiselError(.io, "cannot list folder", file: folder, cause: (error as NSError).localizedDescription)
        }
        let root = URL(fileURLWithPath: folder).standardizedFileURL.path
        return names.filter { name in
            !name.hasPrefix(".") && imageExtensions.contains((name as NSString).pathExtension.lowercased())
        }
        .sorted()
        .map { root + "/" + $0 }
    }
}
