//! `GpuMlp`: an MLP whose parameters, gradients, optimizer state and activations live on the
//! GPU. Every buffer is created once; a training step is recorded as
//! gather → layer forwards → loss → layer backwards → tick → update in one compute pass, and
//! many steps go into one command encoder and one submit.
//!
//! - `mod.rs`: the model's buffers, construction and host transfers.
//! - `layout.rs`: the parameters' layout on the GPU (aligned blocks, padded output layer).
//! - `plan.rs`: the dispatches of a batch size (and of a dataset's gather), built once.
//! - `encode.rs`: recording steps and evaluations into command encoders.

mod encode;
mod layout;
mod plan;

use std::collections::HashMap;

use crate::config::{Layer, MlpConfig, Task};
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::matmul::MatmulVariant;
use crate::gpu::state::States;
use crate::gpu::tune;
use crate::gpu::uniforms::OptParams;
use crate::optim::{OptimizerConfig, OptimizerState};
use crate::reference::{BatchLoss, Target, check_target};

pub use crate::gpu::uniforms::TrainState;

use layout::DeviceLayout;
use plan::{GatherPlan, LossMode, Plan};

/// An MLP resident on the GPU.
pub struct GpuMlp {
    ctx: GpuContext,
    config: MlpConfig,
    /// The layers with their device offsets (`layout.layers`).
    layers: Vec<Layer>,
    layout: DeviceLayout,
    optimizer: OptimizerConfig,
    max_batch: usize,
    params: wgpu::Buffer,
    /// Each layer's Wᵀ (past the first) at `t_offsets[l]`, rewritten before its backward.
    params_t: wgpu::Buffer,
    t_offsets: Vec<usize>,
    grads: wgpu::Buffer,
    moment1: wgpu::Buffer,
    moment2: wgpu::Buffer,
    states: States,
    opt_uniform: wgpu::Buffer,
    xb: wgpu::Buffer,
    yb: wgpu::Buffer,
    /// Regression targets of the batch `[max_batch × output]` (4 bytes for classification).
    tb: wgpu::Buffer,
    /// Per-output scale of the regression error metrics (the targets' std, or 1).
    target_scale: wgpu::Buffer,
    idx: wgpu::Buffer,
    z: Vec<wgpu::Buffer>,
    y: Vec<wgpu::Buffer>,
    dz: Vec<wgpu::Buffer>,
    /// grad_input's partial sums of dα, one per invocation of its largest grid.
    partials: wgpu::Buffer,
    /// Gradient clipping's partial sums of squares (one per workgroup).
    clip_partials: wgpu::Buffer,
    /// The forward and dW/db core of each layer.
    variants: Vec<MatmulVariant>,
    /// The forward core that computes dZ of the layer before each layer.
    grad_input_variants: Vec<MatmulVariant>,
    update: Vec<crate::gpu::Dispatch>,
    /// False for a forward-only model ([`GpuMlp::for_inference`]).
    training: bool,
    plans: HashMap<usize, Plan>,
    gathers: HashMap<(u64, usize), GatherPlan>,
}

impl GpuMlp {
    /// A model with the config's seeded initial parameters, for batches of up to `max_batch`.
    pub fn new(
        ctx: &GpuContext,
        config: &MlpConfig,
        optimizer: OptimizerConfig,
        max_batch: usize,
    ) -> Result<Self> {
        config.validate()?;
        Self::from_params(ctx, config, optimizer, max_batch, &config.init_params())
    }

    /// A model with the given flat parameters.
    pub fn from_params(
        ctx: &GpuContext,
        config: &MlpConfig,
        optimizer: OptimizerConfig,
        max_batch: usize,
        params: &[f32],
    ) -> Result<Self> {
        Self::build(ctx, config, optimizer, max_batch, params, true)
    }

    /// A forward-only model (for [`crate::Predictor`]): no gradient, optimizer or transposed
    /// weight buffers, no loss or backward dispatches; only [`GpuMlp::forward`] may be used.
    pub(crate) fn for_inference(
        ctx: &GpuContext,
        config: &MlpConfig,
        max_batch: usize,
        params: &[f32],
    ) -> Result<Self> {
        Self::build(
            ctx,
            config,
            OptimizerConfig::sgd(0.1),
            max_batch,
            params,
            false,
        )
    }

