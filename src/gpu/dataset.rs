//! A dataset uploaded once and kept on the GPU, in chunks that each fit one storage binding.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;

/// Features (row chunks), labels, the per-epoch permutation and the identity order, on the GPU.
pub struct GpuDataset {
    /// Unique per upload: models key their gather dispatches by it.
    pub(crate) id: u64,
    /// Samples.
    pub len: usize,
    /// Features per sample.
    pub n_features: usize,
    /// Classes.
    pub n_classes: usize,
    /// `(buffer, first row, end row)` for each chunk of rows.
    pub(crate) chunks: Vec<(wgpu::Buffer, u32, u32)>,
    /// Every label, u32.
    pub(crate) labels: wgpu::Buffer,
    /// Regression target columns per sample (0 for classification).
    pub n_targets: usize,
    /// `(buffer, first row, end row)` for each chunk of rows of the regression targets.
    pub(crate) target_chunks: Vec<(wgpu::Buffer, u32, u32)>,
    /// A permutation of 0..len, rewritten each epoch.
    pub(crate) perm: wgpu::Buffer,
    /// 0..len, for evaluation in order.
    pub(crate) order: wgpu::Buffer,
}

/// Uploads a row-major matrix of `width` columns in chunks of `rows_per_chunk` rows.
fn upload_chunks(
    ctx: &GpuContext,
    label: &str,
    values: &[f32],
    width: usize,
    rows_per_chunk: usize,
) -> Vec<(wgpu::Buffer, u32, u32)> {
    let rows = values.len() / width.max(1);
    let mut chunks = Vec::new();
    let mut start = 0usize;
    while start < rows {
        let end = (start + rows_per_chunk).min(rows);
        let slice = &values[start * width..end * width];
        chunks.push((ctx.storage_from(label, slice), start as u32, end as u32));
        start = end;
    }
    chunks
}

impl GpuDataset {
    /// Uploads `data` (one upload; it stays resident).
    pub fn upload(ctx: &GpuContext, data: &Dataset) -> Result<GpuDataset> {
        if data.is_empty() {
            return Err(Error::InvalidData {
                what: format!("dataset {:?}", data.name),
                message: "it has no samples".into(),
            });
        }
        if data.len() > u32::MAX as usize / data.n_features.max(1) {
            return Err(Error::InvalidData {
                what: format!("dataset {:?}", data.name),
                message: "too many values for 32-bit indexing".into(),
            });
        }
        let row_bytes = (data.n_features * 4) as u64;
        let limit = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size);
        let rows_per_chunk = (limit / row_bytes).max(1) as usize;
        if row_bytes > limit {
            return Err(Error::AdapterUnsuitable {
                adapter: ctx.info.name.clone(),
                reason: format!(
                    "one sample of {} features ({row_bytes} bytes) exceeds the storage binding limit of {limit} bytes",
                    data.n_features
                ),
            });
        }
        let chunks = upload_chunks(
            ctx,
            "dataset.features",
            &data.features,
            data.n_features,
            rows_per_chunk,
        );
        let target_chunks = if data.n_targets > 0 {
            let rows = (limit / (data.n_targets * 4) as u64).max(1) as usize;
            upload_chunks(ctx, "dataset.targets", &data.targets, data.n_targets, rows)
        } else {
            Vec::new()
        };
        let order: Vec<u32> = (0..data.len() as u32).collect();
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(GpuDataset {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            len: data.len(),
            n_features: data.n_features,
            n_classes: data.n_classes,
            chunks,
            labels: ctx.storage_from("dataset.labels", &data.labels),
            n_targets: data.n_targets,
            target_chunks,
            perm: ctx.storage_from("dataset.perm", &order),
            order: ctx.storage_from("dataset.order", &order),
        })
    }

    /// Replaces the permutation used by the next epoch's batches.
    pub fn set_permutation(&self, ctx: &GpuContext, perm: &[u32]) -> Result<()> {
        if perm.len() != self.len {
            return Err(Error::shape("permutation", self.len, perm.len()));
        }
        ctx.queue
            .write_buffer(&self.perm, 0, bytemuck::cast_slice(perm));
        Ok(())
    }

    /// Number of row chunks (1 unless the features exceed one storage binding).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}
