//! One affine layer on the GPU, outside a model: `Z = X·W + b, Y = act(Z)` and its backward.
//!
//! The same kernels and grid as [`GpuMlp`](crate::gpu::GpuMlp) use, with host data in and out:
//! for tests against the CPU reference and for benchmarks of single layers.

use bytemuck::{Pod, Zeroable};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::context::{GpuContext, grid_1d};
use crate::gpu::kernels::{Kernel, PipelineKey};

/// Output rows and columns one workgroup of the matmul kernels covers.
pub const TILE: usize = 32;

/// The `Layer` uniform of `affine_act.wgsl` and `affine_backward.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct LayerDims {
    pub batch: u32,
    pub fan_in: u32,
    pub fan_out: u32,
    pub w_offset: u32,
    pub b_offset: u32,
    pub store_z: u32,
    pub _pad: [u32; 2],
}

/// (x, y, z) workgroups for `rows × cols` outputs in TILE × TILE blocks; row blocks spill
/// from y into z past `max_dim`. Errors if the columns alone need more than `max_dim`.
pub fn matmul_grid(rows: usize, cols: usize, max_dim: u32) -> Result<(u32, u32, u32)> {
    let gx = (cols.div_ceil(TILE) as u32).max(1);
    if gx > max_dim {
        return Err(Error::shape(
            "matmul grid",
            format!("at most {} columns", max_dim as usize * TILE),
            cols,
        ));
    }
    let (gy, gz) = grid_1d(rows.div_ceil(TILE) as u32, max_dim);
    Ok((gx, gy, gz))
}

/// Gradients of one layer.
#[derive(Clone, Debug)]
pub struct LayerGrads {
    /// dW, row-major [fan_in × fan_out].
    pub d_w: Vec<f32>,
    /// db, [fan_out].
    pub d_b: Vec<f32>,
    /// dZ of the previous layer = (dZ·Wᵀ) ⊙ act_prev'(Z_prev), [batch × fan_in].
    pub d_z_prev: Vec<f32>,
}

/// A single layer's shape: `batch × fan_in → fan_out`.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Rows of X.
    pub batch: usize,
    /// Columns of X, rows of W.
    pub fan_in: usize,
    /// Columns of W.
    pub fan_out: usize,
}

impl Shape {
    fn check(&self, x: &[f32], w: &[f32], b: &[f32]) -> Result<()> {
        let Shape {
            batch: m,
            fan_in: k,
            fan_out: n,
        } = *self;
        if m == 0 || k == 0 || n == 0 {
            return Err(Error::config(
                "layer shape",
                format!("{m} × {k} → {n} has an empty dimension"),
            ));
        }
        for (what, got, want) in [
            ("X", x.len(), m * k),
            ("W", w.len(), k * n),
            ("b", b.len(), n),
        ] {
            if got != want {
                return Err(Error::shape(&format!("layer {what}"), want, got));
            }
        }
        Ok(())
    }

    fn dims(&self, store_z: u32) -> LayerDims {
        LayerDims {
            batch: self.batch as u32,
            fan_in: self.fan_in as u32,
            fan_out: self.fan_out as u32,
            w_offset: 0,
            b_offset: (self.fan_in * self.fan_out) as u32,
            store_z,
            _pad: [0; 2],
        }
    }
}

fn params_of(w: &[f32], b: &[f32]) -> Vec<f32> {
    let mut p = w.to_vec();
    p.extend_from_slice(b);
    p
}

