//! The uniforms, bind groups and dispatches of a `FusedMlp`, per batch size and mode.

use super::{FusedMlp, MAX_LAYERS};
use crate::config::{Layer, Loss};
use crate::error::{Error, Result};
use crate::gpu::kernels::Kernel;
use crate::gpu::uniforms::{FusedDims, FusedLayer, FusedLayers, ReduceDims};

/// Bits of `FusedDims.flags` (fused_mlp.wgsl).
pub(super) const FLAG_GRADS: u32 = 1;
pub(super) const FLAG_LOSS: u32 = 2;
pub(super) const FLAG_OUTPUTS: u32 = 4;
pub(super) const FLAG_TARGETS: u32 = 8;
/// Bits of `ReduceDims.flags` (fused_reduce.wgsl).
pub(super) const RED_GRADS: u32 = 1;
pub(super) const RED_METRICS: u32 = 2;
pub(super) const RED_TRAIN: u32 = 4;
/// Invocations per workgroup of the reduction.
pub(super) const REDUCE_WG: u32 = 64;

/// What one recorded fused dispatch computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Mode {
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
pub(super) struct Plan {
    fused: wgpu::BindGroup,
    fused_grid: (u32, u32),
    reduce: Option<(wgpu::BindGroup, (u32, u32))>,
}

impl FusedMlp {
    /// Records the copy of the parameters into the texture the fused kernel reads.
    pub(super) fn encode_pack(&self, pass: &mut wgpu::ComputePass) {
        let groups = (self.config.n_params() as u32).div_ceil(64);
        let (x, y) = self.ctx.grid_1d(groups);
        pass.set_pipeline(&self.pack_pipe);
        pass.set_bind_group(0, &self.pack_bind, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }

    /// Submits [`Self::encode_pack`] on its own (after the parameters were written).
    pub(super) fn submit_pack(&self) {
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

    pub(super) fn ensure_plan(&mut self, batch: usize, mode: Mode, targets: bool) -> Result<()> {
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
        let ctx = &self.ctx;
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
                    // L1 and Huber are refused by FusedShape::for_model.
                    _ => 1,
                },
                inv_batch: 1.0 / batch as f32,
                metrics_at: self.config.n_params().div_ceil(4) as u32 * 4,
                _pad0: 0,
                _pad1: 0,
                _pad2: 0,
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
                    Mode::Train => (RED_GRADS | RED_METRICS | RED_TRAIN, &self.states.train),
                    Mode::Gradients => (RED_GRADS | RED_METRICS, &self.states.eval),
                    _ => (RED_METRICS, &self.states.eval),
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
                        _pad0: 0,
                        _pad1: 0,
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

    pub(super) fn encode(
        &self,
        pass: &mut wgpu::ComputePass,
        batch: usize,
        mode: Mode,
        targets: bool,
    ) {
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

    pub(super) fn run(
        &mut self,
        batch: usize,
        mode: Mode,
        targets: bool,
        clear: Option<bool>,
    ) -> Result<()> {
        self.ensure_plan(batch, mode, targets)?;
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        match clear {
            Some(true) => self.states.encode_reset_train(&mut enc),
            Some(false) => enc.clear_buffer(&self.states.eval, 0, None),
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
}

/// Fewest rows per chunk: a chunk loads each layer's weights once, so short chunks waste loads.
const MIN_CHUNK_ROWS: usize = 32;

/// (rows per chunk, slots = chunks) for a batch: about `max_slots` chunks of at least 32 and
/// at most `max_rows` rows.
pub(super) fn chunking(batch: usize, max_slots: usize, max_rows: usize) -> (usize, usize) {
    let rows = batch.div_ceil(max_slots).max(MIN_CHUNK_ROWS).min(max_rows);
    (rows, batch.div_ceil(rows))
}

/// The `FusedLayers` uniform: one entry per layer, the rest zero.
pub(super) fn layer_table(layers: &[Layer]) -> FusedLayers {
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
    FusedLayers { l: table }
}
