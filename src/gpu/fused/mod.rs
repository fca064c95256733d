//! `FusedMlp`: a narrow MLP's whole forward pass, loss, backward pass and parameter
//! gradients in one dispatch, for hidden widths up to 128 — tiny-cuda-nn's "fully fused"
//! idea in portable WGSL.
//!
//! # Design
//!
//! A *row group* of S lanes (one subgroup of the adapter's fixed size, or one workgroup of 8
//! invocations that exchange values through workgroup memory where there are no subgroups)
//! takes a chunk of up to T rows of the batch through every layer. Each vector of a row is
//! spread over the lanes (element j in lane j % S, slot j / S):
//!
//! * **forward**, layer by layer: lane l holds W[:, l + S·c] in registers, loaded once per chunk;
//!   each row's input values are broadcast to every lane and each lane accumulates its own
//!   output columns. The pre-activations of the chunk wait in private memory.
//! * **loss** on the output row (softmax cross-entropy or MSE, against labels or float
//!   targets) with subgroup (or workgroup) reductions; dL/dZ replaces the logits.
//! * **backward**, layer by layer: dW += X ⊗ dZ into registers (the input broadcast again),
//!   then dY = dZ·Wᵀ with lane l holding rows W[l + S·m, :] and dZ broadcast; the previous
//!   layer's pre-activations are overwritten by their gradients.
//! * the chunk's dW, db (and dα of a learned pReLU) are added to the slot's row of a partial
//!   buffer in the flat parameter layout; `fused_reduce.wgsl` sums the slots into the gradient
//!   buffer (and the metrics into the training state, with the divergence check and the step
//!   tick), and optim.wgsl's `update` applies them. A training step is 3 dispatches; no float
//!   atomics anywhere.
//!
//! The loops over a layer's width are unrolled by a generator ([`codegen`]) for each model
//! shape — only loops over rows, layers and input blocks remain — because on lavapipe an array
//! indexed by a run-time value is kept in memory accessed one lane at a time. The activation is
//! chosen per layer at run time (a switch on a uniform), so one pipeline serves every
//! activation of a shape. Hidden layers of any width ≤ 128 are padded to a multiple of S; the
//! first layer streams its weights in blocks, so the input may be of any width.
//!
//! # Why this design (measured on lavapipe, same-run ratios)
//!
//! One 64×64 ReLU layer over 16,384 rows, the core of every alternative (a probe program,
//! best of 5 × 10 dispatches, while the machine was shared): *one lane per row* (each
//! invocation holds R rows' activations, weights read as vec4 from a uniform buffer, as
//! tiny-cuda-nn's idea is usually ported) ran at 3.6 / 6.5 / 10.1 / 11.9 GFLOP/s for
//! R = 1 / 2 / 4 / 8, and R = 8 took 13 s to compile; *lanes own columns, weights in registers,
//! inputs broadcast* (this design) ran at 25.9–37.4 GFLOP/s and compiled in ~2 s. On lavapipe
//! every storage, workgroup or uniform load is done one lane at a time (12–30 ns per 8 lanes)
//! while `subgroupBroadcast` costs ~4 ns, so the design that loads each weight once per chunk
//! and moves activations by broadcast wins by 3×. See `wgmlp bench fused` and BENCHMARKS.md
//! for whole-network figures.
//!
//! Workgroup memory: a few hundred bytes (only the workgroup exchange uses any), far below
//! WebGPU's 16 KiB; 8 to 64 invocations per workgroup.

pub mod codegen;
pub mod shape;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytemuck::{Pod, Zeroable};

use crate::config::{Layer, Loss, MlpConfig};
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{Kernel, PipelineKey};
use crate::gpu::mlp::TrainState;
use crate::gpu::uniforms::OptParams;
use crate::optim::{OptimizerConfig, OptimizerState};
use crate::reference::{BatchLoss, check_batch};

pub use shape::{Exchange, FusedShape, LaneSetup, MAX_HIDDEN, MAX_LAYERS, MAX_OUTPUT};

