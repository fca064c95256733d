//! Recording a model's work into command encoders: training steps and evaluation batches on
//! resident datasets, metric resets and snapshots.

use crate::error::{Error, Result};
use crate::gpu::dataset::GpuDataset;
use crate::gpu::kernels::Dispatch;

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
}
