//! One affine layer on the GPU, outside a model: `Z = X·W + b, Y = act(Z)` and its backward.
//!
//! The same kernels and grid as [`GpuMlp`](crate::gpu::GpuMlp) use, with host data in and out:
//! for tests against the CPU reference and for benchmarks of single layers.

use bytemuck::{Pod, Zeroable};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::context::{GpuContext, grid_1d};
use crate::gpu::kernels::{Kernel, MatmulVariant, PipelineKey};

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

/// (x, y, z) workgroups for `rows × cols` outputs in `tile × tile` blocks; row blocks spill
/// from y into z past `max_dim`. Errors if the columns alone need more than `max_dim`.
pub fn matmul_grid(rows: usize, cols: usize, tile: usize, max_dim: u32) -> Result<(u32, u32, u32)> {
    let gx = (cols.div_ceil(tile) as u32).max(1);
    if gx > max_dim {
        return Err(Error::shape(
            "matmul grid",
            format!("at most {} columns", max_dim as usize * tile),
            cols,
        ));
    }
    let (gy, gz) = grid_1d(rows.div_ceil(tile) as u32, max_dim);
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

    fn check_variant(&self, variant: MatmulVariant) -> Result<()> {
        if variant == MatmulVariant::Vec4 && self.fan_out % 4 != 0 {
            return Err(Error::shape(
                "vec4 matmul",
                "fan_out a multiple of 4",
                self.fan_out,
            ));
        }
        Ok(())
    }

    /// The matmul core this shape runs on.
    pub fn variant(&self) -> MatmulVariant {
        MatmulVariant::for_layer(self.fan_out, 0, self.fan_in * self.fan_out)
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

/// Fused forward on the GPU with the variant chosen for the shape: returns (Z, Y).
pub fn forward(
    ctx: &GpuContext,
    act: Activation,
    shape: Shape,
    x: &[f32],
    w: &[f32],
    b: &[f32],
) -> Result<(Vec<f32>, Vec<f32>)> {
    forward_with(ctx, shape.variant(), act, shape, x, w, b)
}

/// Fused forward on the GPU with a given matmul variant: returns (Z, Y).
pub fn forward_with(
    ctx: &GpuContext,
    variant: MatmulVariant,
    act: Activation,
    shape: Shape,
    x: &[f32],
    w: &[f32],
    b: &[f32],
) -> Result<(Vec<f32>, Vec<f32>)> {
    shape.check(x, w, b)?;
    shape.check_variant(variant)?;
    let out = shape.batch * shape.fan_out;
    let xb = ctx.storage_from("layer.x", x);
    let pb = ctx.storage_from("layer.params", &params_of(w, b));
    let zb = ctx.storage_zeroed("layer.z", (out * 4) as u64);
    let yb = ctx.storage_zeroed("layer.y", (out * 4) as u64);
    let dims = ctx.uniform("layer.dims", &shape.dims(1));
    let kernel = variant.forward_kernel();
    let pipe = ctx.pipeline(&PipelineKey::with_activation(kernel, act))?;
    let group = ctx.bind_group(
        kernel,
        &[(0, &xb), (1, &pb), (2, &zb), (3, &yb), (4, &dims)],
    );
    let (gx, gy, gz) = matmul_grid(
        shape.batch,
        shape.fan_out,
        variant.tile(),
        ctx.max_workgroups_per_dim,
    )?;
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
pub fn backward(
    ctx: &GpuContext,
    act_prev: Activation,
    shape: Shape,
    x: &[f32],
    w: &[f32],
    d_z: &[f32],
    z_prev: &[f32],
) -> Result<LayerGrads> {
    backward_with(ctx, shape.variant(), act_prev, shape, x, w, d_z, z_prev)
}

/// [`backward`] with a given matmul variant for dW and db.
#[allow(clippy::too_many_arguments)]
pub fn backward_with(
    ctx: &GpuContext,
    variant: MatmulVariant,
    act_prev: Activation,
    shape: Shape,
    x: &[f32],
    w: &[f32],
    d_z: &[f32],
    z_prev: &[f32],
) -> Result<LayerGrads> {
    let zero_b = vec![0.0; shape.fan_out];
    shape.check(x, w, &zero_b)?;
    shape.check_variant(variant)?;
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
    let gw_kernel = variant.grad_weights_kernel();
    let gw_pipe = ctx.pipeline(&PipelineKey::with_activation(
        gw_kernel,
        Activation::Identity,
    ))?;
    let gi_pipe = ctx.pipeline(&PipelineKey::with_activation(Kernel::GradInput, act_prev))?;
    let gw = match variant {
        MatmulVariant::Scalar => {
            ctx.bind_group(gw_kernel, &[(0, &xb), (1, &dzb), (2, &gb), (5, &dims)])
        }
        MatmulVariant::Vec4 => {
            ctx.bind_group(gw_kernel, &[(0, &xb), (5, &dzb), (6, &gb), (4, &dims)])
        }
    };
    let gi = ctx.bind_group(
        Kernel::GradInput,
        &[(1, &dzb), (3, &pb), (4, &zpb), (6, &dxb), (5, &dims)],
    );
    let max = ctx.max_workgroups_per_dim;
    let gw_grid = matmul_grid(shape.fan_in, shape.fan_out, variant.tile(), max)?;
    let gi_grid = matmul_grid(shape.batch, shape.fan_in, MatmulVariant::Scalar.tile(), max)?;
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
