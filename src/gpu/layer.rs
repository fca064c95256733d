//! One affine layer on the GPU, outside a model: `Z = X·W + b, Y = act(Z)` and its backward.
//!
//! The same kernels and grid as [`GpuMlp`](crate::gpu::GpuMlp) use, with host data in and out:
//! for tests against the CPU reference and for benchmarks of single layers.

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::Dispatch;
use crate::gpu::matmul::{self, ForwardOperands, MatmulVariant};
use crate::gpu::uniforms::LayerDims;

pub use crate::gpu::matmul::matmul_grid;

/// Gradients of one layer.
#[derive(Clone, Debug)]
pub struct LayerGrads {
    /// dW, row-major [fan_in × fan_out].
    pub d_w: Vec<f32>,
    /// db, `[fan_out]`.
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
        if variant.needs_vec4() && self.fan_out % 4 != 0 {
            return Err(Error::shape(
                "vec4 matmul",
                "fan_out a multiple of 4",
                self.fan_out,
            ));
        }
        Ok(())
    }

    /// The matmul core this shape runs on outside a model, without timing: scalar where the
    /// context's policy forces it, else vec4 wherever the shape allows it.
    pub fn variant(&self, ctx: &GpuContext) -> MatmulVariant {
        use crate::gpu::autotune::Policy;
        let fits = MatmulVariant::vec4_fits(self.fan_out, 0, self.fan_in * self.fan_out);
        match ctx.autotune.policy() {
            Policy::Force(MatmulVariant::Scalar) => MatmulVariant::Scalar,
            _ if fits => MatmulVariant::Vec4,
            _ => MatmulVariant::Scalar,
        }
    }

    fn dims(&self, store_z: bool) -> LayerDims {
        LayerDims {
            batch: self.batch as u32,
            fan_in: self.fan_in as u32,
            fan_out: self.fan_out as u32,
            w_offset: 0,
            b_offset: (self.fan_in * self.fan_out) as u32,
            store_z: u32::from(store_z),
            ..Default::default()
        }
    }

    /// The product dZ·Wᵀ of the backward, as the forward cores see it: `batch × fan_out →
    /// fan_in`, Wᵀ at 0 of the transposed buffer, no bias.
    fn grad_input_dims(&self) -> LayerDims {
        LayerDims {
            batch: self.batch as u32,
            fan_in: self.fan_out as u32,
            fan_out: self.fan_in as u32,
            ..Default::default()
        }
    }
}

fn params_of(w: &[f32], b: &[f32]) -> Vec<f32> {
    let mut p = w.to_vec();
    p.extend_from_slice(b);
    p
}

/// One layer resident on the GPU: its buffers and its forward and backward dispatches, built
/// once so they can be recorded any number of times (the host functions below, benchmarks).
///
/// Buffers: X [batch × fan_in], parameters (W then b), Wᵀ, Z and Y [batch × fan_out], dZ
/// [batch × fan_out], Z_prev [batch × fan_in], gradients (dW then db) and dZ_prev
/// [batch × fan_in]. dZ and Z_prev start at zero; see [`ResidentLayer::write_backward_inputs`].
/// The backward is dW/db on the layer's core, then Wᵀ and dZ_prev on a forward core (the
/// layer's core where the transposed shape allows it, else the scalar one), as in a model.
pub struct ResidentLayer {
    shape: Shape,
    z: wgpu::Buffer,
    y: wgpu::Buffer,
    d_z: wgpu::Buffer,
    z_prev: wgpu::Buffer,
    grads: wgpu::Buffer,
    d_z_prev: wgpu::Buffer,
    forward: Vec<Dispatch>,
    backward: Vec<Dispatch>,
}

