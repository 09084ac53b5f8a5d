import Foundation

/// Batch loaders, input files that must exist, and output path templates.
extension GraphCompiler {
    func isBatchSupplied(node: String, schema: StageSchema, param: String) -> Bool {
        guard let batch = options.batch, let files = schema.receivesFiles, files.param == param else { return false }
        return files.role == .image || batch.withMasks
    }

    mutating func chooseLoaders(_ drafts: [NodeDraft], batchField: (image: String?, mask: String?))
        -> (image: String?, mask: String?)
    {
        func candidates(_ role: FileRole) -> [String] {
            drafts.filter { $0.stage?.schema.receivesFiles?.role == role }.map(\.id)
        }
        func pick(_ role: FileRole, flag: String?, field: String?, required: Bool) -> String? {
            let all = candidates(role)
            if let named = flag ?? field {
                let origin = flag != nil ? "--\(role.rawValue)-node \(named)" : "batch.\(role.rawValue)"
                guard all.contains(named) else {
                    let message = drafts.contains(where: { $0.id == named })
                        ? "node '\(named)' is not a \(role.rawValue) loader"
                        : "no node '\(named)'"
                    if flag != nil {
                        errors.append(ChiselError(.invalidArgument, "\(origin): \(message)", file: file))
                    } else {
                        report(message, at: origin)
                    }
                    return nil
                }
                return named
            }
            if all.count == 1 { return all[0] }
            if required {
                if all.isEmpty {
                    report("a batch needs a \(role.rawValue) loader node, and this graph has none", at: "nodes")
                } else {
                    report("several \(role.rawValue) loaders (\(all.joined(separator: ", "))); name the one that receives "
                           + "the files with \"batch\": {\"\(role.rawValue)\": ...} or --\(role.rawValue)-node", at: "batch")
                }
            }
            return nil
        }
        let batch = options.batch
        let image = pick(.image, flag: batch?.imageNode, field: batchField.image, required: batch != nil)
        let mask = pick(.mask, flag: batch?.maskNode, field: batchField.mask, required: batch?.withMasks == true)
        return (image, mask)
    }

    mutating func checkInputFiles(_ drafts: [NodeDraft], loaders: (image: String?, mask: String?)) {
        guard options.checkInputFiles else { return }
        for draft in drafts {
            guard let schema = draft.stage?.schema else { continue }
            for spec in schema.params {
                guard case .path(.input) = spec.type, case .string(let path)? = draft.params[spec.name] else { continue }
                if options.batch != nil, let files = schema.receivesFiles, files.param == spec.name,
                    draft.id == loaders.image || draft.id == loaders.mask
                {
                    continue
                }
                var isFolder: ObjCBool = false
                if !FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
                    report("file not found: \(path)", node: draft.id, at: "\(draft.path).params.\(spec.name)", code: .io)
                } else if isFolder.boolValue {
                    report("\(path) is a folder, not a file", node: draft.id, at: "\(draft.path).params.\(spec.name)", code: .io)
                }
            }
        }
    }

    mutating func checkTemplates(_ drafts: [NodeDraft]) {
        let loaderIDs = Set(drafts.filter { $0.stage?.schema.receivesFiles != nil }.map(\.id))
        for draft in drafts {
            guard let schema = draft.stage?.schema else { continue }
            for spec in schema.params {
                guard case .path(.output) = spec.type, case .string(let text)? = draft.params[spec.name] else { continue }
                let at = "\(draft.path).params.\(spec.name)"
                do {
                    let template = try PathTemplate(text)
                    for node in template.referencedNodes where !loaderIDs.contains(node) {
                        report("{\(node).stem} names no loader node", node: draft.id, at: at, code: .invalidParameter)
                    }
                } catch let error as ChiselError {
                    report(error.message, node: draft.id, at: at, code: .invalidParameter)
                } catch {
                    report("\(error)", node: draft.id, at: at, code: .invalidParameter)
                }
            }
        }
    }
}
