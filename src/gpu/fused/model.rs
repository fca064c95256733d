//! `FusedMlp`: creation, host-side batches, training steps and parameter access.

use std::collections::HashMap;

use super::plan::{Mode, chunking, layer_table};
use super::{Exchange, FusedMlp, FusedShape, LaneSetup, TEX_WIDTH, pipeline};
use crate::config::{Loss, MlpConfig};
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{Kernel, PipelineKey};
use crate::gpu::state::States;
use crate::gpu::uniforms::{OptParams, PackDims, TrainState};
use crate::optim::{OptimizerConfig, OptimizerState};
use crate::reference::{BatchLoss, Target, check_batch};

impl FusedMlp {
    /// The fused kernel's shape for `config` on this adapter, or why it does not fit.
    pub fn fits(ctx: &GpuContext, config: &MlpConfig) -> std::result::Result<FusedShape, String> {
        FusedShape::for_model(config, LaneSetup::for_adapter(ctx.features, &ctx.info))
    }

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
        let setup = LaneSetup::for_adapter(ctx.features, &ctx.info);
        Self::with_lanes(ctx, config, optimizer, max_batch, params, setup)
    }

    /// [`Self::from_params`] with the row group chosen by the caller (tests run the workgroup
    /// exchange on adapters that have subgroups).
    pub fn with_lanes(
        ctx: &GpuContext,
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
                "the fused kernel does not clip gradients; use the layered path (--kernel layered) for --clip-grad-norm",
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
        let pack_dims = ctx.uniform(
            "fused pack",
            &PackDims {
                n: n as u32,
                _pad0: 0,
                _pad1: 0,
                _pad2: 0,
            },
        );
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
        let states = States::new(ctx);
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
                (4, &states.train),
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
            ctx: ctx.clone(),
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
            states,
            xb,
            labels,
            targets,
            outputs,
            partials,
            rows,
            net,
            opt_uniform,
            opt_bind,
            plans: HashMap::new(),
            idx: ctx.storage_zeroed("fused batch indices", bytes(max_batch)),
            gathers: HashMap::new(),
        };
        model.submit_pack();
        Ok(model)
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

    /// Compute dispatches in one training step from a resident dataset with `gather_chunks`
    /// row chunks: the gathers, then fused, reduce, update and pack.
    pub fn dispatches_per_step(&self, gather_chunks: usize) -> usize {
        gather_chunks + 4
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
                "loss",
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
        let s = self.states.read_eval(&self.ctx)?;
        let grads = self.ctx.read(&self.grads, self.config.n_params())?;
        Ok((BatchLoss::from_state(&s), grads))
    }

    /// Mean loss, correct count and the gradient of the mean loss w.r.t. every parameter
    /// (flat), for a batch given on the host (two dispatches). Parameters are kept. Float
    /// targets (regression) need the MSE loss.
    pub fn loss_and_gradients(
        &mut self,
        x: &[f32],
        target: Target<'_>,
        batch: usize,
    ) -> Result<(BatchLoss<f32>, Vec<f32>)> {
        let regress = self.upload_target(x, target, batch)?;
        self.run(batch, Mode::Gradients, regress, Some(false))?;
        self.read_gradients()
    }

    /// Uploads a batch with its labels or float targets; true for float targets.
    fn upload_target(&mut self, x: &[f32], target: Target<'_>, batch: usize) -> Result<bool> {
        match target {
            Target::Labels(labels) => self.upload(x, Some(labels), batch).map(|()| false),
            Target::Values(values) => self.upload_targets(x, values, batch).map(|()| true),
        }
    }

    fn finish_step(&self) -> Result<BatchLoss<f32>> {
        self.states.finish_step(&self.ctx)
    }

    /// One optimizer step on a batch given on the host (four dispatches: the fused kernel,
    /// the reduction, the update and the weight pack; one submit). A non-finite loss is
    /// [`Error::Diverged`] and the parameters are kept.
    pub fn train_step(
        &mut self,
        x: &[f32],
        target: Target<'_>,
        batch: usize,
    ) -> Result<BatchLoss<f32>> {
        let regress = self.upload_target(x, target, batch)?;
        self.run(batch, Mode::Train, regress, Some(true))?;
        self.finish_step()
    }

    /// Mean loss and correct count of a labelled batch (no gradients, parameters kept).
    pub fn evaluate(&mut self, x: &[f32], labels: &[u32], batch: usize) -> Result<BatchLoss<f32>> {
        self.upload(x, Some(labels), batch)?;
        self.run(batch, Mode::Eval, false, Some(false))?;
        let s = self.states.read_eval(&self.ctx)?;
        Ok(BatchLoss::from_state(&s))
    }

    /// Uploads a labelled batch for [`Self::encode_repeated`] (benchmarks).
    pub fn upload_batch(&mut self, x: &[f32], labels: &[u32], batch: usize) -> Result<()> {
        self.upload(x, Some(labels), batch)?;
        self.ensure_plan(batch, Mode::Train, false)?;
        self.ensure_plan(batch, Mode::Eval, false)
    }

    /// Records `steps` training steps on the uploaded batch into one compute pass (with
    /// `infer`, evaluations instead: forward, loss and metrics). For benchmarks: the data stays
    /// where it is.
    pub fn encode_repeated(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        batch: usize,
        steps: usize,
        infer: bool,
    ) -> Result<()> {
        let mode = if infer { Mode::Eval } else { Mode::Train };
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

    /// The fused kernel's metrics are unscaled: only a scale of all ones is accepted.
    pub fn set_target_scale(&mut self, scale: &[f32]) -> Result<()> {
        if scale.len() != self.config.output {
            return Err(Error::shape(
                "target scale",
                self.config.output,
                scale.len(),
            ));
        }
        if scale.iter().any(|&s| s != 1.0) {
            return Err(Error::config(
                "target scale",
                "the fused kernel reports regression errors in standardised units only; train standardised targets on the layered path",
            ));
        }
        Ok(())
    }

    /// Sets the learning rate of the following steps (for a schedule, between epochs).
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        crate::model::check_lr(lr)?;
        self.optimizer.lr = lr;
        let offset = std::mem::offset_of!(OptParams, lr) as u64;
        self.ctx
            .queue
            .write_buffer(&self.opt_uniform, offset, bytemuck::bytes_of(&lr));
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
                "loss",
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
        self.states.encode_reset_train(&mut enc);
        self.ctx.queue.submit([enc.finish()]);
    }

    /// The training state (step counter, divergence flag, running metrics).
    pub fn train_state(&self) -> Result<TrainState> {
        self.states.read_train(&self.ctx)
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
