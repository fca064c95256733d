//! The matmul cores of the layer kernels, their grids, and the dispatches one layer needs.
//!
//! Every core has two entries with one shared binding signature each
//! ([`MATMUL_FORWARD_BINDINGS`](crate::gpu::kernels::MATMUL_FORWARD_BINDINGS),
//! [`MATMUL_GRAD_WEIGHTS_BINDINGS`](crate::gpu::kernels::MATMUL_GRAD_WEIGHTS_BINDINGS)), so a
//! bind group made for one core serves all of them:
//! - `forward`: Z = X·W + b, Y = act(Z); with `FLAG_GRAD_INPUT` on a transposed W it also makes
//!   the backward's dZ_prev = (dZ·Wᵀ) ⊙ act'(Z_prev), so dX runs on the fastest core too.
//! - `grad_weights`: dW = Xᵀ·dZ and db = Σ dZ.
//!
//! **Long reductions are split.** Mesa's llvmpipe (lavapipe on Vulkan, llvmpipe on GL) counts
//! every loop iteration an invocation runs, across all its loops, against one limit of 65,535
//! and then leaves every loop early, without an error: a layer with more than ~65,000 inputs
//! (or a dW over a batch that large) came out silently wrong. So no dispatch sums more than
//! [`max_loop_trip`](crate::gpu::ContextShared::max_loop_trip) terms: a longer reduction
//! becomes several dispatches over `r_begin..r_end`, the first overwriting (and adding the
//! bias), the later ones accumulating, the last applying the epilogue. Grids never fall back to a smaller size: a shape whose grid
//! does not fit the adapter's limits is an error before anything runs.

use std::sync::Arc;

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::context::{GpuContext, grid_1d};
use crate::gpu::kernels::{Dispatch, Kernel, PipelineKey};
use crate::gpu::uniforms::{FLAG_FIRST, FLAG_GRAD_INPUT, FLAG_LAST, LayerDims};

pub use crate::gpu::variant::{MatmulVariant, WIDE_BLOCK};

/// Whether the adapter has subgroup operations with subgroups of exactly 8 invocations.
pub fn subgroups_of_8(ctx: &GpuContext) -> bool {
    ctx.features.contains(wgpu::Features::SUBGROUP)
        && ctx.info.subgroup_min_size == 8
        && ctx.info.subgroup_max_size == 8
}

/// (x, y, z) workgroups for `rows × cols` outputs in blocks of `tile = (rows, cols)`; row
/// blocks spill from y into z past `max_dim`. Errors when the grid cannot hold the shape.
pub fn matmul_grid(
    rows: usize,
    cols: usize,
    tile: (usize, usize),
    max_dim: u32,
) -> Result<(u32, u32, u32)> {
    let gx = cols.div_ceil(tile.1).max(1);
    if gx > max_dim as usize {
        return Err(Error::shape(
            "matmul grid",
            format!("at most {} columns", max_dim as usize * tile.1),
            cols,
        ));
    }
    let row_blocks = rows.div_ceil(tile.0).max(1);
    let (gy, gz) = grid_1d(
        u32::try_from(row_blocks).map_err(|_| Error::shape("matmul grid", "fewer rows", rows))?,
        max_dim,
    );
    if gz > max_dim {
        return Err(Error::shape(
            "matmul grid",
            format!(
                "at most {} rows",
                max_dim as u64 * max_dim as u64 * tile.0 as u64
            ),
            rows,
        ));
    }
    Ok((gx as u32, gy, gz))
}

/// The parts `(begin, end, flags)` a reduction of `len` terms is split into, each at most
/// `max` long, flagged `FLAG_FIRST` and `FLAG_LAST`. An empty reduction is one empty part.
pub fn reduction_parts(len: usize, max: u32) -> Vec<(u32, u32, u32)> {
    let max = max.max(1) as usize;
    let count = len.div_ceil(max).max(1);
    (0..count)
        .map(|i| {
            let begin = i * max;
            let end = (begin + max).min(len);
            let mut flags = 0;
            if i == 0 {
                flags |= FLAG_FIRST;
            }
            if i + 1 == count {
                flags |= FLAG_LAST;
            }
            (begin as u32, end as u32, flags)
        })
        .collect()
}

