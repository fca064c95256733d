//! Standalone activation kernels over whole buffers: y = f(x) and dx = dy · f'(z).
//!
//! Used by `wgmlp plot`, the benchmarks and the tests; the training path fuses the same
//! activation code into its layer kernels instead.

use bytemuck::{Pod, Zeroable};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{Dispatch, Kernel, PipelineKey};

/// Invocations per workgroup in `elementwise.wgsl` (each handles one vec4).
pub const WORKGROUP_SIZE: u32 = 256;
/// Floats one workgroup covers.
pub const FLOATS_PER_WORKGROUP: u64 = 4 * WORKGROUP_SIZE as u64;

/// The `Params` uniform of `elementwise.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct Params {
    n_vec4: u32,
    _pad: [u32; 3],
}

/// Records one elementwise dispatch over `len` floats into `pass`'s encoder.
///
/// `inputs` are bound in the kernel's order (`src`, then `grad_in` for the backward);
/// buffers must hold at least `len` floats rounded up to a multiple of 4.
pub fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    kernel: Kernel,
    act: Activation,
    inputs: &[&wgpu::Buffer],
    output: &wgpu::Buffer,
    len: u64,
) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    let dispatch = prepare(ctx, kernel, act, inputs, output, len)?;
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some(kernel.name()),
        timestamp_writes: None,
    });
    dispatch.record(&mut pass);
    Ok(())
}

/// Builds (without recording) the elementwise dispatch [`encode`] records: pipeline, bind
/// group and grid over `len` floats (at least 1), to be recorded into passes many times.
pub fn prepare(
    ctx: &GpuContext,
    kernel: Kernel,
    act: Activation,
    inputs: &[&wgpu::Buffer],
    output: &wgpu::Buffer,
    len: u64,
) -> Result<Dispatch> {
    let n_vec4 = len.div_ceil(4);
    let n_vec4_u32 = u32::try_from(n_vec4)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            Error::shape(
                kernel.name(),
                format!("1 to {} floats", u32::MAX as u64 * 4),
                len,
            )
        })?;
    let key = if kernel.uses_activation() {
        PipelineKey::with_activation(kernel, act)
    } else {
        PipelineKey::new(kernel)
    };
    let pipeline = ctx.pipeline(&key)?;
    let params = ctx.uniform(
        "elementwise.params",
        &Params {
            n_vec4: n_vec4_u32,
            _pad: [0; 3],
        },
    );
    let bind = match (kernel, inputs) {
        (Kernel::ActForward | Kernel::Copy, [src]) => {
            ctx.bind_group(kernel, &[(0, src), (1, output), (2, &params)])
        }
        (Kernel::ActBackward, [z, dy]) => {
            ctx.bind_group(kernel, &[(0, z), (3, dy), (1, output), (2, &params)])
        }
        _ => {
            return Err(Error::shape(
                kernel.name(),
                "the kernel's inputs",
                format!("{} input buffers", inputs.len()),
            ));
        }
    };
    let workgroups = n_vec4_u32.div_ceil(WORKGROUP_SIZE);
    let (gx, gy) = ctx.grid_1d(workgroups);
    Ok(Dispatch::new(kernel, pipeline, bind, (gx, gy, 1)))
}

/// y = f(x) on the GPU.
pub fn forward(ctx: &GpuContext, act: Activation, x: &[f32]) -> Result<Vec<f32>> {
    run(ctx, Kernel::ActForward, act, &[x])
}

/// dx = dy · f'(z) on the GPU.
pub fn backward(ctx: &GpuContext, act: Activation, z: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
    if z.len() != dy.len() {
        return Err(Error::shape(
            "activation backward",
            format!("dy of length {} (the length of z)", z.len()),
            dy.len(),
        ));
    }
    run(ctx, Kernel::ActBackward, act, &[z, dy])
}

/// y = x through the copy shader (a bandwidth baseline; also a self-test of the plumbing).
pub fn copy(ctx: &GpuContext, x: &[f32]) -> Result<Vec<f32>> {
    run(ctx, Kernel::Copy, Activation::Identity, &[x])
}

fn run(ctx: &GpuContext, kernel: Kernel, act: Activation, inputs: &[&[f32]]) -> Result<Vec<f32>> {
    let len = inputs[0].len();
    if len == 0 {
        return Ok(Vec::new());
    }
    let buffers: Vec<wgpu::Buffer> = inputs
        .iter()
        .map(|data| ctx.storage_from("elementwise.in", data))
        .collect();
    let out = ctx.storage_zeroed("elementwise.out", (len * 4) as u64);
    let refs: Vec<&wgpu::Buffer> = buffers.iter().collect();
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    encode(ctx, &mut enc, kernel, act, &refs, &out, len as u64)?;
    ctx.queue.submit([enc.finish()]);
    ctx.read(&out, len)
}
