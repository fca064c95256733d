//! Every WGSL kernel in one enum: its source, entry point and explicit bind-group layout.
//!
//! Pipelines are specialised by WGSL `override` constants (activation id and parameter) and
//! cached by [`PipelineKey`] in the [`GpuContext`](crate::gpu::GpuContext).

use crate::error::{Error, Result};

/// `shaders/activations.wgsl`, prepended to kernels that apply an activation.
pub const ACTIVATIONS_WGSL: &str = include_str!("../../shaders/activations.wgsl");
/// `shaders/elementwise.wgsl`.
pub const ELEMENTWISE_WGSL: &str = include_str!("../../shaders/elementwise.wgsl");

/// `shaders/affine_act.wgsl`.
pub const AFFINE_ACT_WGSL: &str = include_str!("../../shaders/affine_act.wgsl");
/// `shaders/affine_backward.wgsl`.
pub const AFFINE_BACKWARD_WGSL: &str = include_str!("../../shaders/affine_backward.wgsl");
/// `shaders/affine_vec4.wgsl`.
pub const AFFINE_VEC4_WGSL: &str = include_str!("../../shaders/affine_vec4.wgsl");
/// `shaders/loss.wgsl`.
pub const LOSS_WGSL: &str = include_str!("../../shaders/loss.wgsl");
/// `shaders/optim.wgsl`.
pub const OPTIM_WGSL: &str = include_str!("../../shaders/optim.wgsl");
/// `shaders/gather.wgsl`.
pub const GATHER_WGSL: &str = include_str!("../../shaders/gather.wgsl");

/// Every shader file, by name, as it is on disk (for validation tests).
pub const SHADER_FILES: &[(&str, &str)] = &[
    ("activations.wgsl", ACTIVATIONS_WGSL),
    ("elementwise.wgsl", ELEMENTWISE_WGSL),
    ("affine_act.wgsl", AFFINE_ACT_WGSL),
    ("affine_backward.wgsl", AFFINE_BACKWARD_WGSL),
    ("affine_vec4.wgsl", AFFINE_VEC4_WGSL),
    ("loss.wgsl", LOSS_WGSL),
    ("optim.wgsl", OPTIM_WGSL),
    ("gather.wgsl", GATHER_WGSL),
];

/// How a kernel uses one binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
    /// `var<uniform>`.
    Uniform,
}

/// A compute kernel: one entry point of one shader file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kernel {
    /// y = f(x) over a vec4 buffer.
    ActForward,
    /// dx = dy · f'(z) over vec4 buffers.
    ActBackward,
    /// y = x: the bandwidth baseline.
    Copy,
    /// Fused layer forward: Z = X·W + b, Y = act(Z).
    AffineForward,
    /// dW = Xᵀ·dZ and db = Σ dZ.
    GradWeights,
    /// dZ_prev = (dZ·Wᵀ) ⊙ act'(Z_prev).
    GradInput,
    /// [`Kernel::AffineForward`] with vec4 columns (fan_out a multiple of 4).
    AffineForwardVec4,
    /// [`Kernel::GradWeights`] with vec4 columns (fan_out a multiple of 4).
    GradWeightsVec4,
    /// Softmax cross-entropy or MSE, with dLoss/dlogits and running metrics.
    Loss,
    /// Advances the optimizer's step counter.
    OptTick,
    /// One optimizer update over the flat parameter buffer.
    OptUpdate,
    /// Batch gather from the resident dataset by sample index.
    Gather,
}