/// `shaders/fused_mlp.wgsl` (the fixed part of the fused kernel).
pub const FUSED_MLP_WGSL: &str = include_str!("../../../shaders/fused_mlp.wgsl");
/// `shaders/fused_reduce.wgsl`.
pub const FUSED_REDUCE_WGSL: &str = include_str!("../../../shaders/fused_reduce.wgsl");
/// `shaders/fused_pack.wgsl`.
pub const FUSED_PACK_WGSL: &str = include_str!("../../../shaders/fused_pack.wgsl");

/// Row width of the parameter texture (`TEX_WIDTH` in the shaders).
const TEX_WIDTH: u32 = 4096;

/// Bits of `FusedDims.flags` (fused_mlp.wgsl).
const FLAG_GRADS: u32 = 1;
const FLAG_LOSS: u32 = 2;
const FLAG_OUTPUTS: u32 = 4;
const FLAG_TARGETS: u32 = 8;
/// Bits of `ReduceDims.flags` (fused_reduce.wgsl).
const RED_GRADS: u32 = 1;
const RED_METRICS: u32 = 2;
const RED_TRAIN: u32 = 4;
/// Invocations per workgroup of the reduction.
const REDUCE_WG: u32 = 64;
/// Byte offset of `loss_sum` in `TrainState`: metrics are cleared from here on.
const METRICS_OFFSET: u64 = crate::gpu::uniforms::METRICS_OFFSET;
/// Bytes of `TrainState` (structs.wgsl).
const STATE_BYTES: u64 = crate::gpu::uniforms::STATE_BYTES;

/// The `FusedDims` uniform of fused_mlp.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct FusedDims {
    batch: u32,
    chunk_rows: u32,
    chunks: u32,
    slots: u32,
    stride: u32,
    flags: u32,
    loss_kind: u32,
    inv_batch: f32,
    metrics_at: u32,
    _pad: [u32; 3],
}

/// One `FusedLayer` of fused_mlp.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct FusedLayer {
    w_offset: u32,
    b_offset: u32,
    alpha_offset: u32,
    act: u32,
    act_p: f32,
    fan_in: u32,
    fan_out: u32,
    learned: u32,
}

/// The `ReduceDims` uniform of fused_reduce.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct ReduceDims {
    n4: u32,
    slots: u32,
    stride4: u32,
    metrics4: u32,
    batch: u32,
    flags: u32,
    _pad: [u32; 2],
}

/// What one recorded fused dispatch computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Mode {
    /// Loss, gradients, metrics into the training state, step tick (then the update).
    Train,
    /// Loss and gradients, metrics into the evaluation state.
    Gradients,
    /// Loss metrics into the evaluation state.
    Eval,
    /// Outputs only.
    Infer,
}

/// The bind groups and grids of one (batch size, mode, targets) combination.
struct Plan {
    fused: wgpu::BindGroup,
    fused_grid: (u32, u32),
    reduce: Option<(wgpu::BindGroup, (u32, u32))>,
}

/// Compiled fused pipelines, per device and shape (each shape compiles once per process).
type PipelineCache = Mutex<HashMap<(wgpu::Device, FusedShape), Arc<wgpu::ComputePipeline>>>;

fn pipeline_cache() -> &'static PipelineCache {
    static CACHE: OnceLock<PipelineCache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Validates the generated source with naga (subgroup operations allowed).
pub fn validate(name: &str, source: &str) -> Result<naga::Module> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| Error::Shader {
        shader: name.to_string(),
        stage: "parse",
        message: e.emit_to_string_with_path(source, name),
    })?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default() | naga::valid::Capabilities::SUBGROUP,
    )
    .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
    .subgroup_operations(naga::valid::SubgroupOperationSet::all())
    .validate(&module)
    .map_err(|e| Error::Shader {
        shader: name.to_string(),
        stage: "validate",
        message: e.emit_to_string_with_path(source, name),
    })?;
    Ok(module)
}

/// The compiled fused kernel for `shape` on `ctx` (validated, compiled once, cached).
pub fn pipeline(ctx: &GpuContext, shape: &FusedShape) -> Result<Arc<wgpu::ComputePipeline>> {
    let key = (ctx.device.clone(), *shape);
    if let Some(p) = pipeline_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(p.clone());
    }
    let name = format!("fused_mlp {}", shape.describe());
    let source = codegen::source(shape);
    validate(&name, &source)?;
    let layout = ctx.layout(Kernel::FusedMlp);
    let validation = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let internal = ctx.device.push_error_scope(wgpu::ErrorFilter::Internal);
    let module = ctx
        .device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&name),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
    let pipeline_layout = ctx
        .device
        .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&name),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
    let pipeline = ctx
        .device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&name),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[],
                // Workgroup memory is written before it is read (see kernels.rs).
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
            shader: name,
            stage: "compile",
            message: e.to_string(),
        });
    }
    let pipeline = Arc::new(pipeline);
    pipeline_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, pipeline.clone());
    Ok(pipeline)
}