    fn build(
        ctx: &GpuContext,
        config: &MlpConfig,
        optimizer: OptimizerConfig,
        max_batch: usize,
        params: &[f32],
        training: bool,
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
        let layout = DeviceLayout::of(config);
        let layers = layout.layers.clone();
        let n = layout.len;
        // Wᵀ of every layer past the first, each at a multiple of 4 floats for the vec4 cores.
        let mut t_offsets = vec![0; layers.len()];
        let mut t_len = 0;
        for (l, layer) in layers.iter().enumerate().skip(1) {
            t_offsets[l] = t_len;
            t_len += (layer.fan_in * layer.fan_out).div_ceil(4) * 4;
        }
        check_sizes(ctx, config, n, max_batch, t_len)?;
        let variants = layers
            .iter()
            .map(|l| tune::choose(ctx, max_batch, l.fan_in, l.fan_out, l.w_offset, l.b_offset))
            .collect::<Result<Vec<_>>>()?;
        let grad_input_variants = layers
            .iter()
            .enumerate()
            .map(|(i, l)| match i {
                _ if !training => Ok(MatmulVariant::Scalar),
                0 => Ok(MatmulVariant::Scalar),
                _ => tune::choose(
                    ctx,
                    max_batch,
                    l.fan_out,
                    l.fan_in,
                    t_offsets[i],
                    t_offsets[i],
                ),
            })
            .collect::<Result<Vec<_>>>()?;
        let bytes = |count: usize| (count * 4) as u64;
        // Training-only buffers: one float each in a forward-only model.
        let train_bytes = |count: usize| if training { bytes(count) } else { 4 };
        let act_buf =
            |label: &str, width: usize| ctx.storage_zeroed(label, bytes(max_batch * width));
        let partials_len = (1..layers.len())
            .filter(|&l| training && layers[l - 1].alpha_offset.is_some())
            .map(|l| {
                let (x, y, z) =
                    crate::gpu::matmul::grad_input_grid(ctx, max_batch, layers[l].fan_in)?;
                Ok((x * y * z) as usize * crate::gpu::matmul::GRAD_INPUT_WORKGROUP)
            })
            .collect::<Result<Vec<usize>>>()?
            .into_iter()
            .max()
            .unwrap_or(1);
        let mut mlp = GpuMlp {
            ctx: ctx.clone(),
            config: config.clone(),
            optimizer,
            max_batch,
            params: ctx.storage_from("params", &layout.to_device(params)),
            params_t: ctx.storage_zeroed("params_t", train_bytes(t_len)),
            t_offsets,
            grads: ctx.storage_zeroed("grads", train_bytes(n)),
            moment1: ctx.storage_zeroed("moment1", train_bytes(n)),
            moment2: ctx.storage_zeroed("moment2", train_bytes(n)),
            states: States::new(ctx),
            opt_uniform: ctx.uniform(
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
                    clip_norm: optimizer.clip_norm,
                    _pad0: 0,
                    _pad1: 0,
                    _pad2: 0,
                },
            ),
            xb: act_buf("xb", config.input),
            yb: ctx.storage_zeroed("yb", bytes(max_batch)),
            tb: match config.task {
                Task::Regress => act_buf("tb", config.output),
                Task::Classify => ctx.storage_zeroed("tb", 4),
            },
            target_scale: ctx.storage_from("target_scale", &vec![1.0f32; config.output]),
            idx: ctx.storage_zeroed("batch_indices", bytes(max_batch)),
            z: layers.iter().map(|l| act_buf("z", l.fan_out)).collect(),
            y: layers.iter().map(|l| act_buf("y", l.fan_out)).collect(),
            dz: layers
                .iter()
                .map(|l| ctx.storage_zeroed("dz", train_bytes(max_batch * l.fan_out)))
                .collect(),
            partials: ctx.storage_zeroed("alpha_partials", bytes(partials_len)),
            clip_partials: ctx
                .storage_zeroed("clip_partials", train_bytes(plan::clip_groups(n).max(1))),
            training,
            layers,
            layout,
            variants,
            grad_input_variants,
            update: Vec::new(),
            plans: HashMap::new(),
            gathers: HashMap::new(),
        };
        if training {
            mlp.update = mlp.update_dispatches()?;
        }
        // Every dispatch of a full batch is built (and every grid checked) before any work.
        mlp.ensure_plan(max_batch)?;
        ctx.check("creating the model's buffers")?;
        Ok(mlp)
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