impl ResidentLayer {
    /// Uploads X, W and b. The forward applies `act` (and writes Z too when `store_z`, as
    /// training does); the backward fuses `act_prev`'s derivative into dZ_prev. The matmul
    /// core is the one the shape gets in a model ([`Shape::variant`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: &GpuContext,
        act: Activation,
        act_prev: Activation,
        shape: Shape,
        x: &[f32],
        w: &[f32],
        b: &[f32],
        store_z: bool,
    ) -> Result<Self> {
        Self::with_variant(
            ctx,
            shape.variant(ctx),
            act,
            act_prev,
            shape,
            x,
            w,
            b,
            store_z,
        )
    }

    /// [`ResidentLayer::new`] with a given matmul core for the forward and dW/db.
    #[allow(clippy::too_many_arguments)]
    pub fn with_variant(
        ctx: &GpuContext,
        variant: MatmulVariant,
        act: Activation,
        act_prev: Activation,
        shape: Shape,
        x: &[f32],
        w: &[f32],
        b: &[f32],
        store_z: bool,
    ) -> Result<Self> {
        shape.check(x, w, b)?;
        shape.check_variant(variant)?;
        let Shape {
            batch: m,
            fan_in: k,
            fan_out: n,
        } = shape;
        let bytes = |count: usize| (count * 4) as u64;
        let xb = ctx.storage_from("layer.x", x);
        let pb = ctx.storage_from("layer.params", &params_of(w, b));
        let pt = ctx.storage_zeroed("layer.params_t", bytes(k * n));
        let z = ctx.storage_zeroed("layer.z", bytes(m * n));
        let y = ctx.storage_zeroed("layer.y", bytes(m * n));
        let d_z = ctx.storage_zeroed("layer.dz", bytes(m * n));
        let z_prev = ctx.storage_zeroed("layer.z_prev", bytes(m * k));
        let grads = ctx.storage_zeroed("layer.grads", bytes(k * n + n));
        let d_z_prev = ctx.storage_zeroed("layer.dz_prev", bytes(m * k));
        let forward = matmul::forward_dispatches(
            ctx,
            variant,
            act,
            shape.dims(store_z),
            ForwardOperands {
                x: &xb,
                params: &pb,
                z: &z,
                y: &y,
            },
            false,
        )?;
        let dims = shape.dims(true);
        let mut backward = matmul::grad_weights_dispatches(ctx, variant, dims, &xb, &d_z, &grads)?;
        backward.push(matmul::transpose_dispatch(ctx, &dims, &pb, &pt, 0)?);
        let gi_dims = shape.grad_input_dims();
        let gi_variant = if variant.runs(matmul::subgroups_of_8(ctx), n, k, 0, 0) {
            variant
        } else {
            MatmulVariant::Scalar
        };
        backward.extend(matmul::forward_dispatches(
            ctx,
            gi_variant,
            act_prev,
            gi_dims,
            ForwardOperands {
                x: &d_z,
                params: &pt,
                z: &z_prev,
                y: &d_z_prev,
            },
            true,
        )?);
        Ok(ResidentLayer {
            shape,
            z,
            y,
            d_z,
            z_prev,
            grads,
            d_z_prev,
            forward,
            backward,
        })
    }

    /// The layer's shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Z (the pre-activation), [batch × fan_out].
    pub fn z(&self) -> &wgpu::Buffer {
        &self.z
    }

    /// Y = act(Z), [batch × fan_out].
    pub fn y(&self) -> &wgpu::Buffer {
        &self.y
    }

    /// Uploads this layer's dZ [batch × fan_out] and the previous layer's Z [batch × fan_in].
    pub fn write_backward_inputs(
        &self,
        ctx: &GpuContext,
        d_z: &[f32],
        z_prev: &[f32],
    ) -> Result<()> {
        let Shape {
            batch: m,
            fan_in: k,
            fan_out: n,
        } = self.shape;
        if d_z.len() != m * n || z_prev.len() != m * k {
            return Err(Error::shape(
                "layer backward",
                format!("dZ of {} and Z_prev of {}", m * n, m * k),
                format!("{} and {}", d_z.len(), z_prev.len()),
            ));
        }
        ctx.queue
            .write_buffer(&self.d_z, 0, bytemuck::cast_slice(d_z));
        ctx.queue
            .write_buffer(&self.z_prev, 0, bytemuck::cast_slice(z_prev));
        Ok(())
    }

    /// Records the fused forward (one dispatch, more when fan_in is split).
    pub fn record_forward(&self, pass: &mut wgpu::ComputePass<'_>) {
        for d in &self.forward {
            d.record(pass);
        }
    }

    /// Records the backward: dW and db, then Wᵀ and dZ_prev (three dispatches, more when a
    /// reduction is split).
    pub fn record_backward(&self, pass: &mut wgpu::ComputePass<'_>) {
        for d in &self.backward {
            d.record(pass);
        }
    }

    /// Dispatches of the forward and of the backward.
    pub fn dispatch_counts(&self) -> (usize, usize) {
        (self.forward.len(), self.backward.len())
    }

    /// Submits `record` in one compute pass.
    fn run(&self, ctx: &GpuContext, record: impl FnOnce(&mut wgpu::ComputePass<'_>)) {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            record(&mut pass);
        }
        ctx.queue.submit([enc.finish()]);
    }

    /// Reads back (Z, Y).
    pub fn read_forward(&self, ctx: &GpuContext) -> Result<(Vec<f32>, Vec<f32>)> {
        let out = self.shape.batch * self.shape.fan_out;
        Ok((ctx.read(&self.z, out)?, ctx.read(&self.y, out)?))
    }

    /// Reads back dW, db and dZ_prev.
    pub fn read_backward(&self, ctx: &GpuContext) -> Result<LayerGrads> {
        let w_len = self.shape.fan_in * self.shape.fan_out;
        let grads = ctx.read(&self.grads, w_len + self.shape.fan_out)?;
        Ok(LayerGrads {
            d_w: grads[..w_len].to_vec(),
            d_b: grads[w_len..].to_vec(),
            d_z_prev: ctx.read(&self.d_z_prev, self.shape.batch * self.shape.fan_in)?,
        })
    }
}

/// Fused forward on the GPU with the matmul core chosen for the shape: returns (Z, Y).
pub fn forward(
    ctx: &GpuContext,
    act: Activation,
    shape: Shape,
    x: &[f32],
    w: &[f32],
    b: &[f32],
) -> Result<(Vec<f32>, Vec<f32>)> {
    forward_with(ctx, shape.variant(ctx), act, shape, x, w, b)
}

/// Fused forward on the GPU with a given matmul core: returns (Z, Y).
pub fn forward_with(
    ctx: &GpuContext,
    variant: MatmulVariant,
    act: Activation,
    shape: Shape,
    x: &[f32],
    w: &[f32],
    b: &[f32],
) -> Result<(Vec<f32>, Vec<f32>)> {
    let layer = ResidentLayer::with_variant(
        ctx,
        variant,
        act,
        Activation::Identity,
        shape,
        x,
        w,
        b,
        true,
    )?;
    layer.run(ctx, |pass| layer.record_forward(pass));
    layer.read_forward(ctx)
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
    backward_with(ctx, shape.variant(ctx), act_prev, shape, x, w, d_z, z_prev)
}

/// [`backward`] with a given matmul core for dW and db.
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
    let layer = ResidentLayer::with_variant(
        ctx,
        variant,
        Activation::Identity,
        act_prev,
        shape,
        x,
        w,
        &zero_b,
        true,
    )?;
    layer.write_backward_inputs(ctx, d_z, z_prev)?;
    layer.run(ctx, |pass| layer.record_backward(pass));
    layer.read_backward(ctx)
}
