/// The ControlNets a denoise applies, each with its control image: the chain `controlnet` nodes
/// build (ComfyUI's Apply ControlNet chain, diffusers' MultiControlNet), in the order applied;
/// their residuals are summed.
public struct Control: Sendable {
    /// One ControlNet with its control image and weights.
    public struct Unit: Sendable {
        /// The loaded ControlNet (`controlnet` models of the graph's models section).
        public var model: any LoadedModel
        /// The control image, in [0, 1]; resized to the latent's pixel size when they differ.
        public var image: Image
        /// The inpaint ControlNet's condition: pixels where the mask is over 0.5 are −1.
        public var mask: Mask?
        /// The multiplier of the residuals (`controlnet_conditioning_scale`).
        public var scale: Double
        /// The share of the steps, from the first, where the ControlNet starts and stops
        /// (`control_guidance_start`, `control_guidance_end`).
        public var start: Double
        public var end: Double
        /// Guess mode: residuals for the prompt's half of the batch only, weighted from 0.1 at
        /// the first skip connection to 1 at the mid block.
        public var guessMode: Bool
        /// The preprocessor that made the image, as AUTOMATIC1111's ControlNet extension names
        /// it in the infotext (`canny`, `tile_resample`, `inpaint_only`, `none`).
        public var module: String

        public init(model: any LoadedModel, image: Image, mask: Mask? = nil, scale: Double = 1, start: Double = 0,
                    end: Double = 1, guessMode: Bool = false, module: String = "none") {
            self.model = model
            self.image = image
            self.mask = mask
            self.scale = scale
            self.start = start
            self.end = end
            self.guessMode = guessMode
            self.module = module
        }

        /// Whether the unit acts at loop index `i` of `count` steps, as diffusers'
        /// `controlnet_keep`: not where i/count < start or (i + 1)/count > end.
        public func acts(atStep i: Int, of count: Int) -> Bool {
            !(Double(i) / Double(count) < start || Double(i + 1) / Double(count) > end)
        }
    }

    public var units: [Unit]

    public init(units: [Unit]) {
        self.units = units
    }
}