/// Buffers of one forward-core dispatch (binding order of `MATMUL_FORWARD_BINDINGS`).
pub struct ForwardOperands<'a> {
    /// X (or dZ for grad_input).
    pub x: &'a wgpu::Buffer,
    /// Parameters (or the transposed weights for grad_input).
    pub params: &'a wgpu::Buffer,
    /// Z (or Z_prev for grad_input).
    pub z: &'a wgpu::Buffer,
    /// Y (or dZ_prev for grad_input).
    pub y: &'a wgpu::Buffer,
}

/// The forward-core dispatches of one layer: `dims` describes the product (its reduction
/// range and flags are filled in per part); `grad_input` selects the dZ_prev epilogue.
pub fn forward_dispatches(
    ctx: &GpuContext,
    variant: MatmulVariant,
    act: Activation,
    dims: LayerDims,
    ops: ForwardOperands<'_>,
    grad_input: bool,
) -> Result<Vec<Dispatch>> {
    check_variant(ctx, variant, &dims)?;
    let kernel = variant.forward_kernel();
    let pipeline = ctx.pipeline(&PipelineKey::with_activation(kernel, act))?;
    // The subgroup core steps k four at a time: its parts start at multiples of 4.
    let max_part = match variant {
        MatmulVariant::Bcast => (ctx.max_loop_trip / 4 * 4).max(4),
        _ => ctx.max_loop_trip,
    };
    let grid = matmul_grid(
        dims.batch as usize,
        dims.fan_out as usize,
        variant.tile(),
        ctx.max_workgroups_per_dim,
    )?;
    let extra = if grad_input { FLAG_GRAD_INPUT } else { 0 };
    Ok(reduction_parts(dims.fan_in as usize, max_part)
        .into_iter()
        .map(|(r_begin, r_end, flags)| {
            let part = LayerDims {
                r_begin,
                r_end,
                flags: flags | extra,
                ..dims
            };
            let uniform = ctx.uniform("layer.forward", &part);
            let group = ctx.bind_group(
                kernel,
                &[
                    (0, ops.x),
                    (1, ops.params),
                    (2, ops.z),
                    (3, ops.y),
                    (4, &uniform),
                ],
            );
            Dispatch::new(kernel, Arc::clone(&pipeline), group, grid)
        })
        .collect())
}

/// The dW/db dispatches of one layer (the batch reduction split into parts).
pub fn grad_weights_dispatches(
    ctx: &GpuContext,
    variant: MatmulVariant,
    dims: LayerDims,
    x: &wgpu::Buffer,
    dz: &wgpu::Buffer,
    grads: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    check_variant(ctx, variant, &dims)?;
    let kernel = variant.grad_weights_kernel();
    let pipeline = ctx.pipeline(&PipelineKey::with_activation(kernel, Activation::Identity))?;
    let grid = matmul_grid(
        dims.fan_in as usize,
        dims.fan_out as usize,
        variant.tile(),
        ctx.max_workgroups_per_dim,
    )?;
    Ok(reduction_parts(dims.batch as usize, ctx.max_loop_trip)
        .into_iter()
        .map(|(r_begin, r_end, flags)| {
            let part = LayerDims {
                r_begin,
                r_end,
                flags,
                ..dims
            };
            let uniform = ctx.uniform("layer.grad_weights", &part);
            let group = ctx.bind_group(kernel, &[(0, x), (5, dz), (6, grads), (4, &uniform)]);
            Dispatch::new(kernel, Arc::clone(&pipeline), group, grid)
        })
        .collect())
}

/// Invocations in one workgroup of the scalar `grad_input` (8 × 8): one partial dα each.
pub const GRAD_INPUT_WORKGROUP: usize = 64;

/// The scalar `grad_input` dispatches (dZ_prev = (dZ·Wᵀ) ⊙ act_prev'(Z_prev), reading W in
/// place): used where the previous layer learns its pReLU α, whose partial sums it writes.
#[allow(clippy::too_many_arguments)]
pub fn grad_input_dispatches(
    ctx: &GpuContext,
    act_prev: Activation,
    dims: LayerDims,
    dz: &wgpu::Buffer,
    params: &wgpu::Buffer,
    z_prev: &wgpu::Buffer,
    dz_prev: &wgpu::Buffer,
    partials: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let kernel = Kernel::GradInput;
    let pipeline = ctx.pipeline(&PipelineKey::with_activation(kernel, act_prev))?;
    let grid = grad_input_grid(ctx, dims.batch as usize, dims.fan_in as usize)?;
    Ok(reduction_parts(dims.fan_out as usize, ctx.max_loop_trip)
        .into_iter()
        .map(|(r_begin, r_end, flags)| {
            let part = LayerDims {
                r_begin,
                r_end,
                flags,
                ..dims
            };
            let uniform = ctx.uniform("layer.grad_input", &part);
            let group = ctx.bind_group(
                kernel,
                &[
                    (5, dz),
                    (1, params),
                    (2, z_prev),
                    (3, dz_prev),
                    (4, &uniform),
                    (7, partials),
                ],
            );
            Dispatch::new(kernel, Arc::clone(&pipeline), group, grid)
        })
        .collect())
}