/// An MLP resident on the GPU, trained and evaluated by the fused kernel.
pub struct FusedMlp<'c> {
    ctx: &'c GpuContext,
    config: MlpConfig,
    optimizer: OptimizerConfig,
    shape: FusedShape,
    max_batch: usize,
    max_slots: usize,
    /// Floats per slot in `partials`: the parameters padded to 4, 4 metrics, a scratch float
    /// per lane.
    stride: usize,
    params: wgpu::Buffer,
    /// The parameters as an r32float texture, which the fused kernel reads.
    wtex: wgpu::Texture,
    grads: wgpu::Buffer,
    moment1: wgpu::Buffer,
    moment2: wgpu::Buffer,
    state: wgpu::Buffer,
    eval_state: wgpu::Buffer,
    xb: wgpu::Buffer,
    labels: wgpu::Buffer,
    targets: wgpu::Buffer,
    outputs: wgpu::Buffer,
    partials: wgpu::Buffer,
    /// The chunk store of every slot (pre-activations and their gradients).
    rows: wgpu::Buffer,
    net: wgpu::Buffer,
    fused_pipe: Arc<wgpu::ComputePipeline>,
    reduce_pipe: Arc<wgpu::ComputePipeline>,
    update_pipe: Arc<wgpu::ComputePipeline>,
    pack_pipe: Arc<wgpu::ComputePipeline>,
    opt_bind: wgpu::BindGroup,
    pack_bind: wgpu::BindGroup,
    plans: HashMap<(usize, Mode, bool), Plan>,
}

impl<'c> FusedMlp<'c> {
    /// The fused kernel's shape for `config` on this adapter, or why it does not fit.
    pub fn fits(ctx: &GpuContext, config: &MlpConfig) -> std::result::Result<FusedShape, String> {
        FusedShape::for_model(config, LaneSetup::for_adapter(ctx.features, &ctx.info))
    }

    /// A model with the config's seeded initial parameters, for batches of up to `max_batch`.
    pub fn new(
        ctx: &'c GpuContext,
        config: &MlpConfig,
        optimizer: OptimizerConfig,
        max_batch: usize,
    ) -> Result<Self> {
        config.validate()?;
        Self::from_params(ctx, config, optimizer, max_batch, &config.init_params())
    }

    /// A model with the given flat parameters.
    pub fn from_params(
        ctx: &'c GpuContext,
        config: &MlpConfig,
        optimizer: OptimizerConfig,
        max_batch: usize,
        params: &[f32],
    ) -> Result<Self> {
        let setup = LaneSetup::for_adapter(ctx.features, &ctx.info);
        Self::with_lanes(ctx, config, optimizer, max_batch, params, setup)
    }

