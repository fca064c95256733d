//! `GpuMlp`: an MLP whose parameters, gradients, optimizer state and activations live on the
//! GPU. Every buffer is created once; a training step is recorded as
//! gather → layer forwards → loss → layer backwards → tick → update in one compute pass, and
//! many steps go into one command encoder and one submit.

use std::collections::HashMap;
use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::Activation;
use crate::config::{Layer, Loss, MlpConfig};
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::dataset::GpuDataset;
use crate::gpu::kernels::{Kernel, MatmulVariant, PipelineKey};
use crate::gpu::layer::{LayerDims, matmul_grid};
use crate::optim::{OptimizerConfig, OptimizerState};
use crate::reference::{BatchLoss, check_batch};

/// The `LossDims` uniform of `loss.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct LossDims {
    batch: u32,
    classes: u32,
    loss_kind: u32,
    training: u32,
}

/// The `OptParams` uniform of `optim.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct OptParams {
    n: u32,
    kind: u32,
    lr: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
}

/// The `AlphaDims` uniform of `alpha.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct AlphaDims {
    count: u32,
    alpha_offset: u32,
    _pad: [u32; 2],
}

/// The `GatherDims` uniform of `gather.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct GatherDims {
    batch: u32,
    n_features: u32,
    row_start: u32,
    row_end: u32,
}

/// The `TrainState` storage struct shared by `loss.wgsl` and `optim.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq)]
pub struct TrainState {
    /// Optimizer steps applied.
    pub step: u32,
    /// 1 once a training batch had a non-finite loss (updates stop from then on).
    pub diverged: u32,
    /// The step whose loss was not finite.
    pub bad_step: u32,
    /// That loss.
    pub bad_loss: f32,
    /// Σ of per-sample losses since the last reset.
    pub loss_sum: f32,
    /// Correctly classified samples since the last reset.
    pub correct: u32,
    /// Samples since the last reset.
    pub count: u32,
    _pad: u32,
}

impl TrainState {
    /// Mean loss since the last reset.
    pub fn mean_loss(&self) -> f32 {
        self.loss_sum / self.count.max(1) as f32
    }
    /// Accuracy since the last reset.
    pub fn accuracy(&self) -> f32 {
        self.correct as f32 / self.count.max(1) as f32
    }
}

/// Invocations in one workgroup of `grad_input` (8 × 8): one partial dα each.
const GRAD_INPUT_WORKGROUP: usize = 64;

/// Byte offset of `loss_sum` in `TrainState`: metrics are cleared from here on.
const METRICS_OFFSET: u64 = 16;

/// Which running state and mode the loss kernel uses.
#[derive(Clone, Copy)]
enum LossMode {
    /// Training state, gradients written, divergence tracked.
    Train,
    /// Evaluation state, no gradients.
    Eval,
    /// Evaluation state, gradients written (for `loss_and_gradients`).
    GradOnly,
}

/// Bind groups that depend on the batch size.
struct Plan {
    forward_train: Vec<wgpu::BindGroup>,
    forward_eval: Vec<wgpu::BindGroup>,
    grad_weights: Vec<wgpu::BindGroup>,
    grad_input: Vec<Option<wgpu::BindGroup>>,
    /// `reduce_alpha` after grad_input of layer l, when layer l − 1 learns its α.
    reduce_alpha: Vec<Option<wgpu::BindGroup>>,
    loss_train: wgpu::BindGroup,
    loss_eval: wgpu::BindGroup,
    loss_grad_only: wgpu::BindGroup,
}

/// Bind groups of the gather kernel for one dataset and batch size (one per row chunk).
pub struct GatherPlan {
    batch: usize,
    groups: Vec<wgpu::BindGroup>,
}