impl Kernel {
    /// Every kernel.
    pub const ALL: &'static [Kernel] = &[
        Kernel::ActForward,
        Kernel::ActBackward,
        Kernel::Copy,
        Kernel::AffineForward,
        Kernel::GradWeights,
        Kernel::GradInput,
        Kernel::AffineForwardVec4,
        Kernel::GradWeightsVec4,
        Kernel::Loss,
        Kernel::OptTick,
        Kernel::OptUpdate,
        Kernel::Gather,
    ];

    /// A short name (labels, error messages).
    pub fn name(self) -> &'static str {
        match self {
            Kernel::ActForward => "elementwise.forward",
            Kernel::ActBackward => "elementwise.backward",
            Kernel::Copy => "elementwise.copy",
            Kernel::AffineForward => "affine_act.forward",
            Kernel::GradWeights => "affine_backward.grad_weights",
            Kernel::GradInput => "affine_backward.grad_input",
            Kernel::AffineForwardVec4 => "affine_vec4.forward",
            Kernel::GradWeightsVec4 => "affine_vec4.grad_weights",
            Kernel::Loss => "loss.loss",
            Kernel::OptTick => "optim.tick",
            Kernel::OptUpdate => "optim.update",
            Kernel::Gather => "gather.gather",
        }
    }

    /// The WGSL entry point.
    pub fn entry(self) -> &'static str {
        match self {
            Kernel::ActForward => "forward",
            Kernel::ActBackward => "backward",
            Kernel::Copy => "copy",
            Kernel::AffineForward => "forward",
            Kernel::GradWeights => "grad_weights",
            Kernel::GradInput => "grad_input",
            Kernel::AffineForwardVec4 => "forward",
            Kernel::GradWeightsVec4 => "grad_weights",
            Kernel::Loss => "loss",
            Kernel::OptTick => "tick",
            Kernel::OptUpdate => "update",
            Kernel::Gather => "gather",
        }
    }

    /// The full source handed to the compiler (snippets prepended).
    pub fn source(self) -> String {
        match self {
            Kernel::ActForward | Kernel::ActBackward | Kernel::Copy => {
                format!("{ACTIVATIONS_WGSL}\n{ELEMENTWISE_WGSL}")
            }
            Kernel::AffineForward => format!("{ACTIVATIONS_WGSL}\n{AFFINE_ACT_WGSL}"),
            Kernel::GradWeights | Kernel::GradInput => {
                format!("{ACTIVATIONS_WGSL}\n{AFFINE_BACKWARD_WGSL}")
            }
            Kernel::AffineForwardVec4 | Kernel::GradWeightsVec4 => {
                format!("{ACTIVATIONS_WGSL}\n{AFFINE_VEC4_WGSL}")
            }
            Kernel::Loss => LOSS_WGSL.to_string(),
            Kernel::OptTick | Kernel::OptUpdate => OPTIM_WGSL.to_string(),
            Kernel::Gather => GATHER_WGSL.to_string(),
        }
    }

    /// The kernel's signature: (binding, access), in the order listed at the top of its file.
    pub fn bindings(self) -> &'static [(u32, Access)] {
        use Access::*;
        match self {
            Kernel::ActForward | Kernel::Copy => &[(0, Read), (1, ReadWrite), (2, Uniform)],
            Kernel::ActBackward => &[(0, Read), (3, Read), (1, ReadWrite), (2, Uniform)],
            Kernel::AffineForward | Kernel::AffineForwardVec4 => &[
                (0, Read),
                (1, Read),
                (2, ReadWrite),
                (3, ReadWrite),
                (4, Uniform),
            ],
            Kernel::GradWeights => &[(0, Read), (1, Read), (2, ReadWrite), (5, Uniform)],
            Kernel::GradWeightsVec4 => &[(0, Read), (5, Read), (6, ReadWrite), (4, Uniform)],
            Kernel::GradInput => &[
                (1, Read),
                (3, Read),
                (4, Read),
                (6, ReadWrite),
                (5, Uniform),
            ],
            Kernel::Loss => &[
                (0, Read),
                (1, Read),
                (2, ReadWrite),
                (3, ReadWrite),
                (4, Uniform),
            ],
            Kernel::OptTick => &[(4, ReadWrite)],
            Kernel::OptUpdate => &[
                (0, ReadWrite),
                (1, Read),
                (2, ReadWrite),
                (3, ReadWrite),
                (4, ReadWrite),
                (5, Uniform),
            ],
            Kernel::Gather => &[
                (0, Read),
                (1, Read),
                (2, Read),
                (3, ReadWrite),
                (4, ReadWrite),
                (5, Uniform),
            ],
        }
    }

    /// Whether the kernel reads the `ACT`/`ACT_P` override constants.
    pub fn uses_activation(self) -> bool {
        matches!(
            self,
            Kernel::ActForward
                | Kernel::ActBackward
                | Kernel::AffineForward
                | Kernel::GradWeights
                | Kernel::GradInput
                | Kernel::AffineForwardVec4
                | Kernel::GradWeightsVec4
        )
    }

    /// Builds the explicit bind-group layout from [`Kernel::bindings`].
    pub fn create_layout(self, device: &wgpu::Device) -> wgpu::BindGroupLayout {
        let entries: Vec<wgpu::BindGroupLayoutEntry> = self
            .bindings()
            .iter()
            .map(|&(binding, access)| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: match access {
                    Access::Uniform => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    Access::Read | Access::ReadWrite => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: access == Access::Read,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                },
                count: None,
            })
            .collect();
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(self.name()),
            entries: &entries,
        })
    }
}

/// A kernel plus the values of its override constants: the key of the pipeline cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    /// The kernel.
    pub kernel: Kernel,
    /// `(name, f64 bits)` of each override constant.
    constants: Vec<(&'static str, u64)>,
}

impl PipelineKey {
    /// A kernel without override constants.
    pub fn new(kernel: Kernel) -> Self {
        PipelineKey {
            kernel,
            constants: Vec::new(),
        }
    }

    /// A kernel specialised for an activation (sets `ACT` and `ACT_P`).
    pub fn with_activation(kernel: Kernel, act: crate::Activation) -> Self {
        PipelineKey::new(kernel)
            .constant("ACT", act.wgsl_id() as f64)
            .constant("ACT_P", act.param() as f64)
    }

    /// Adds an override constant.
    pub fn constant(mut self, name: &'static str, value: f64) -> Self {
        self.constants.retain(|(n, _)| *n != name);
        self.constants.push((name, value.to_bits()));
        self
    }

