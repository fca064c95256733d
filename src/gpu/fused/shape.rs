//! Whether a model fits the fused kernel on an adapter, and the shape of the kernel that runs it.

use crate::config::MlpConfig;

/// Widest hidden layer the fused kernel runs (its weights stay in registers).
pub const MAX_HIDDEN: usize = 128;
/// Widest output layer.
pub const MAX_OUTPUT: usize = 128;
/// Most affine layers (the size of the `FusedLayers` uniform array).
pub const MAX_LAYERS: usize = 16;
/// Weights (and gradient accumulators) per lane of one block of the first layer, whose input
/// may be of any width: bounds the code and the compile time.
const INPUT_BLOCK_FMAS: usize = 128;

/// A hidden layer with at most this many slots per lane runs its forward in one group; wider
/// ones in groups of 4 slots (the unrolled body of a group: padded width × group weights).
const GROUP_SLOTS: usize = 8;
/// Weights per lane of the output layer, at most (its body is unrolled whole: the loss needs
/// every output of a row at once).
const OUTPUT_FMAS: usize = 1024;

/// How the lanes of a row group see each other's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// `subgroupBroadcast` / `subgroupAdd`: the row group is one subgroup (needs `SUBGROUP`
    /// and a fixed subgroup size).
    Subgroup,
    /// Workgroup memory and barriers: the row group is one workgroup (any adapter).
    Workgroup,
}

impl Exchange {
    /// `subgroup` or `workgroup` (logs, bench, JSON).
    pub fn name(self) -> &'static str {
        match self {
            Exchange::Subgroup => "subgroup",
            Exchange::Workgroup => "workgroup",
        }
    }
}

/// Everything the generated kernel is specialised for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FusedShape {
    /// Lanes of a row group (the subgroup size, or the workgroup size).
    pub lanes: u32,
    /// How the lanes exchange values.
    pub exchange: Exchange,
    /// Input width.
    pub input: u32,
    /// Slots per lane of the (padded) hidden width: hidden widths are padded to lanes · slots.
    pub hidden_slots: u32,
    /// Hidden layers (at least 1).
    pub hidden_layers: u32,
    /// Output width.
    pub output: u32,
    /// Slots per lane of one block of the input layer (lanes · input_block inputs per block).
    pub input_block: u32,
}

/// What an adapter offers the fused kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneSetup {
    /// Lanes per row group.
    pub lanes: u32,
    /// How they exchange values.
    pub exchange: Exchange,
}

impl LaneSetup {
    /// Subgroups of the adapter's fixed size where it has them (4 to 64 lanes), otherwise a
    /// workgroup of 8 lanes exchanging through workgroup memory.
    pub fn for_adapter(features: wgpu::Features, info: &wgpu::AdapterInfo) -> Self {
        let (min, max) = (info.subgroup_min_size, info.subgroup_max_size);
        if features.contains(wgpu::Features::SUBGROUP)
            && min == max
            && min.is_power_of_two()
            && (4..=64).contains(&min)
        {
            LaneSetup {
                lanes: min,
                exchange: Exchange::Subgroup,
            }
        } else {
            LaneSetup {
                lanes: 8,
                exchange: Exchange::Workgroup,
            }
        }
    }
}