    /// The running training and evaluation states.
    pub(crate) fn states(&self) -> &States {
        &self.states
    }

    /// The context this model runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The matmul core of each layer (forward and dW/db).
    pub fn variants(&self) -> &[MatmulVariant] {
        &self.variants
    }

    /// The forward core computing dZ of the previous layer, for each layer past the first.
    pub fn grad_input_variants(&self) -> &[MatmulVariant] {
        &self.grad_input_variants[1.min(self.grad_input_variants.len())..]
    }

    /// Compute dispatches in one training step with a full batch (gather chunks included).
    pub fn dispatches_per_step(&self, gather_chunks: usize) -> usize {
        let plan = &self.plans[&self.max_batch];
        gather_chunks
            + plan.forward_train.len()
            + plan.loss_train.len()
            + plan.backward.len()
            + self.update.len()
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
        if !self.plans.contains_key(&batch) {
            let plan = self.build_plan(batch)?;
            self.plans.insert(batch, plan);
        }
        Ok(())
    }

    fn upload_batch(&mut self, x: &[f32], target: Option<Target>, batch: usize) -> Result<()> {
        check_target(&self.config, x.len(), target, batch)?;
        self.ensure_plan(batch)?;
        self.ctx
            .queue
            .write_buffer(&self.xb, 0, bytemuck::cast_slice(x));
        match target {
            Some(Target::Labels(labels)) => {
                self.ctx
                    .queue
                    .write_buffer(&self.yb, 0, bytemuck::cast_slice(labels));
            }
            Some(Target::Values(values)) => {
                self.ctx
                    .queue
                    .write_buffer(&self.tb, 0, bytemuck::cast_slice(values));
            }
            None => {}
        }
        Ok(())
    }

    /// Sets the per-output scale of the regression error metrics (MSE, MAE): the std of each
    /// standardised target, so the metrics come back in the targets' own units.
    pub fn set_target_scale(&self, scale: &[f32]) -> Result<()> {
        if scale.len() != self.config.output {
            return Err(Error::shape(
                "target scale",
                self.config.output,
                scale.len(),
            ));
        }
        self.ctx
            .queue
            .write_buffer(&self.target_scale, 0, bytemuck::cast_slice(scale));
        Ok(())
    }