/// Fused forward on the GPU: returns (Z, Y).
pub fn forward(
    ctx: &GpuContext,
    act: Activation,
    shape: Shape,
    x: &[f32],
    w: &[f32],
    b: &[f32],
) -> Result<(Vec<f32>, Vec<f32>)> {
    shape.check(x, w, b)?;
    let out = shape.batch * shape.fan_out;
    let xb = ctx.storage_from("layer.x", x);
    let pb = ctx.storage_from("layer.params", &params_of(w, b));
    let zb = ctx.storage_zeroed("layer.z", (out * 4) as u64);
    let yb = ctx.storage_zeroed("layer.y", (out * 4) as u64);
    let dims = ctx.uniform("layer.dims", &shape.dims(1));
    let pipe = ctx.pipeline(&PipelineKey::with_activation(Kernel::AffineForward, act))?;
    let group = ctx.bind_group(
        Kernel::AffineForward,
        &[(0, &xb), (1, &pb), (2, &zb), (3, &yb), (4, &dims)],
    );
    let (gx, gy, gz) = matmul_grid(shape.batch, shape.fan_out, ctx.max_workgroups_per_dim)?;
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipe);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(gx, gy, gz);
    }
    ctx.queue.submit([enc.finish()]);
    Ok((ctx.read(&zb, out)?, ctx.read(&yb, out)?))
}

/// Backward on the GPU from this layer's dZ: dW, db and the previous layer's dZ (with
/// `act_prev`'s derivative at `z_prev` fused in; pass Identity and X for a plain dX).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    ctx: &GpuContext,
    act_prev: Activation,
    shape: Shape,
    x: &[f32],
    w: &[f32],
    d_z: &[f32],
    z_prev: &[f32],
) -> Result<LayerGrads> {
    let zero_b = vec![0.0; shape.fan_out];
    shape.check(x, w, &zero_b)?;
    if d_z.len() != shape.batch * shape.fan_out || z_prev.len() != x.len() {
        return Err(Error::shape(
            "layer backward",
            format!(
                "dZ of {} and Z_prev of {}",
                shape.batch * shape.fan_out,
                x.len()
            ),
            format!("{} and {}", d_z.len(), z_prev.len()),
        ));
    }
    let n_params = shape.fan_in * shape.fan_out + shape.fan_out;
    let xb = ctx.storage_from("layer.x", x);
    let pb = ctx.storage_from("layer.params", &params_of(w, &zero_b));
    let dzb = ctx.storage_from("layer.dz", d_z);
    let zpb = ctx.storage_from("layer.z_prev", z_prev);
    let gb = ctx.storage_zeroed("layer.grads", (n_params * 4) as u64);
    let dxb = ctx.storage_zeroed("layer.dz_prev", (x.len() * 4) as u64);
    let dims = ctx.uniform("layer.dims", &shape.dims(1));
    let gw_pipe = ctx.pipeline(&PipelineKey::with_activation(
        Kernel::GradWeights,
        Activation::Identity,
    ))?;
    let gi_pipe = ctx.pipeline(&PipelineKey::with_activation(Kernel::GradInput, act_prev))?;
    let gw = ctx.bind_group(
        Kernel::GradWeights,
        &[(0, &xb), (1, &dzb), (2, &gb), (5, &dims)],
    );
    let gi = ctx.bind_group(
        Kernel::GradInput,
        &[(1, &dzb), (3, &pb), (4, &zpb), (6, &dxb), (5, &dims)],
    );
    let max = ctx.max_workgroups_per_dim;
    let gw_grid = matmul_grid(shape.fan_in, shape.fan_out, max)?;
    let gi_grid = matmul_grid(shape.batch, shape.fan_in, max)?;
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&gw_pipe);
        pass.set_bind_group(0, &gw, &[]);
        pass.dispatch_workgroups(gw_grid.0, gw_grid.1, gw_grid.2);
        pass.set_pipeline(&gi_pipe);
        pass.set_bind_group(0, &gi, &[]);
        pass.dispatch_workgroups(gi_grid.0, gi_grid.1, gi_grid.2);
    }
    ctx.queue.submit([enc.finish()]);
    let grads = ctx.read(&gb, n_params)?;
    let w_len = shape.fan_in * shape.fan_out;
    Ok(LayerGrads {
        d_w: grads[..w_len].to_vec(),
        d_b: grads[w_len..].to_vec(),
        d_z_prev: ctx.read(&dxb, x.len())?,
    })
}