impl FusedShape {
    /// The kernel shape for `config`, or why the model does not fit the fused kernel.
    pub fn for_model(config: &MlpConfig, setup: LaneSetup) -> Result<FusedShape, String> {
        if config.hidden.is_empty() {
            return Err("a linear model (no hidden layer) has nothing to fuse".into());
        }
        if !matches!(
            config.loss,
            crate::config::Loss::CrossEntropy | crate::config::Loss::Mse
        ) {
            return Err(format!(
                "the fused kernel computes cross-entropy and MSE only, not {}",
                config.loss
            ));
        }
        if config.dropout > 0.0 {
            return Err(format!(
                "the fused kernel has no dropout (--dropout {})",
                config.dropout
            ));
        }
        let widest = config.hidden.iter().copied().max().unwrap_or(0);
        if widest > MAX_HIDDEN {
            return Err(format!(
                "a hidden layer of width {widest} is wider than the fused kernel's {MAX_HIDDEN}"
            ));
        }
        if config.output > MAX_OUTPUT {
            return Err(format!(
                "{} outputs are more than the fused kernel's {MAX_OUTPUT}",
                config.output
            ));
        }
        if config.hidden.len() + 1 > MAX_LAYERS {
            return Err(format!(
                "{} layers are more than the fused kernel's {MAX_LAYERS}",
                config.hidden.len() + 1
            ));
        }
        let lanes = setup.lanes as usize;
        let mut hidden_slots = widest.div_ceil(lanes);
        if hidden_slots > GROUP_SLOTS {
            // Wide layers run in groups of 4 slots: pad to whole groups.
            hidden_slots = hidden_slots.div_ceil(4) * 4;
        }
        if config.output.div_ceil(lanes) * hidden_slots * lanes > OUTPUT_FMAS {
            return Err(format!(
                "{} outputs after a hidden layer of {widest} exceed the fused kernel's output layer ({OUTPUT_FMAS} weights per lane)",
                config.output
            ));
        }
        let input_block =
            (INPUT_BLOCK_FMAS / (lanes * hidden_slots)).clamp(1, config.input.div_ceil(lanes));
        Ok(FusedShape {
            lanes: setup.lanes,
            exchange: setup.exchange,
            input: config.input as u32,
            hidden_slots: hidden_slots as u32,
            hidden_layers: config.hidden.len() as u32,
            output: config.output as u32,
            input_block: input_block as u32,
        })
    }

    /// Slots per lane of the output width.
    pub fn output_slots(&self) -> u32 {
        self.output.div_ceil(self.lanes)
    }

    /// Blocks the input layer is streamed in.
    pub fn input_blocks(&self) -> u32 {
        self.input.div_ceil(self.input_block * self.lanes)
    }

    /// vec4s per lane of a hidden layer's values in a row of the chunk store.
    pub fn hidden_vec4s(&self) -> u32 {
        self.hidden_slots.div_ceil(4)
    }

    /// vec4s per lane of one row of the chunk store (every hidden layer, then the output).
    pub fn row_vec4s(&self) -> u32 {
        self.hidden_layers * self.hidden_vec4s() + self.output_slots().div_ceil(4)
    }

    /// Slots per lane of one column group of a hidden layer's forward.
    pub fn hidden_group(&self) -> u32 {
        if self.hidden_slots as usize > GROUP_SLOTS {
            4
        } else {
            self.hidden_slots
        }
    }

    /// Passes over a chunk's rows the kernel makes (an upper bound): each layer's forward and
    /// backward loop over the rows once per column group, block or input block.
    pub fn row_passes(&self) -> u32 {
        let groups = self.hidden_slots / self.hidden_group();
        let input = 2 + 2 * self.input_blocks();
        // Hidden layers: forward groups, then db, dW blocks and dX groups.
        let hidden = (self.hidden_layers - 1) * (groups + 1 + self.hidden_slots + groups);
        let output = 1 + 1 + self.hidden_slots + groups;
        input + hidden + output
    }

    /// Rows per chunk, at most: llvmpipe ends every shader loop after 65,535 iterations in
    /// total per invocation (a guard against endless loops, which silently truncated the
    /// backward pass of 8,192-row chunks), so a chunk's passes stay below that.
    pub fn max_chunk_rows(&self) -> u32 {
        (60_000 / self.row_passes()).clamp(1, 1024)
    }

    /// The padded hidden width.
    pub fn hidden_padded(&self) -> u32 {
        self.hidden_slots * self.lanes
    }

    /// `input-hidden×layers-output, lanes (exchange)`.
    pub fn describe(&self) -> String {
        format!(
            "{}-{}x{}-{}, {} lanes ({})",
            self.input,
            self.hidden_padded(),
            self.hidden_layers,
            self.output,
            self.lanes,
            self.exchange.name(),
        )
    }
}

impl FusedShape {
    /// A small shape with the workgroup exchange, valid on every adapter: the source of
    /// [`Kernel::FusedMlp`](crate::gpu::kernels::Kernel::FusedMlp) in the shader tests.
    pub fn reference() -> FusedShape {
        let config = MlpConfig::new(3, &[16, 16], 2);
        let setup = LaneSetup {
            lanes: 8,
            exchange: Exchange::Workgroup,
        };
        FusedShape::for_model(&config, setup).expect("the reference shape fits")
    }
}
