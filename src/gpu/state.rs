//! The running training state (`TrainState` of structs.wgsl) of a model on the GPU: the
//! training and evaluation states and the pair buffer one readback returns both from. Shared
//! by the layered [`GpuMlp`](crate::gpu::GpuMlp) and the fused model.

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::uniforms::{METRICS_OFFSET, STATE_BYTES, TrainState};
use crate::reference::BatchLoss;

/// A model's training state, evaluation state, and the pair buffer for one readback of both.
pub(crate) struct States {
    /// Step counter, divergence flag and running metrics of training.
    pub train: wgpu::Buffer,
    /// Running metrics of evaluations (and of `loss_and_gradients`).
    pub eval: wgpu::Buffer,
    /// Both states side by side, for one readback per epoch.
    pub pair: wgpu::Buffer,
}

impl States {
    /// Zeroed states.
    pub fn new(ctx: &GpuContext) -> States {
        States {
            train: ctx.storage_zeroed("train_state", STATE_BYTES),
            eval: ctx.storage_zeroed("eval_state", STATE_BYTES),
            pair: ctx.storage_zeroed("state_pair", 2 * STATE_BYTES),
        }
    }

    /// Records the zeroing of the running metrics of both states (the step counter stays).
    pub fn encode_reset(&self, enc: &mut wgpu::CommandEncoder) {
        let len = Some(STATE_BYTES - METRICS_OFFSET);
        enc.clear_buffer(&self.train, METRICS_OFFSET, len);
        enc.clear_buffer(&self.eval, METRICS_OFFSET, len);
    }

    /// Records the zeroing of the training state's running metrics only.
    pub fn encode_reset_train(&self, enc: &mut wgpu::CommandEncoder) {
        enc.clear_buffer(
            &self.train,
            METRICS_OFFSET,
            Some(STATE_BYTES - METRICS_OFFSET),
        );
    }

    /// Records a copy of both states into the pair buffer, so one readback returns both.
    pub fn encode_snapshot(&self, enc: &mut wgpu::CommandEncoder) {
        enc.copy_buffer_to_buffer(&self.train, 0, &self.pair, 0, STATE_BYTES);
        enc.copy_buffer_to_buffer(&self.eval, 0, &self.pair, STATE_BYTES, STATE_BYTES);
    }

    /// Reads the (training, evaluation) states [`States::encode_snapshot`] copied.
    pub fn read_snapshot(&self, ctx: &GpuContext) -> Result<(TrainState, TrainState)> {
        let v: Vec<TrainState> = ctx.read(&self.pair, 2)?;
        Ok((v[0], v[1]))
    }

    /// The training state, read back.
    pub fn read_train(&self, ctx: &GpuContext) -> Result<TrainState> {
        Ok(ctx.read::<TrainState>(&self.train, 1)?[0])
    }

    /// The evaluation state, read back.
    pub fn read_eval(&self, ctx: &GpuContext) -> Result<TrainState> {
        Ok(ctx.read::<TrainState>(&self.eval, 1)?[0])
    }

    /// Clears the divergence flag, step and loss of the training state (after the caller
    /// handled it), so the following steps update the parameters again.
    pub fn clear_divergence(&self, ctx: &GpuContext) {
        ctx.queue
            .write_buffer(&self.train, 4, bytemuck::cast_slice(&[0u32, 0, 0]));
    }

    /// Sets the step counter (and clears the divergence flag): for a restored optimizer state.
    pub fn set_step(&self, ctx: &GpuContext, step: u32) {
        ctx.queue
            .write_buffer(&self.train, 0, bytemuck::cast_slice(&[step, 0, 0, 0]));
    }

    /// The result of one step on a host batch: its metrics, or [`Error::Diverged`] (the
    /// kernels kept the parameters from before the step; the flag is cleared so that training
    /// can go on, with a lower learning rate say, as on the CPU).
    pub fn finish_step(&self, ctx: &GpuContext) -> Result<BatchLoss<f32>> {
        let s = self.read_train(ctx)?;
        if s.diverged != 0 {
            self.clear_divergence(ctx);
            return Err(Error::Diverged {
                epoch: 0,
                step: s.bad_step as u64,
                loss: s.bad_loss,
            });
        }
        Ok(BatchLoss::from_state(&s))
    }
}