/// An MLP resident on the GPU.
pub struct GpuMlp<'c> {
    ctx: &'c GpuContext,
    config: MlpConfig,
    layers: Vec<Layer>,
    optimizer: OptimizerConfig,
    max_batch: usize,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    moment1: wgpu::Buffer,
    moment2: wgpu::Buffer,
    state: wgpu::Buffer,
    eval_state: wgpu::Buffer,
    state_pair: wgpu::Buffer,
    opt_bind: wgpu::BindGroup,
    tick_bind: wgpu::BindGroup,
    xb: wgpu::Buffer,
    yb: wgpu::Buffer,
    idx: wgpu::Buffer,
    z: Vec<wgpu::Buffer>,
    y: Vec<wgpu::Buffer>,
    dz: Vec<wgpu::Buffer>,
    /// grad_input's partial sums of dα, one per invocation of its largest grid.
    partials: wgpu::Buffer,
    forward_pipes: Vec<Arc<wgpu::ComputePipeline>>,
    grad_input_pipes: Vec<Option<Arc<wgpu::ComputePipeline>>>,
    grad_weights_pipes: Vec<Arc<wgpu::ComputePipeline>>,
    variants: Vec<MatmulVariant>,
    loss_pipe: Arc<wgpu::ComputePipeline>,
    tick_pipe: Arc<wgpu::ComputePipeline>,
    update_pipe: Arc<wgpu::ComputePipeline>,
    gather_pipe: Arc<wgpu::ComputePipeline>,
    reduce_alpha_pipe: Option<Arc<wgpu::ComputePipeline>>,
    plans: HashMap<usize, Plan>,
}

