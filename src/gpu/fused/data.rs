//! `FusedMlp` on resident datasets: the batch gather and the recording of training steps and
//! evaluations into command encoders, with the same methods the `Trainer` uses on `GpuMlp`.

use std::sync::Arc;

use super::FusedMlp;
use super::plan::Mode;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::dataset::GpuDataset;
use crate::gpu::kernels::{Dispatch, Kernel, PipelineKey};
use crate::gpu::uniforms::GatherDims;
use crate::optim::OptimizerState;

/// Invocations per workgroup of gather.wgsl.
const GATHER_WORKGROUP: usize = 256;

impl FusedMlp {
    /// The running training and evaluation states.
    pub(crate) fn states(&self) -> &crate::gpu::state::States {
        &self.states
    }

    /// The context this model runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The gather dispatches (one per row chunk of `data`) for batches of `batch` rows.
    fn build_gather(&self, data: &GpuDataset, batch: usize) -> Result<Vec<Dispatch>> {
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
        let ctx = &self.ctx;
        let pipeline = ctx.pipeline(&PipelineKey::new(Kernel::Gather))?;
        let items = batch * data.n_features;
        let groups = u32::try_from(items.div_ceil(GATHER_WORKGROUP).max(1))
            .map_err(|_| Error::shape("batch gather", "fewer elements", items))?;
        let (x, y) = ctx.grid_1d(groups);
        Ok(data
            .chunks
            .iter()
            .map(|(features, start, end)| {
                let dims = ctx.uniform(
                    "fused gather",
                    &GatherDims {
                        batch: batch as u32,
                        n_features: data.n_features as u32,
                        row_start: *start,
                        row_end: *end,
                    },
                );
                let group = ctx.bind_group(
                    Kernel::Gather,
                    &[
                        (0, features),
                        (1, &data.labels),
                        (2, &self.idx),
                        (3, &self.xb),
                        (4, &self.labels),
                        (5, &dims),
                    ],
                );
                Dispatch::new(Kernel::Gather, Arc::clone(&pipeline), group, (x, y, 1))
            })
            .collect())
    }

    /// Records the copy of `order[offset..offset + batch]` into the index buffer and makes sure
    /// the gather and the plan for `batch` rows exist.
    fn prepare_batch(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        data: &GpuDataset,
        order: &wgpu::Buffer,
        offset: usize,
        batch: usize,
        mode: Mode,
    ) -> Result<()> {
        if offset + batch > data.len {
            return Err(Error::shape(
                "batch rows",
                format!("rows within the {} of the dataset", data.len),
                format!("{offset}..{}", offset + batch),
            ));
        }
        self.ensure_plan(batch, mode, false)?;
        if !self.gathers.contains_key(&(data.id, batch)) {
            let gather = self.build_gather(data, batch)?;
            self.gathers.insert((data.id, batch), gather);
        }
        enc.copy_buffer_to_buffer(order, (offset * 4) as u64, &self.idx, 0, (batch * 4) as u64);
        Ok(())
    }

    fn record_batch(
        &self,
        enc: &mut wgpu::CommandEncoder,
        data: &GpuDataset,
        batch: usize,
        mode: Mode,
    ) {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("fused batch"),
            timestamp_writes: None,
        });
        for d in &self.gathers[&(data.id, batch)] {
            d.record(&mut pass);
        }
        self.encode(&mut pass, batch, mode, false);
    }

    /// Records one training step on rows `perm[offset..offset + batch]` of `data`: a copy of
    /// the indices, then one compute pass (gather, fused, reduce, update, pack).
    pub fn encode_train_step(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        data: &GpuDataset,
        offset: usize,
        batch: usize,
    ) -> Result<()> {
        self.prepare_batch(enc, data, &data.perm, offset, batch, Mode::Train)?;
        self.record_batch(enc, data, batch, Mode::Train);
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
        self.prepare_batch(enc, data, &data.order, offset, batch, Mode::Eval)?;
        self.record_batch(enc, data, batch, Mode::Eval);
        Ok(())
    }

    /// Restores an optimizer state (for resuming a run).
    pub fn set_optimizer_state(&self, state: &OptimizerState<f32>) -> Result<()> {
        let n = self.config.n_params();
        state.check_len(n)?;
        let step = u32::try_from(state.step)
            .map_err(|_| Error::config("optimizer state", "step count exceeds 2^32"))?;
        let q = &self.ctx.queue;
        q.write_buffer(&self.moment1, 0, bytemuck::cast_slice(&state.m));
        q.write_buffer(&self.moment2, 0, bytemuck::cast_slice(&state.v));
        self.states.set_step(&self.ctx, step);
        Ok(())
    }
}