    /// [`Self::from_params`] with the row group chosen by the caller (tests run the workgroup
    /// exchange on adapters that have subgroups).
    pub fn with_lanes(
        ctx: &'c GpuContext,
        config: &MlpConfig,
        optimizer: OptimizerConfig,
        max_batch: usize,
        params: &[f32],
        setup: LaneSetup,
    ) -> Result<Self> {
        config.validate()?;
        optimizer.validate()?;
        if max_batch == 0 {
            return Err(Error::config("batch size", "must be at least 1 (got 0)"));
        }
        if optimizer.clip_norm > 0.0 {
            return Err(Error::config(
                "gradient clipping",
                "the fused kernel does not clip gradients; use the layered path for --clip-grad-norm",
            ));
        }
        let n = config.n_params();
        if params.len() != n {
            return Err(Error::shape(
                "FusedMlp parameters",
                format!("{n} values for {}", config.describe()),
                params.len(),
            ));
        }
        let shape = FusedShape::for_model(config, setup).map_err(|reason| {
            Error::config(
                "--kernel",
                format!(
                    "the fused kernel cannot run {}: {reason}; use --kernel layered (or auto)",
                    config.describe()
                ),
            )
        })?;
        if setup.exchange == Exchange::Subgroup && !ctx.features.contains(wgpu::Features::SUBGROUP)
        {
            return Err(Error::AdapterUnsuitable {
                adapter: ctx.info.name.clone(),
                reason: "the subgroup exchange needs the SUBGROUP feature".into(),
            });
        }
        // Slots (row groups with their own partial gradients): enough to keep every core of a
        // software adapter busy with a few to spare, and a GPU's many cores.
        let max_slots = if ctx.is_software() {
            4 * std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            1024
        };
        let stride = n.div_ceil(4) * 4 + 4 + shape.lanes.div_ceil(4) as usize * 4;
        let (_, slots) = chunking(max_batch, max_slots, shape.max_chunk_rows() as usize);
        let store_vec4s = max_batch * (shape.lanes * shape.row_vec4s()) as usize;
        let tex_rows = (n as u32).div_ceil(TEX_WIDTH);
        if tex_rows > ctx.limits.max_texture_dimension_2d {
            return Err(Error::AdapterUnsuitable {
                adapter: ctx.info.name.clone(),
                reason: format!("{n} parameters do not fit a {TEX_WIDTH}-wide texture"),
            });
        }
        let limit = ctx.limits.max_storage_buffer_binding_size;
        let widest = config.input.max(config.output);
        if (max_batch * widest) as u64 * 4 > limit
            || (slots * stride) as u64 * 4 > limit
            || store_vec4s as u64 * 16 > limit
        {
            return Err(Error::AdapterUnsuitable {
                adapter: ctx.info.name.clone(),
                reason: format!(
                    "a batch of {max_batch} × {widest} values or {slots} partial gradients of {n} parameters exceed the storage binding limit of {limit} bytes; lower --batch-size"
                ),
            });
        }
        let bytes = |count: usize| (count * 4) as u64;
        let params_buf = ctx.storage_from("fused params", params);
        let wtex = ctx.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("fused parameter texture"),
            size: wgpu::Extent3d {
                width: TEX_WIDTH,
                height: tex_rows,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::R32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::STORAGE_BINDING,
            view_formats: &[],
        });
        let wview = wtex.create_view(&Default::default());
        let pack_dims = ctx.uniform("fused pack", &[n as u32, 0, 0, 0]);
        let pack_bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("fused pack"),
            layout: &ctx.layout(Kernel::FusedPack),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params_buf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&wview),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: pack_dims.as_entire_binding(),
                },
            ],
        });
        let grads = ctx.storage_zeroed("fused grads", bytes(n));
        let moment1 = ctx.storage_zeroed("fused moment1", bytes(n));
        let moment2 = ctx.storage_zeroed("fused moment2", bytes(n));
        let state = ctx.storage_zeroed("fused train_state", STATE_BYTES);
        let eval_state = ctx.storage_zeroed("fused eval_state", STATE_BYTES);
        let xb = ctx.storage_zeroed("fused xb", bytes(max_batch * config.input));
        let labels = ctx.storage_zeroed("fused labels", bytes(max_batch));
        let targets = ctx.storage_zeroed("fused targets", bytes(max_batch * config.output));
        let outputs = ctx.storage_zeroed("fused outputs", bytes(max_batch * config.output));
        let partials = ctx.storage_zeroed("fused partials", bytes(slots * stride));
        let rows = ctx.storage_zeroed("fused rows", (store_vec4s * 16) as u64);
        let net = ctx.uniform("fused layers", &layer_table(&config.layers()));
        let opt_uniform = ctx.uniform(
            "optimizer",
            &OptParams {
                n: n as u32,
                kind: optimizer.kind.wgsl_id(),
                lr: optimizer.lr,
                momentum: optimizer.momentum,
                beta1: optimizer.beta1,
                beta2: optimizer.beta2,
                eps: optimizer.eps,
                weight_decay: optimizer.weight_decay,
                clip_norm: 0.0,
                _pad0: 0,
                _pad1: 0,
                _pad2: 0,
            },
        );
        let opt_bind = ctx.bind_group(
            Kernel::OptUpdate,
            &[
                (0, &params_buf),
                (1, &grads),
                (2, &moment1),
                (3, &moment2),
                (4, &state),
                (5, &opt_uniform),
            ],
        );
        let model = FusedMlp {
            fused_pipe: pipeline(ctx, &shape)?,
            reduce_pipe: ctx.pipeline(&PipelineKey::new(Kernel::FusedReduce))?,
            update_pipe: ctx.pipeline(&PipelineKey::new(Kernel::OptUpdate))?,
            pack_pipe: ctx.pipeline(&PipelineKey::new(Kernel::FusedPack))?,
            pack_bind,
            wtex,
            ctx,
            config: config.clone(),
            optimizer,
            shape,
            max_batch,
            max_slots,
            stride,
            params: params_buf,
            grads,
            moment1,
            moment2,
            state,
            eval_state,
            xb,
            labels,
            targets,
            outputs,
            partials,
            rows,
            net,
            opt_bind,
            plans: HashMap::new(),
        };
        model.submit_pack();
        Ok(model)
    }

    /// Records the copy of the parameters into the texture the fused kernel reads.
    fn encode_pack(&self, pass: &mut wgpu::ComputePass) {
        let groups = (self.config.n_params() as u32).div_ceil(64);
        let (x, y) = self.ctx.grid_1d(groups);
        pass.set_pipeline(&self.pack_pipe);
        pass.set_bind_group(0, &self.pack_bind, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }

    /// Submits [`Self::encode_pack`] on its own (after the parameters were written).
    fn submit_pack(&self) {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("fused pack"),
                timestamp_writes: None,
            });
            self.encode_pack(&mut pass);
        }
        self.ctx.queue.submit([enc.finish()]);
    }

    /// The architecture.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// The kernel shape this model runs.
    pub fn shape(&self) -> &FusedShape {
        &self.shape
    }

    /// The largest batch this model's buffers hold.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// The optimizer settings.
    pub fn optimizer(&self) -> &OptimizerConfig {
        &self.optimizer
    }

    /// Compute dispatches in one training step: fused, reduce, update, pack.
    pub fn dispatches_per_step(&self) -> usize {
        4
    }

    fn ensure_plan(&mut self, batch: usize, mode: Mode, targets: bool) -> Result<()> {
        if batch == 0 {
            return Err(Error::config("batch size", "must be at least 1 (got 0)"));
        }
        if batch > self.max_batch {
            return Err(Error::shape(
                "batch",
                format!("at most {} rows (the model's max batch)", self.max_batch),
                batch,
            ));
        }
        if self.plans.contains_key(&(batch, mode, targets)) {
            return Ok(());
        }
        let ctx = self.ctx;
        let (chunk_rows, slots) =
            chunking(batch, self.max_slots, self.shape.max_chunk_rows() as usize);
        let chunks = slots;
        let n = self.config.n_params();
        let target_flag = if targets { FLAG_TARGETS } else { 0 };
        let flags = match mode {
            Mode::Train | Mode::Gradients => FLAG_GRADS | FLAG_LOSS | target_flag,
            Mode::Eval => FLAG_LOSS | target_flag,
            Mode::Infer => FLAG_OUTPUTS,
        };
        let dims = ctx.uniform(
            "fused dims",
            &FusedDims {
                batch: batch as u32,
                chunk_rows: chunk_rows as u32,
                chunks: chunks as u32,
                slots: slots as u32,
                stride: self.stride as u32,
                flags,
                loss_kind: match self.config.loss {
                    Loss::CrossEntropy => 0,
                    // L1 and Huber are refused by FusedMlp::new (fused::fits).
                    _ => 1,
                },
                inv_batch: 1.0 / batch as f32,
                metrics_at: self.config.n_params().div_ceil(4) as u32 * 4,
                _pad: [0; 3],
            },
        );
        let wview = self.wtex.create_view(&Default::default());
        let buffers = [
            (1, &self.xb),
            (2, &self.labels),
            (3, &self.targets),
            (4, &self.outputs),
            (5, &self.partials),
            (6, &dims),
            (7, &self.net),
            (8, &self.rows),
        ];
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::TextureView(&wview),
        }];
        entries.extend(buffers.iter().map(|(b, buf)| wgpu::BindGroupEntry {
            binding: *b,
            resource: buf.as_entire_binding(),
        }));
        let fused = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("fused"),
            layout: &ctx.layout(Kernel::FusedMlp),
            entries: &entries,
        });
        let reduce = match mode {
            Mode::Infer => None,
            _ => {
                let (red_flags, state) = match mode {
                    Mode::Train => (RED_GRADS | RED_METRICS | RED_TRAIN, &self.state),
                    Mode::Gradients => (RED_GRADS | RED_METRICS, &self.eval_state),
                    _ => (RED_METRICS, &self.eval_state),
                };
                let n4 = n.div_ceil(4);
                let rdims = ctx.uniform(
                    "fused reduce dims",
                    &ReduceDims {
                        n4: n4 as u32,
                        slots: slots as u32,
                        stride4: (self.stride / 4) as u32,
                        metrics4: self.config.n_params().div_ceil(4) as u32,
                        batch: batch as u32,
                        flags: red_flags,
                        _pad: [0; 2],
                    },
                );
                let group = ctx.bind_group(
                    Kernel::FusedReduce,
                    &[
                        (0, &self.partials),
                        (1, &self.grads),
                        (2, state),
                        (3, &rdims),
                    ],
                );
                Some((group, ctx.grid_1d((n4 as u32).div_ceil(REDUCE_WG))))
            }
        };
        self.plans.insert(
            (batch, mode, targets),
            Plan {
                fused,
                fused_grid: ctx.grid_1d(slots as u32),
                reduce,
            },
        );
        Ok(())
    }

    fn encode(&self, pass: &mut wgpu::ComputePass, batch: usize, mode: Mode, targets: bool) {
        let plan = &self.plans[&(batch, mode, targets)];
        pass.set_pipeline(&self.fused_pipe);
        pass.set_bind_group(0, &plan.fused, &[]);
        pass.dispatch_workgroups(plan.fused_grid.0, plan.fused_grid.1, 1);
        if let Some((group, grid)) = &plan.reduce {
            pass.set_pipeline(&self.reduce_pipe);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(grid.0, grid.1, 1);
        }
        if mode == Mode::Train {
            let (x, y) = self
                .ctx
                .grid_1d((self.config.n_params() as u32).div_ceil(256));
            pass.set_pipeline(&self.update_pipe);
            pass.set_bind_group(0, &self.opt_bind, &[]);
            pass.dispatch_workgroups(x, y, 1);
            self.encode_pack(pass);
        }
    }

    fn run(&mut self, batch: usize, mode: Mode, targets: bool, clear: Option<bool>) -> Result<()> {
        self.ensure_plan(batch, mode, targets)?;
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        match clear {
            Some(true) => enc.clear_buffer(
                &self.state,
                METRICS_OFFSET,
                Some(STATE_BYTES - METRICS_OFFSET),
            ),
            Some(false) => enc.clear_buffer(&self.eval_state, 0, None),
            None => {}
        }
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("fused"),
                timestamp_writes: None,
            });
            self.encode(&mut pass, batch, mode, targets);
        }
        self.ctx.queue.submit([enc.finish()]);
        Ok(())
    }

    /// Uploads a batch: features, and labels or float targets.
    fn upload(&mut self, x: &[f32], labels: Option<&[u32]>, batch: usize) -> Result<()> {
        check_batch(&self.config, x.len(), labels, batch)?;
        if batch > self.max_batch {
            return Err(Error::shape(
                "batch",
                format!("at most {} rows (the model's max batch)", self.max_batch),
                batch,
            ));
        }
        let q = &self.ctx.queue;
        q.write_buffer(&self.xb, 0, bytemuck::cast_slice(x));
        if let Some(labels) = labels {
            q.write_buffer(&self.labels, 0, bytemuck::cast_slice(labels));
        }
        Ok(())
    }

    fn upload_targets(&mut self, x: &[f32], targets: &[f32], batch: usize) -> Result<()> {
        if self.config.loss != Loss::Mse {
            return Err(Error::config(
                "--loss",
                "float targets need the MSE loss (regression); use --loss mse",
            ));
        }
        if targets.len() != batch * self.config.output {
            return Err(Error::shape(
                "batch targets",
                format!("{batch} × {} values", self.config.output),
                targets.len(),
            ));
        }
        self.upload(x, None, batch)?;
        self.ctx
            .queue
            .write_buffer(&self.targets, 0, bytemuck::cast_slice(targets));
        Ok(())
    }

    /// The network's outputs (logits) for a batch given on the host: one dispatch.
    pub fn forward(&mut self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
        self.upload(x, None, batch)?;
        self.run(batch, Mode::Infer, false, None)?;
        self.ctx.read(&self.outputs, batch * self.config.output)
    }

    fn read_gradients(&self) -> Result<(BatchLoss<f32>, Vec<f32>)> {
        let s: TrainState = self.ctx.read(&self.eval_state, 1)?[0];
        let grads = self.ctx.read(&self.grads, self.config.n_params())?;
        Ok((BatchLoss::from_state(&s), grads))
    }

    /// Mean loss, correct count and the gradient of the mean loss w.r.t. every parameter
    /// (flat), for a labelled batch given on the host (two dispatches). Parameters are kept.
    pub fn loss_and_gradients(
        &mut self,
        x: &[f32],
        labels: &[u32],
        batch: usize,
    ) -> Result<(BatchLoss<f32>, Vec<f32>)> {
        self.upload(x, Some(labels), batch)?;
        self.run(batch, Mode::Gradients, false, Some(false))?;
        self.read_gradients()
    }

    /// [`Self::loss_and_gradients`] for regression: MSE against float targets
    /// `[batch × output]` (the correct count is 0).
    pub fn loss_and_gradients_targets(
        &mut self,
        x: &[f32],
        targets: &[f32],
        batch: usize,
    ) -> Result<(BatchLoss<f32>, Vec<f32>)> {
        self.upload_targets(x, targets, batch)?;
        self.run(batch, Mode::Gradients, true, Some(false))?;
        self.read_gradients()
    }

    fn finish_step(&self) -> Result<BatchLoss<f32>> {
        let s = self.train_state()?;
        if s.diverged != 0 {
            return Err(Error::Diverged {
                epoch: 0,
                step: s.bad_step as u64,
                loss: s.bad_loss,
            });
        }
        Ok(BatchLoss::from_state(&s))
    }

    /// One optimizer step on a labelled batch given on the host (three dispatches, one
    /// submit). A non-finite loss is [`Error::Diverged`] and the parameters are kept.
    pub fn train_step(
        &mut self,
        x: &[f32],
        labels: &[u32],
        batch: usize,
    ) -> Result<BatchLoss<f32>> {
        self.upload(x, Some(labels), batch)?;
        self.run(batch, Mode::Train, false, Some(true))?;
        self.finish_step()
    }

    /// [`Self::train_step`] for regression against float targets `[batch × output]`.
    pub fn train_step_targets(
        &mut self,
        x: &[f32],
        targets: &[f32],
        batch: usize,
    ) -> Result<BatchLoss<f32>> {
        self.upload_targets(x, targets, batch)?;
        self.run(batch, Mode::Train, true, Some(true))?;
        self.finish_step()
    }

    /// Mean loss and correct count of a labelled batch (no gradients, parameters kept).
    pub fn evaluate(&mut self, x: &[f32], labels: &[u32], batch: usize) -> Result<BatchLoss<f32>> {
        self.upload(x, Some(labels), batch)?;
        self.run(batch, Mode::Eval, false, Some(false))?;
        let s: TrainState = self.ctx.read(&self.eval_state, 1)?[0];
        Ok(BatchLoss::from_state(&s))
    }

    /// Uploads a labelled batch for [`Self::encode_train_steps`] (benchmarks).
    pub fn upload_batch(&mut self, x: &[f32], labels: &[u32], batch: usize) -> Result<()> {
        self.upload(x, Some(labels), batch)?;
        self.ensure_plan(batch, Mode::Train, false)?;
        self.ensure_plan(batch, Mode::Infer, false)
    }

    /// Records `steps` training steps on the uploaded batch into one compute pass (with
    /// `infer`, forward passes instead). For benchmarks: the data stays where it is.
    pub fn encode_repeated(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        batch: usize,
        steps: usize,
        infer: bool,
    ) -> Result<()> {
        let mode = if infer { Mode::Infer } else { Mode::Train };
        self.ensure_plan(batch, mode, false)?;
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("fused steps"),
            timestamp_writes: None,
        });
        for _ in 0..steps {
            self.encode(&mut pass, batch, mode, false);
        }
        Ok(())
    }

    /// The input buffer, `[max_batch × input]` f32: kernels of the caller may write batches
    /// into it directly (then use the `*_resident` methods).
    pub fn input_buffer(&self) -> &wgpu::Buffer {
        &self.xb
    }

    /// The float-target buffer, `[max_batch × output]` f32 (regression, MSE).
    pub fn target_buffer(&self) -> &wgpu::Buffer {
        &self.targets
    }

    /// One optimizer step on the batch already in [`Self::input_buffer`] and
    /// [`Self::target_buffer`] (MSE against float targets). Submits without waiting; the
    /// running metrics accumulate in [`Self::train_state`] until [`Self::reset_metrics`].
    pub fn train_step_resident_targets(&mut self, batch: usize) -> Result<()> {
        if self.config.loss != Loss::Mse {
            return Err(Error::config(
                "--loss",
                "float targets need the MSE loss (regression); use --loss mse",
            ));
        }
        self.run(batch, Mode::Train, true, None)
    }

    /// The outputs for the batch already in [`Self::input_buffer`].
    pub fn forward_resident(&mut self, batch: usize) -> Result<Vec<f32>> {
        self.run(batch, Mode::Infer, false, None)?;
        self.ctx.read(&self.outputs, batch * self.config.output)
    }

    /// Clears the running training metrics (loss sum, correct and sample counts).
    pub fn reset_metrics(&self) {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        enc.clear_buffer(
            &self.state,
            METRICS_OFFSET,
            Some(STATE_BYTES - METRICS_OFFSET),
        );
        self.ctx.queue.submit([enc.finish()]);
    }

    /// The training state (step counter, divergence flag, running metrics).
    pub fn train_state(&self) -> Result<TrainState> {
        Ok(self.ctx.read::<TrainState>(&self.state, 1)?[0])
    }

    /// The flat parameters, read back.
    pub fn params(&self) -> Result<Vec<f32>> {
        self.ctx.read(&self.params, self.config.n_params())
    }

    /// Replaces the flat parameters.
    pub fn set_params(&self, params: &[f32]) -> Result<()> {
        if params.len() != self.config.n_params() {
            return Err(Error::shape(
                "parameters",
                self.config.n_params(),
                params.len(),
            ));
        }
        self.ctx
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        self.submit_pack();
        Ok(())
    }

    /// The optimizer state (step count and moment buffers), read back.
    pub fn optimizer_state(&self) -> Result<OptimizerState<f32>> {
        let n = self.config.n_params();
        Ok(OptimizerState {
            step: self.train_state()?.step as u64,
            m: self.ctx.read(&self.moment1, n)?,
            v: self.ctx.read(&self.moment2, n)?,
        })
    }
}