    /// The network's outputs (logits) for a batch given on the host.
    pub fn forward(&mut self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
        self.upload_batch(x, None, batch)?;
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encode::begin_pass(&mut enc, "forward");
            encode::record(&mut pass, &self.plans[&batch].forward_eval);
        }
        self.ctx.queue.submit([enc.finish()]);
        let last = self.layers.len() - 1;
        let stride = self.layout.output_stride();
        let padded: Vec<f32> = self.ctx.read(&self.y[last], batch * stride)?;
        let out = self.config.output;
        Ok(padded
            .chunks(stride)
            .flat_map(|row| row[..out].iter().copied())
            .collect())
    }

    /// Mean loss, correct count and the gradient of the mean loss w.r.t. every parameter
    /// (flat), for a batch given on the host. Parameters are not changed.
    pub fn loss_and_gradients(
        &mut self,
        x: &[f32],
        target: Target,
        batch: usize,
    ) -> Result<(BatchLoss<f32>, Vec<f32>)> {
        self.upload_batch(x, Some(target), batch)?;
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&self.states.eval, 0, None);
        {
            let plan = &self.plans[&batch];
            let mut pass = encode::begin_pass(&mut enc, "gradients");
            encode::record(&mut pass, &plan.forward_train);
            encode::record(&mut pass, plan.loss(LossMode::GradOnly));
            encode::record(&mut pass, &plan.backward);
        }
        self.ctx.queue.submit([enc.finish()]);
        let s = self.states.read_eval(&self.ctx)?;
        let grads = self
            .layout
            .to_host(&self.ctx.read(&self.grads, self.layout.len)?);
        Ok((BatchLoss::from_state(&s), grads))
    }

    /// One optimizer step on a batch given on the host (one encoder, one submit). Returns the
    /// batch's loss; a non-finite loss is [`Error::Diverged`] and the parameters are kept.
    pub fn train_step(
        &mut self,
        x: &[f32],
        target: Target,
        batch: usize,
    ) -> Result<BatchLoss<f32>> {
        self.upload_batch(x, Some(target), batch)?;
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        self.states.encode_reset_train(&mut enc);
        {
            let plan = &self.plans[&batch];
            let mut pass = encode::begin_pass(&mut enc, "train step");
            encode::record(&mut pass, &plan.forward_train);
            encode::record(&mut pass, plan.loss(LossMode::Train));
            encode::record(&mut pass, &plan.backward);
            encode::record(&mut pass, &self.update);
        }
        self.ctx.queue.submit([enc.finish()]);
        self.states.finish_step(&self.ctx)
    }

    /// Sets the learning rate of the following steps (a learning-rate schedule calls it
    /// between epochs): one write into the optimizer's uniform, applied at the next submit.
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        crate::model::check_lr(lr)?;
        self.optimizer.lr = lr;
        let offset = std::mem::offset_of!(OptParams, lr) as u64;
        self.ctx
            .queue
            .write_buffer(&self.opt_uniform, offset, bytemuck::bytes_of(&lr));
        Ok(())
    }

    /// The training state (step counter, divergence flag, running metrics).
    pub fn train_state(&self) -> Result<TrainState> {
        self.states.read_train(&self.ctx)
    }

    /// The flat parameters (in the host layout of [`MlpConfig::layers`]), read back.
    pub fn params(&self) -> Result<Vec<f32>> {
        Ok(self
            .layout
            .to_host(&self.ctx.read(&self.params, self.layout.len)?))
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
        self.ctx.queue.write_buffer(
            &self.params,
            0,
            bytemuck::cast_slice(&self.layout.to_device(params)),
        );
        Ok(())
    }

    /// The optimizer state (step count and moment buffers), read back.
    pub fn optimizer_state(&self) -> Result<OptimizerState<f32>> {
        let n = self.layout.len;
        Ok(OptimizerState {
            step: self.train_state()?.step as u64,
            m: self.layout.to_host(&self.ctx.read(&self.moment1, n)?),
            v: self.layout.to_host(&self.ctx.read(&self.moment2, n)?),
        })
    }

    /// Restores an optimizer state (for resuming a run).
    pub fn set_optimizer_state(&self, state: &OptimizerState<f32>) -> Result<()> {
        let n = self.config.n_params();
        state.check_len(n)?;
        let step = u32::try_from(state.step)
            .map_err(|_| Error::config("optimizer state", "step count exceeds 2^32"))?;
        let q = &self.ctx.queue;
        q.write_buffer(
            &self.moment1,
            0,
            bytemuck::cast_slice(&self.layout.to_device(&state.m)),
        );
        q.write_buffer(
            &self.moment2,
            0,
            bytemuck::cast_slice(&self.layout.to_device(&state.v)),
        );
        self.states.set_step(&self.ctx, step);
        Ok(())
    }
}

/// Refuses a model whose buffers exceed the adapter's binding or buffer limits, naming the
/// buffer and what to change, before anything is allocated.
fn check_sizes(
    ctx: &GpuContext,
    config: &MlpConfig,
    n: usize,
    max_batch: usize,
    t_len: usize,
) -> Result<()> {
    let limit = ctx
        .limits
        .max_storage_buffer_binding_size
        .min(ctx.limits.max_buffer_size);
    let widest = config.widths().into_iter().max().unwrap_or(1).div_ceil(4) * 4;
    let checks = [
        (
            format!("the {n} parameters (and their gradients and optimizer moments)"),
            n as u64 * 4,
            "narrower layers",
        ),
        (
            format!("the transposed weights ({t_len} values)"),
            t_len as u64 * 4,
            "narrower layers",
        ),
        (
            format!("a batch of {max_batch} × {widest} activations"),
            (max_batch as u64) * (widest as u64) * 4,
            "a smaller batch or narrower layers",
        ),
    ];
    for (what, bytes, fix) in checks {
        if bytes > limit {
            return Err(Error::AdapterUnsuitable {
                adapter: ctx.info.name.clone(),
                reason: format!(
                    "{what} need {bytes} bytes, past the adapter's limit of {limit} bytes per buffer; use {fix}"
                ),
            });
        }
    }
    Ok(())
}
