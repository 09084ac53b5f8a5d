import ChiselCore

/// The editor-format `workflow` ComfyUI's frontend loads when a PNG is dropped on it (nodes with
/// positions, typed slots and widget values in the order its node definitions list them, and
/// links), built from an API-format `prompt` of the core nodes `ComfyExport` writes.
enum ComfyWorkflow {
    struct NodeType {
        var inputs: [(name: String, type: String)]
        /// Widget inputs in the frontend's order; `control_after_generate` follows a seed.
        var widgets: [String]
        var outputs: [(name: String, type: String)]
    }

    static let sampling: [(String, String)] = [("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                                               ("latent_image", "LATENT")]
    static let types: [String: NodeType] = [
        "CheckpointLoaderSimple": NodeType(inputs: [], widgets: ["ckpt_name"], outputs: [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")]),
        "LoraLoader": NodeType(inputs: [("model", "MODEL"), ("clip", "CLIP")], widgets: ["lora_name", "strength_model", "strength_clip"],
                               outputs: [("MODEL", "MODEL"), ("CLIP", "CLIP")]),
        "CLIPSetLastLayer": NodeType(inputs: [("clip", "CLIP")], widgets: ["stop_at_clip_layer"], outputs: [("CLIP", "CLIP")]),
        "CLIPTextEncode": NodeType(inputs: [("clip", "CLIP")], widgets: ["text"], outputs: [("CONDITIONING", "CONDITIONING")]),
        "LoadImage": NodeType(inputs: [], widgets: ["image", "upload"], outputs: [("IMAGE", "IMAGE"), ("MASK", "MASK")]),
        "VAEEncode": NodeType(inputs: [("pixels", "IMAGE"), ("vae", "VAE")], widgets: [], outputs: [("LATENT", "LATENT")]),
        "EmptyLatentImage": NodeType(inputs: [], widgets: ["width", "height", "batch_size"], outputs: [("LATENT", "LATENT")]),
        "KSampler": NodeType(inputs: sampling, widgets: ["seed", "control_after_generate", "steps", "cfg", "sampler_name", "scheduler",
                                                         "denoise"], outputs: [("LATENT", "LATENT")]),
        "KSamplerAdvanced": NodeType(inputs: sampling, widgets: ["add_noise", "noise_seed", "control_after_generate", "steps", "cfg",
                                                                 "sampler_name", "scheduler", "start_at_step", "end_at_step",
                                                                 "return_with_leftover_noise"], outputs: [("LATENT", "LATENT")]),
        "VAEDecode": NodeType(inputs: [("samples", "LATENT"), ("vae", "VAE")], widgets: [], outputs: [("IMAGE", "IMAGE")]),
        "SaveImage": NodeType(inputs: [("images", "IMAGE")], widgets: ["filename_prefix"], outputs: []),
    ]

    /// The workflow for `prompt`, or nil when it holds a node this table does not describe.
    static func workflow(for prompt: JSONValue) -> JSONValue? {
        guard let members = prompt.members else { return nil }
        var ids: [String: Int] = [:]
        for (index, member) in members.enumerated() { ids[member.key] = Int(member.key) ?? index + 1 }
        // Links, in the order the inputs name them.
        struct Link { var id: Int; var from: Int; var slot: Int; var to: Int; var toSlot: Int; var type: String }
        var links: [Link] = []
        var depth: [Int: Int] = [:]
        var incoming: [Int: [String: Int]] = [:]   // node → input name → link id
        var outgoing: [Int: [Int: [Int]]] = [:]    // node → output slot → link ids
        for member in members {
            guard let type = member.value["class_type"]?.stringValue, let spec = types[type], let id = ids[member.key] else { return nil }
            for (slot, input) in spec.inputs.enumerated() {
                guard case .array(let link)? = member.value["inputs"]?[input.name], link.count == 2,
                      let source = link[0].stringValue.flatMap({ ids[$0] }), let outSlot = link[1].intValue else { continue }
                let linkID = links.count + 1
                links.append(Link(id: linkID, from: source, slot: outSlot, to: id, toSlot: slot, type: input.type))
                incoming[id, default: [:]][input.name] = linkID
                outgoing[source, default: [:]][outSlot, default: []].append(linkID)
            }
        }
        // Columns by the longest path from a source, so links run left to right.
        func level(_ id: Int, _ seen: Set<Int> = []) -> Int {
            if let known = depth[id] { return known }
            guard !seen.contains(id) else { return 0 }
            let sources = links.filter { $0.to == id }.map(\.from)
            let value = sources.map { level($0, seen.union([id])) + 1 }.max() ?? 0
            depth[id] = value
            return value
        }
        var rows: [Int: Int] = [:]
        var nodes: [JSONValue] = []
        for (order, member) in members.enumerated() {
            guard let type = member.value["class_type"]?.stringValue, let spec = types[type], let id = ids[member.key] else { return nil }
            let column = level(id)
            let row = rows[column, default: 0]
            rows[column] = row + 1
            let widgets: [JSONValue] = spec.widgets.map { name in
                switch name {
                case "control_after_generate": return "fixed"
                case "upload": return "image"
                default: return member.value["inputs"]?[name] ?? .null
                }
            }
            let inputs: [JSONValue] = spec.inputs.map { input in
                .object([JSONMember(key: "name", value: .string(input.name)), JSONMember(key: "type", value: .string(input.type)),
                         JSONMember(key: "link", value: incoming[id]?[input.name].map { .int($0) } ?? .null)])
            }
            let outputs: [JSONValue] = spec.outputs.enumerated().map { slot, output in
                .object([JSONMember(key: "name", value: .string(output.name)), JSONMember(key: "type", value: .string(output.type)),
                         JSONMember(key: "links", value: .array((outgoing[id]?[slot] ?? []).map { .int($0) })),
                         JSONMember(key: "slot_index", value: .int(slot))])
            }
            nodes.append(.object([
                JSONMember(key: "id", value: .int(id)), JSONMember(key: "type", value: .string(type)),
                JSONMember(key: "pos", value: .array([.int(40 + 380 * column), .int(40 + 300 * row)])),
                JSONMember(key: "size", value: .array([.int(type == "CLIPTextEncode" ? 400 : 320), .int(type.hasPrefix("KSampler") ? 262 : 120)])),
                JSONMember(key: "flags", value: .object([])), JSONMember(key: "order", value: .int(order)), JSONMember(key: "mode", value: .int(0)),
                JSONMember(key: "inputs", value: .array(inputs)), JSONMember(key: "outputs", value: .array(outputs)),
                JSONMember(key: "properties", value: .object([JSONMember(key: "Node name for S&R", value: .string(type))])),
                JSONMember(key: "widgets_values", value: .array(widgets)),
            ]))
        }
        return .object([
            JSONMember(key: "last_node_id", value: .int(ids.values.max() ?? 0)),
            JSONMember(key: "last_link_id", value: .int(links.count)),
            JSONMember(key: "nodes", value: .array(nodes)),
            JSONMember(key: "links", value: .array(links.map { link in
                .array([.int(link.id), .int(link.from), .int(link.slot), .int(link.to), .int(link.toSlot), .string(link.type)])
            })),
            JSONMember(key: "groups", value: .array([])), JSONMember(key: "config", value: .object([])),
            JSONMember(key: "extra", value: .object([])), JSONMember(key: "version", value: .double(0.4)),
        ])
    }
}