impl<'c> GpuMlp<'c> {
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
        config.validate()?;
        optimizer.validate()?;
        if max_batch == 0 {
            return Err(Error::config("batch size", "must be at least 1 (got 0)"));
        }
        let n = config.n_params();
        if params.len() != n {
            return Err(Error::shape(
                "GpuMlp parameters",
                format!("{n} values for {}", config.describe()),
                params.len(),
            ));
        }
        let widest = config.widths().into_iter().max().unwrap_or(1);
        if (max_batch * widest) as u64 * 4 > ctx.limits.max_storage_buffer_binding_size
            || n as u64 * 4 > ctx.limits.max_storage_buffer_binding_size
        {
            return Err(Error::AdapterUnsuitable {
                adapter: ctx.info.name.clone(),
                reason: format!(
                    "a batch of {max_batch} × {widest} activations or {n} parameters exceeds the storage binding limit of {} bytes; lower --batch-size or the layer widths",
                    ctx.limits.max_storage_buffer_binding_size
                ),
            });
        }
        let layers = config.layers();
        let variants = layers
            .iter()
            .map(|l| {
                let fits = MatmulVariant::vec4_fits(l.fan_out, l.w_offset, l.b_offset);
                ctx.autotune
                    .choose(ctx, max_batch, l.fan_in, l.fan_out, fits)
            })
            .collect::<Result<Vec<MatmulVariant>>>()?;
        // Every grid this model dispatches must fit the per-dimension workgroup limit.
        for l in &layers {
            matmul_grid(
                max_batch,
                l.fan_in.max(l.fan_out),
                (32, 32),
                ctx.max_workgroups_per_dim,
            )?;
        }
        let bytes = |count: usize| (count * 4) as u64;
        let params_buf = ctx.storage_from("params", params);
        let grads = ctx.storage_zeroed("grads", bytes(n));
        let moment1 = ctx.storage_zeroed("moment1", bytes(n));
        let moment2 = ctx.storage_zeroed("moment2", bytes(n));
        let state = ctx.storage_zeroed("train_state", 32);
        let eval_state = ctx.storage_zeroed("eval_state", 32);
        let state_pair = ctx.storage_zeroed("state_pair", 64);
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
        let tick_bind = ctx.bind_group(Kernel::OptTick, &[(4, &state)]);
        let act_buf =
            |label: &str, width: usize| ctx.storage_zeroed(label, bytes(max_batch * width));
        let xb = act_buf("xb", config.input);
        let yb = ctx.storage_zeroed("yb", bytes(max_batch));
        let idx = ctx.storage_zeroed("batch_indices", bytes(max_batch));
        let z = layers.iter().map(|l| act_buf("z", l.fan_out)).collect();
        let y = layers.iter().map(|l| act_buf("y", l.fan_out)).collect();
        let dz = layers.iter().map(|l| act_buf("dz", l.fan_out)).collect();
        let learned_alpha = layers.iter().any(|l| l.alpha_offset.is_some());
        let partials_len = (1..layers.len())
            .filter(|&l| layers[l - 1].alpha_offset.is_some())
            .map(|l| {
                let (x, y, z) = matmul_grid(
                    max_batch,
                    layers[l].fan_in,
                    (32, 32),
                    ctx.max_workgroups_per_dim,
                )?;
                Ok((x * y * z) as usize * GRAD_INPUT_WORKGROUP)
            })
            .collect::<Result<Vec<usize>>>()?
            .into_iter()
            .max()
            .unwrap_or(1);
        let partials = ctx.storage_zeroed("alpha_partials", bytes(partials_len));
        let forward_pipes = layers
            .iter()
            .zip(&variants)
            .map(|(l, v)| {
                ctx.pipeline(&PipelineKey::with_activation(
                    v.forward_kernel(),
                    l.activation,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let grad_weights_pipes = variants
            .iter()
            .map(|v| {
                ctx.pipeline(&PipelineKey::with_activation(
                    v.grad_weights_kernel(),
                    Activation::Identity,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let grad_input_pipes = (0..layers.len())
            .map(|l| match l {
                0 => Ok(None),
                _ => ctx
                    .pipeline(&PipelineKey::with_activation(
                        Kernel::GradInput,
                        layers[l - 1].activation,
                    ))
                    .map(Some),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GpuMlp {
            grad_weights_pipes,
            variants,
            loss_pipe: ctx.pipeline(&PipelineKey::new(Kernel::Loss))?,
            tick_pipe: ctx.pipeline(&PipelineKey::new(Kernel::OptTick))?,
            update_pipe: ctx.pipeline(&PipelineKey::new(Kernel::OptUpdate))?,
            gather_pipe: ctx.pipeline(&PipelineKey::new(Kernel::Gather))?,
            reduce_alpha_pipe: match learned_alpha {
                true => Some(ctx.pipeline(&PipelineKey::new(Kernel::ReduceAlpha))?),
                false => None,
            },
            ctx,
            config: config.clone(),
            layers,
            optimizer,
            max_batch,
            params: params_buf,
            grads,
            moment1,
            moment2,
            state,
            eval_state,
            state_pair,
            opt_bind,
            tick_bind,
            xb,
            yb,
            idx,
            z,
            y,
            dz,
            partials,
            forward_pipes,
            grad_input_pipes,
            plans: HashMap::new(),
        })
    }

    /// The architecture.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// The optimizer settings.
    pub fn optimizer(&self) -> &OptimizerConfig {
        &self.optimizer
    }

    /// The largest batch this model's buffers hold.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// The context this model runs on.
    pub fn context(&self) -> &'c GpuContext {
        self.ctx
    }

    /// Compute dispatches in one training step (gather chunks included).
    pub fn dispatches_per_step(&self, gather_chunks: usize) -> usize {
        let l = self.layers.len();
        let alphas = self
            .layers
            .iter()
            .filter(|l| l.alpha_offset.is_some())
            .count();
        gather_chunks + l + 1 + l + (l - 1) + alphas + 2
    }

    fn ensure_plan(&mut self, batch: usize) -> Result<()> {
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
        if self.plans.contains_key(&batch) {
            return Ok(());
        }
        let ctx = self.ctx;
        let dims = |l: &Layer, store_z: u32| {
            ctx.uniform("layer", &LayerDims::of(batch, l, store_z, Some(l)))
        };
        let mut plan = Plan {
            forward_train: Vec::new(),
            forward_eval: Vec::new(),
            grad_weights: Vec::new(),
            grad_input: Vec::new(),
            reduce_alpha: Vec::new(),
            loss_train: self.loss_bind(batch, &self.state, 1),
            loss_eval: self.loss_bind(batch, &self.eval_state, 0),
            loss_grad_only: self.loss_bind(batch, &self.eval_state, 1),
        };
        for (l, layer) in self.layers.iter().enumerate() {
            let input = if l == 0 { &self.xb } else { &self.y[l - 1] };
            let (train_dims, eval_dims) = (dims(layer, 1), dims(layer, 0));
            for (dims, out) in [
                (&train_dims, &mut plan.forward_train),
                (&eval_dims, &mut plan.forward_eval),
            ] {
                out.push(ctx.bind_group(
                    self.variants[l].forward_kernel(),
                    &[
                        (0, input),
                        (1, &self.params),
                        (2, &self.z[l]),
                        (3, &self.y[l]),
                        (4, dims),
                    ],
                ));
            }
            let gw = self.variants[l].grad_weights_kernel();
            plan.grad_weights.push(match self.variants[l] {
                MatmulVariant::Scalar => ctx.bind_group(
                    gw,
                    &[
                        (0, input),
                        (1, &self.dz[l]),
                        (2, &self.grads),
                        (5, &train_dims),
                    ],
                ),
                MatmulVariant::Vec4 | MatmulVariant::Wide => ctx.bind_group(
                    gw,
                    &[
                        (0, input),
                        (5, &self.dz[l]),
                        (6, &self.grads),
                        (4, &train_dims),
                    ],
                ),
            });
            let prev = l.checked_sub(1).map(|p| &self.layers[p]);
            plan.grad_input.push(prev.map(|prev| {
                // grad_input applies the previous layer's act', so it carries that layer's α.
                let gi_dims =
                    ctx.uniform("grad_input", &LayerDims::of(batch, layer, 1, Some(prev)));
                ctx.bind_group(
                    Kernel::GradInput,
                    &[
                        (1, &self.dz[l]),
                        (3, &self.params),
                        (4, &self.z[l - 1]),
                        (6, &self.dz[l - 1]),
                        (5, &gi_dims),
                        (7, &self.partials),
                    ],
                )
            }));
            let alpha = prev.and_then(|p| p.alpha_offset);
            plan.reduce_alpha.push(match alpha {
                Some(alpha_offset) => {
                    let (x, y, z) = self.matmul_grid(batch, layer.fan_in, (32, 32));
                    let count = x * y * z * GRAD_INPUT_WORKGROUP as u32;
                    let uniform = ctx.uniform(
                        "reduce_alpha",
                        &AlphaDims {
                            count,
                            alpha_offset: alpha_offset as u32,
                            _pad: [0; 2],
                        },
                    );
                    Some(ctx.bind_group(
                        Kernel::ReduceAlpha,
                        &[(0, &self.partials), (1, &self.grads), (2, &uniform)],
                    ))
                }
                None => None,
            });
        }
        self.plans.insert(batch, plan);
        Ok(())
    }

    fn loss_bind(&self, batch: usize, state: &wgpu::Buffer, training: u32) -> wgpu::BindGroup {
        let dims = self.ctx.uniform(
            "loss",
            &LossDims {
                batch: batch as u32,
                classes: self.config.output as u32,
                loss_kind: match self.config.loss {
                    Loss::CrossEntropy => 0,
                    Loss::Mse => 1,
                },
                training,
            },
        );
        let last = self.layers.len() - 1;
        self.ctx.bind_group(
            Kernel::Loss,
            &[
                (0, &self.y[last]),
                (1, &self.yb),
                (2, &self.dz[last]),
                (3, state),
                (4, &dims),
            ],
        )
    }

    /// Bind groups that gather batches of `batch` rows from `data` into this model's input.
    pub fn gather_plan(&self, data: &GpuDataset, batch: usize) -> Result<GatherPlan> {
        if data.n_features != self.config.input {
            return Err(Error::shape(
                "dataset features",
                format!("{} features (the model's input width)", self.config.input),
                data.n_features,
            ));
        }
        if data.n_classes > self.config.output {
            return Err(Error::shape(
                "dataset classes",
                format!(
                    "at most {} classes (the model's outputs)",
                    self.config.output
                ),
                data.n_classes,
            ));
        }
        let groups = data
            .chunks
            .iter()
            .map(|(features, start, end)| {
                let dims = self.ctx.uniform(
                    "gather",
                    &GatherDims {
                        batch: batch as u32,
                        n_features: data.n_features as u32,
                        row_start: *start,
                        row_end: *end,
                    },
                );
                self.ctx.bind_group(
                    Kernel::Gather,
                    &[
                        (0, features),
                        (1, &data.labels),
                        (2, &self.idx),
                        (3, &self.xb),
                        (4, &self.yb),
                        (5, &dims),
                    ],
                )
            })
            .collect();
        Ok(GatherPlan { batch, groups })
    }

    /// Workgroups for `rows × cols` outputs in `tile`-sized blocks (validated against the
    /// limit at creation, for the smallest tile).
    fn matmul_grid(&self, rows: usize, cols: usize, tile: (usize, usize)) -> (u32, u32, u32) {
        matmul_grid(rows, cols, tile, self.ctx.max_workgroups_per_dim).unwrap_or((1, 1, 1))
    }

    /// The matmul core of each layer.
    pub fn variants(&self) -> &[MatmulVariant] {
        &self.variants
    }

    fn encode_forward(&self, pass: &mut wgpu::ComputePass, plan: &Plan, batch: usize, train: bool) {
        let groups = if train {
            &plan.forward_train
        } else {
            &plan.forward_eval
        };
        for (l, layer) in self.layers.iter().enumerate() {
            let (x, y, z) = self.matmul_grid(batch, layer.fan_out, self.variants[l].tile());
            pass.set_pipeline(&self.forward_pipes[l]);
            pass.set_bind_group(0, &groups[l], &[]);
            pass.dispatch_workgroups(x, y, z);
        }
    }

    fn encode_loss(&self, pass: &mut wgpu::ComputePass, plan: &Plan, mode: LossMode) {
        pass.set_pipeline(&self.loss_pipe);
        let group = match mode {
            LossMode::Train => &plan.loss_train,
            LossMode::Eval => &plan.loss_eval,
            LossMode::GradOnly => &plan.loss_grad_only,
        };
        pass.set_bind_group(0, group, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }

    fn encode_backward(&self, pass: &mut wgpu::ComputePass, plan: &Plan, batch: usize) {
        for (l, layer) in self.layers.iter().enumerate().rev() {
            let (x, y, z) = self.matmul_grid(layer.fan_in, layer.fan_out, self.variants[l].tile());
            pass.set_pipeline(&self.grad_weights_pipes[l]);
            pass.set_bind_group(0, &plan.grad_weights[l], &[]);
            pass.dispatch_workgroups(x, y, z);
            if let (Some(pipe), Some(group)) = (&self.grad_input_pipes[l], &plan.grad_input[l]) {
                let (x, y, z) = self.matmul_grid(batch, layer.fan_in, (32, 32));
                pass.set_pipeline(pipe);
                pass.set_bind_group(0, group, &[]);
                pass.dispatch_workgroups(x, y, z);
            }
            if let (Some(pipe), Some(group)) = (&self.reduce_alpha_pipe, &plan.reduce_alpha[l]) {
                pass.set_pipeline(pipe);
                pass.set_bind_group(0, group, &[]);
                pass.dispatch_workgroups(1, 1, 1);
            }
        }
    }

    fn encode_update(&self, pass: &mut wgpu::ComputePass) {
        pass.set_pipeline(&self.tick_pipe);
        pass.set_bind_group(0, &self.tick_bind, &[]);
        pass.dispatch_workgroups(1, 1, 1);
        let (x, y) = self
            .ctx
            .grid_1d((self.config.n_params() as u32).div_ceil(256));
        pass.set_pipeline(&self.update_pipe);
        pass.set_bind_group(0, &self.opt_bind, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }

    fn encode_gather(&self, pass: &mut wgpu::ComputePass, gather: &GatherPlan) {
        let total = (gather.batch * self.config.input) as u32;
        let (x, y) = self.ctx.grid_1d(total.div_ceil(256));
        pass.set_pipeline(&self.gather_pipe);
        for group in &gather.groups {
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(x, y, 1);
        }
    }

    fn begin_pass<'e>(enc: &'e mut wgpu::CommandEncoder, label: &str) -> wgpu::ComputePass<'e> {
        enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        })
    }

    /// Records one training step on rows `perm[offset..offset + batch]` of `data`:
    /// a copy of the indices, then one compute pass (gather, forwards, loss, backwards, update).
    pub fn encode_train_step(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        data: &GpuDataset,
        gather: &GatherPlan,
        offset: usize,
    ) -> Result<()> {
        let batch = self.encode_batch_indices(enc, &data.perm, gather, offset)?;
        let plan = &self.plans[&batch];
        let mut pass = Self::begin_pass(enc, "train step");
        self.encode_gather(&mut pass, gather);
        self.encode_forward(&mut pass, plan, batch, true);
        self.encode_loss(&mut pass, plan, LossMode::Train);
        self.encode_backward(&mut pass, plan, batch);
        self.encode_update(&mut pass);
        Ok(())
    }

    /// Records the copy of `order[offset..offset + batch]` into the batch-index buffer (after
    /// making sure the batch size has its bind groups); returns the batch size.
    fn encode_batch_indices(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        order: &wgpu::Buffer,
        gather: &GatherPlan,
        offset: usize,
    ) -> Result<usize> {
        let batch = gather.batch;
        self.ensure_plan(batch)?;
        enc.copy_buffer_to_buffer(order, (offset * 4) as u64, &self.idx, 0, (batch * 4) as u64);
        Ok(batch)
    }

    /// Records the evaluation of rows `offset..offset + batch` of `data` (in order) into the
    /// evaluation metrics.
    pub fn encode_eval_batch(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        data: &GpuDataset,
        gather: &GatherPlan,
        offset: usize,
    ) -> Result<()> {
        let batch = self.encode_batch_indices(enc, &data.order, gather, offset)?;
        let plan = &self.plans[&batch];
        let mut pass = Self::begin_pass(enc, "eval batch");
        self.encode_gather(&mut pass, gather);
        self.encode_forward(&mut pass, plan, batch, false);
        self.encode_loss(&mut pass, plan, LossMode::Eval);
        Ok(())
    }

    /// Records the zeroing of the running training and evaluation metrics.
    pub fn encode_reset_metrics(&self, enc: &mut wgpu::CommandEncoder) {
        enc.clear_buffer(&self.state, METRICS_OFFSET, Some(32 - METRICS_OFFSET));
        enc.clear_buffer(&self.eval_state, METRICS_OFFSET, Some(32 - METRICS_OFFSET));
    }

    /// Records a copy of both states into one buffer, so one readback returns both.
    pub fn encode_snapshot_states(&self, enc: &mut wgpu::CommandEncoder) {
        enc.copy_buffer_to_buffer(&self.state, 0, &self.state_pair, 0, 32);
        enc.copy_buffer_to_buffer(&self.eval_state, 0, &self.state_pair, 32, 32);
    }

    /// Reads the (training, evaluation) states copied by [`Self::encode_snapshot_states`].
    pub fn read_snapshot(&self) -> Result<(TrainState, TrainState)> {
        let v: Vec<TrainState> = self.ctx.read(&self.state_pair, 2)?;
        Ok((v[0], v[1]))
    }

    fn upload_batch(&mut self, x: &[f32], labels: Option<&[u32]>, batch: usize) -> Result<()> {
        check_batch(&self.config, x.len(), labels, batch)?;
        self.ensure_plan(batch)?;
        self.ctx
            .queue
            .write_buffer(&self.xb, 0, bytemuck::cast_slice(x));
        if let Some(labels) = labels {
            self.ctx
                .queue
                .write_buffer(&self.yb, 0, bytemuck::cast_slice(labels));
        }
        Ok(())
    }

    /// The network's outputs (logits) for a batch given on the host.
    pub fn forward(&mut self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
        self.upload_batch(x, None, batch)?;
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = Self::begin_pass(&mut enc, "forward");
            self.encode_forward(&mut pass, &self.plans[&batch], batch, false);
        }
        self.ctx.queue.submit([enc.finish()]);
        let last = self.layers.len() - 1;
        self.ctx.read(&self.y[last], batch * self.config.output)
    }

    /// Mean loss, correct count and the gradient of the mean loss w.r.t. every parameter
    /// (flat), for a batch given on the host. Parameters are not changed.
    pub fn loss_and_gradients(
        &mut self,
        x: &[f32],
        labels: &[u32],
        batch: usize,
    ) -> Result<(BatchLoss<f32>, Vec<f32>)> {
        self.upload_batch(x, Some(labels), batch)?;
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&self.eval_state, 0, None);
        {
            let plan = &self.plans[&batch];
            let mut pass = Self::begin_pass(&mut enc, "gradients");
            self.encode_forward(&mut pass, plan, batch, true);
            self.encode_loss(&mut pass, plan, LossMode::GradOnly);
            self.encode_backward(&mut pass, plan, batch);
        }
        self.ctx.queue.submit([enc.finish()]);
        let s: TrainState = self.ctx.read(&self.eval_state, 1)?[0];
        let grads = self.ctx.read(&self.grads, self.config.n_params())?;
        Ok((
            BatchLoss {
                loss: s.mean_loss(),
                correct: s.correct as usize,
            },
            grads,
        ))
    }

    /// One optimizer step on a batch given on the host (one encoder, one submit). Returns the
    /// batch's loss; a non-finite loss is [`Error::Diverged`] and the parameters are kept.
    pub fn train_step(
        &mut self,
        x: &[f32],
        labels: &[u32],
        batch: usize,
    ) -> Result<BatchLoss<f32>> {
        self.upload_batch(x, Some(labels), batch)?;
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&self.state, METRICS_OFFSET, Some(32 - METRICS_OFFSET));
        {
            let plan = &self.plans[&batch];
            let mut pass = Self::begin_pass(&mut enc, "train step");
            self.encode_forward(&mut pass, plan, batch, true);
            self.encode_loss(&mut pass, plan, LossMode::Train);
            self.encode_backward(&mut pass, plan, batch);
            self.encode_update(&mut pass);
        }
        self.ctx.queue.submit([enc.finish()]);
        let s = self.train_state()?;
        if s.diverged != 0 {
            return Err(Error::Diverged {
                epoch: 0,
                step: s.bad_step as u64,
                loss: s.bad_loss,
            });
        }
        Ok(BatchLoss {
            loss: s.mean_loss(),
            correct: s.correct as usize,
        })
    }

    /// The training state (step counter, divergence flag, running metrics).
    pub fn train_state(&self) -> Result<TrainState> {
        Ok(self.ctx.read::<TrainState>(&self.state, 1)?[0])
    }

    /// Clears the divergence flag (after the caller has handled it).
    pub fn clear_divergence(&self) {
        self.ctx
            .queue
            .write_buffer(&self.state, 4, bytemuck::cast_slice(&[0u32, 0, 0]));
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

    /// Restores an optimizer state (for resuming a run).
    pub fn set_optimizer_state(&self, state: &OptimizerState<f32>) -> Result<()> {
        let n = self.config.n_params();
        if state.m.len() != n || state.v.len() != n {
            return Err(Error::shape(
                "optimizer state",
                format!("{n} values per moment"),
                format!("{} and {}", state.m.len(), state.v.len()),
            ));
        }
        let step = u32::try_from(state.step)
            .map_err(|_| Error::config("optimizer state", "step count exceeds 2^32"))?;
        let q = &self.ctx.queue;
        q.write_buffer(&self.moment1, 0, bytemuck::cast_slice(&state.m));
        q.write_buffer(&self.moment2, 0, bytemuck::cast_slice(&state.v));
        q.write_buffer(&self.state, 0, bytemuck::cast_slice(&[step, 0, 0, 0]));
        Ok(())
    }
}