/// Fewest rows per chunk: a chunk loads each layer's weights once, so short chunks waste loads.
const MIN_CHUNK_ROWS: usize = 32;

/// (rows per chunk, slots = chunks) for a batch: about `max_slots` chunks of at least 32 and
/// at most `max_rows` rows.
fn chunking(batch: usize, max_slots: usize, max_rows: usize) -> (usize, usize) {
    let rows = batch.div_ceil(max_slots).max(MIN_CHUNK_ROWS).min(max_rows);
    (rows, batch.div_ceil(rows))
}

/// The `FusedLayers` uniform: one entry per layer, the rest zero.
fn layer_table(layers: &[Layer]) -> [FusedLayer; MAX_LAYERS] {
    let mut table = [FusedLayer::default(); MAX_LAYERS];
    for (slot, l) in table.iter_mut().zip(layers) {
        *slot = FusedLayer {
            w_offset: l.w_offset as u32,
            b_offset: l.b_offset as u32,
            alpha_offset: l.alpha_offset.unwrap_or(0) as u32,
            act: l.activation.wgsl_id(),
            act_p: l.activation.param(),
            fan_in: l.fan_in as u32,
            fan_out: l.fan_out as u32,
            learned: u32::from(l.alpha_offset.is_some()),
        };
    }
    table
}