    /// Validates the source with naga (readable errors), then compiles the pipeline inside an
    /// error scope so driver failures come back as [`Error::Shader`] instead of a panic.
    pub fn create_pipeline(
        &self,
        device: &wgpu::Device,
        layout: &wgpu::BindGroupLayout,
    ) -> Result<wgpu::ComputePipeline> {
        let kernel = self.kernel;
        let source = kernel.source();
        validate_wgsl(kernel.name(), &source)?;
        let constants: Vec<(&str, f64)> = self
            .constants
            .iter()
            .map(|(n, bits)| (*n, f64::from_bits(*bits)))
            .collect();
        // Validation and Internal (driver link failures on GL arrive as Internal) are both caught.
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(kernel.name()),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.name()),
            bind_group_layouts: &[Some(layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.name()),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry()),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                // Every kernel writes its workgroup memory before reading it; zero-filling it
                // made Mesa's GL driver spend seconds compiling (see DESIGN.md).
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let errors = [
            pollster::block_on(internal.pop()),
            pollster::block_on(validation.pop()),
        ];
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(Error::Shader {
                shader: kernel.name().to_string(),
                stage: "compile",
                message: e.to_string(),
            });
        }
        Ok(pipeline)
    }
}

/// Parses and validates WGSL with naga; errors carry the annotated source lines.
pub fn validate_wgsl(name: &str, source: &str) -> Result<naga::Module> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| Error::Shader {
        shader: name.to_string(),
        stage: "parse",
        message: e.emit_to_string_with_path(source, name),
    })?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .map_err(|e| Error::Shader {
        shader: name.to_string(),
        stage: "validate",
        message: e.emit_to_string_with_path(source, name),
    })?;
    Ok(module)
}

/// Bytes of `var<workgroup>` memory a module declares (wgpu 30 does not check this against
/// `max_compute_workgroup_storage_size`, so the tests do).
pub fn workgroup_bytes(module: &naga::Module) -> u32 {
    let mut layouter = naga::proc::Layouter::default();
    if layouter.update(module.to_ctx()).is_err() {
        return u32::MAX;
    }
    module
        .global_variables
        .iter()
        .filter(|(_, v)| v.space == naga::AddressSpace::WorkGroup)
        .map(|(_, v)| layouter[v.ty].size)
        .sum()
}

/// The core of the layer kernels. Which one a layer gets is decided by
/// [`Autotuner`](crate::gpu::autotune::Autotuner) (`WGMLP_MATMUL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulVariant {
    /// Scalar loads, 4×4 outputs per invocation, 32×32 per workgroup: every shape.
    Scalar,
    /// vec4 loads along the columns, 8×8 outputs per invocation, 64×64 per workgroup.
    Vec4,
}

impl MatmulVariant {
    /// Whether the vec4 core can run a layer: fan_out and both parameter offsets are
    /// multiples of 4 floats.
    pub fn vec4_fits(fan_out: usize, w_offset: usize, b_offset: usize) -> bool {
        fan_out % 4 == 0 && w_offset % 4 == 0 && b_offset % 4 == 0
    }

    /// Output rows and columns one workgroup covers.
    pub fn tile(self) -> usize {
        match self {
            MatmulVariant::Scalar => 32,
            MatmulVariant::Vec4 => 64,
        }
    }

    /// The forward kernel.
    pub fn forward_kernel(self) -> Kernel {
        match self {
            MatmulVariant::Scalar => Kernel::AffineForward,
            MatmulVariant::Vec4 => Kernel::AffineForwardVec4,
        }
    }

    /// The dW/db kernel.
    pub fn grad_weights_kernel(self) -> Kernel {
        match self {
            MatmulVariant::Scalar => Kernel::GradWeights,
            MatmulVariant::Vec4 => Kernel::GradWeightsVec4,
        }
    }
}

/// A dispatch ready to record: pipeline, bind group and grid, built once and recorded into
/// any number of compute passes (repeated steps, benchmarks).
pub struct Dispatch {
    kernel: Kernel,
    pipeline: std::sync::Arc<wgpu::ComputePipeline>,
    group: wgpu::BindGroup,
    grid: (u32, u32, u32),
}

impl Dispatch {
    /// Wraps a compiled pipeline, its bind group and the workgroup grid.
    pub fn new(
        kernel: Kernel,
        pipeline: std::sync::Arc<wgpu::ComputePipeline>,
        group: wgpu::BindGroup,
        grid: (u32, u32, u32),
    ) -> Self {
        Dispatch {
            kernel,
            pipeline,
            group,
            grid,
        }
    }

    /// The kernel this dispatch runs.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The workgroup grid (x, y, z).
    pub fn grid(&self) -> (u32, u32, u32) {
        self.grid
    }

    /// Records the dispatch into `pass`.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.group, &[]);
        pass.dispatch_workgroups(self.grid.0, self.grid.1, self.grid.2);
    }
}
