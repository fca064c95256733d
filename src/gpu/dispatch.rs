//! `Dispatch`: one compute dispatch prepared once (pipeline, bind group, grid) and recorded
//! any number of times.

use crate::gpu::kernels::Kernel;

/// A dispatch ready to record: pipeline, bind group and grid, built once and recorded into
/// any number of compute passes (repeated steps, benchmarks).
pub struct Dispatch {
    kernel: Kernel,
    pipeline: std::sync::Arc<wgpu::ComputePipeline>,
    group: wgpu::BindGroup,
    grid: (u32, u32, u32),
}

impl Dispatch {
    /// Wraps a compiled pipeline, its bind group and the workgroup grid.
    pub fn new(
        kernel: Kernel,
        pipeline: std::sync::Arc<wgpu::ComputePipeline>,
        group: wgpu::BindGroup,
        grid: (u32, u32, u32),
    ) -> Self {
        Dispatch {
            kernel,
            pipeline,
            group,
            grid,
        }
    }

    /// The kernel this dispatch runs.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The workgroup grid (x, y, z).
    pub fn grid(&self) -> (u32, u32, u32) {
        self.grid
    }

    /// Records the dispatch into `pass`.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.group, &[]);
        pass.dispatch_workgroups(self.grid.0, self.grid.1, self.grid.2);
    }
}
