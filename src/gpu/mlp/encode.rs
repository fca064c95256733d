//! Recording a model's work into command encoders: training steps and evaluation batches on
//! resident datasets, metric resets and snapshots.

use crate::error::{Error, Result};
use crate::gpu::dataset::GpuDataset;
use crate::gpu::kernels::Dispatch;
use crate::gpu::uniforms::TrainState;

use super::GpuMlp;
use super::plan::LossMode;

pub(super) fn begin_pass<'e>(
    enc: &'e mut wgpu::CommandEncoder,
    label: &str,
) -> wgpu::ComputePass<'e> {
    enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some(label),
        timestamp_writes: None,
    })
}

pub(super) fn record(pass: &mut wgpu::ComputePass<'_>, dispatches: &[Dispatch]) {
    for d in dispatches {
        d.record(pass);
    }
}

impl GpuMlp {
    /// Makes sure the dispatches for `batch` rows of `data` exist; records the copy of
    /// `order[offset..offset + batch]` into the batch-index buffer.
    fn encode_batch_indices(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        data: &GpuDataset,
        order: &wgpu::Buffer,
        offset: usize,
        batch: usize,
    ) -> Result<()> {
        if offset + batch > data.len {
            return Err(Error::shape(
                "batch rows",
                format!("rows within the {} of the dataset", data.len),
                format!("{offset}..{}", offset + batch),
            ));
        }
        self.ensure_plan(batch)?;
        if !self.gathers.contains_key(&(data.id, batch)) {
            let gather = self.build_gather(data, batch)?;
            self.gathers.insert((data.id, batch), gather);
        }
        enc.copy_buffer_to_buffer(order, (offset * 4) as u64, &self.idx, 0, (batch * 4) as u64);
        Ok(())
    }

    /// Records one training step on rows `perm[offset..offset + batch]` of `data`:
    /// a copy of the indices, then one compute pass (gather, forwards, loss, backwards, update).
    pub fn encode_train_step(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        data: &GpuDataset,
        offset: usize,
        batch: usize,
    ) -> Result<()> {
        self.encode_batch_indices(enc, data, &data.perm, offset, batch)?;
        let plan = &self.plans[&batch];
        let mut pass = begin_pass(enc, "train step");
        record(&mut pass, &self.gathers[&(data.id, batch)].dispatches);
        record(&mut pass, &plan.forward_train);
        record(&mut pass, plan.loss(LossMode::Train));
        record(&mut pass, &plan.backward);
        record(&mut pass, &self.update);
        Ok(())
    }

    /// Records the evaluation of rows `offset..offset + batch` of `data` (in order) into the
    /// evaluation metrics.
    pub fn encode_eval_batch(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        data: &GpuDataset,
        offset: usize,
        batch: usize,
    ) -> Result<()> {
        self.encode_batch_indices(enc, data, &data.order, offset, batch)?;
        let plan = &self.plans[&batch];
        let mut pass = begin_pass(enc, "eval batch");
        record(&mut pass, &self.gathers[&(data.id, batch)].dispatches);
        record(&mut pass, &plan.forward_eval);
        record(&mut pass, plan.loss(LossMode::Eval));
        Ok(())
    }

    /// Records the evaluation of all of `data`, in order, in batches of the model's max batch.
    pub fn encode_evaluation(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        data: &GpuDataset,
    ) -> Result<()> {
        let batch = self.max_batch;
        for offset in (0..data.len).step_by(batch) {
            self.encode_eval_batch(enc, data, offset, batch.min(data.len - offset))?;
        }
        Ok(())
    }

    /// Records the zeroing of the running training and evaluation metrics.
    pub fn encode_reset_metrics(&self, enc: &mut wgpu::CommandEncoder) {
        crate::gpu::state::encode_reset(enc, &self.state, &self.eval_state);
    }

    /// Records a copy of both states into one buffer, so one readback returns both.
    pub fn encode_snapshot_states(&self, enc: &mut wgpu::CommandEncoder) {
        crate::gpu::state::encode_snapshot(enc, &self.state, &self.eval_state, &self.state_pair);
    }

    /// Reads the (training, evaluation) states copied by [`Self::encode_snapshot_states`].
    pub fn read_snapshot(&self) -> Result<(TrainState, TrainState)> {
        crate::gpu::state::read_snapshot(&self.ctx, &self.state_pair)
    }
}
