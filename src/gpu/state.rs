//! The running training state (`TrainState` of structs.wgsl) of a model on the GPU: the
//! training and evaluation states and the pair buffer one readback returns both from. Shared
//! by the layered [`GpuMlp`](crate::gpu::GpuMlp) and the fused model.

use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::uniforms::{METRICS_OFFSET, STATE_BYTES, TrainState};

/// Records the zeroing of the running metrics of both states (the step counter stays).
pub(crate) fn encode_reset(
    enc: &mut wgpu::CommandEncoder,
    train: &wgpu::Buffer,
    eval: &wgpu::Buffer,
) {
    let len = Some(STATE_BYTES - METRICS_OFFSET);
    enc.clear_buffer(train, METRICS_OFFSET, len);
    enc.clear_buffer(eval, METRICS_OFFSET, len);
}

/// Records a copy of both states into `pair`, so one readback returns both.
pub(crate) fn encode_snapshot(
    enc: &mut wgpu::CommandEncoder,
    train: &wgpu::Buffer,
    eval: &wgpu::Buffer,
    pair: &wgpu::Buffer,
) {
    enc.copy_buffer_to_buffer(train, 0, pair, 0, STATE_BYTES);
    enc.copy_buffer_to_buffer(eval, 0, pair, STATE_BYTES, STATE_BYTES);
}

/// Reads the (training, evaluation) states [`encode_snapshot`] copied into `pair`.
pub(crate) fn read_snapshot(
    ctx: &GpuContext,
    pair: &wgpu::Buffer,
) -> Result<(TrainState, TrainState)> {
    let v: Vec<TrainState> = ctx.read(pair, 2)?;
    Ok((v[0], v[1]))
}

/// Clears the divergence flag, step and loss of a training state (after the caller handled it).
pub(crate) fn clear_divergence(ctx: &GpuContext, train: &wgpu::Buffer) {
    ctx.queue
        .write_buffer(train, 4, bytemuck::cast_slice(&[0u32, 0, 0]));
}