/// The grid of the scalar `grad_input` over a `batch × fan_in` output.
pub fn grad_input_grid(ctx: &GpuContext, batch: usize, fan_in: usize) -> Result<(u32, u32, u32)> {
    matmul_grid(
        batch,
        fan_in,
        MatmulVariant::Scalar.tile(),
        ctx.max_workgroups_per_dim,
    )
}

/// The dispatch that writes Wᵀ ([fan_out × fan_in]) of the layer in `dims` from `params` into
/// `dst` at `dst_offset`.
pub fn transpose_dispatch(
    ctx: &GpuContext,
    dims: &LayerDims,
    params: &wgpu::Buffer,
    dst: &wgpu::Buffer,
    dst_offset: usize,
) -> Result<Dispatch> {
    let kernel = Kernel::Transpose;
    let pipeline = ctx.pipeline(&PipelineKey::new(kernel))?;
    let uniform = ctx.uniform(
        "layer.transpose",
        &crate::gpu::uniforms::TransposeDims {
            rows: dims.fan_in,
            cols: dims.fan_out,
            src_offset: dims.w_offset,
            dst_offset: dst_offset as u32,
        },
    );
    let group = ctx.bind_group(kernel, &[(0, params), (1, dst), (2, &uniform)]);
    let grid = matmul_grid(
        dims.fan_in as usize,
        dims.fan_out as usize,
        (16, 16),
        ctx.max_workgroups_per_dim,
    )?;
    Ok(Dispatch::new(kernel, pipeline, group, grid))
}

fn check_variant(ctx: &GpuContext, variant: MatmulVariant, dims: &LayerDims) -> Result<()> {
    let (k, n) = (dims.fan_in as usize, dims.fan_out as usize);
    if !variant.runs(
        subgroups_of_8(ctx),
        k,
        n,
        dims.w_offset as usize,
        dims.b_offset as usize,
    ) {
        return Err(Error::shape(
            &format!("{} matmul core", variant.name()),
            "fan_out and parameter offsets that are multiples of 4 (bcast: fan_in too, and subgroups of 8)",
            format!(
                "{k} → {n} at offsets {} and {}",
                dims.w_offset, dims.b_offset
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_split_into_flagged_parts_that_cover_every_term() {
        assert_eq!(
            reduction_parts(5, 100),
            vec![(0, 5, FLAG_FIRST | FLAG_LAST)]
        );
        assert_eq!(
            reduction_parts(0, 100),
            vec![(0, 0, FLAG_FIRST | FLAG_LAST)]
        );
        assert_eq!(
            reduction_parts(7, 3),
            vec![(0, 3, FLAG_FIRST), (3, 6, 0), (6, 7, FLAG_LAST)]
        );
        assert_eq!(
            reduction_parts(6, 3),
            vec![(0, 3, FLAG_FIRST), (3, 6, FLAG_LAST)]
        );
    }

    #[test]
    fn grids_spill_rows_into_z_and_refuse_what_does_not_fit() {
        assert_eq!(matmul_grid(1, 1, (32, 32), 65535).unwrap(), (1, 1, 1));
        assert_eq!(matmul_grid(33, 65, (32, 32), 65535).unwrap(), (3, 2, 1));
        let (x, y, z) = matmul_grid(100, 10, (4, 4), 7).unwrap();
        assert!(x <= 7 && y <= 7 && z <= 7 && (y * z) as usize * 4 >= 100);
        assert!(
            matmul_grid(1, 29, (4, 4), 7).is_err(),
            "8 column blocks > 7"
        );
        assert!(
            matmul_grid(4 * 50, 1, (4, 4), 7).is_err(),
            "50 row blocks > 7 × 7"
        );
    }
}
