//! Standalone activation kernels over whole buffers: y = f(x) and dx = dy · f'(z).
//!
//! Used by `wgmlp plot`, the benchmarks and the tests; the training path fuses the same
//! activation code into its layer kernels instead.
//!
//! Two layouts of the same work (`shaders/elementwise.wgsl`): one vec4 per invocation in
//! workgroups of 256 (the GPU layout), or workgroups of 8 lanes each walking a block of
//! [`LANES_PER_GROUP`] vec4s lane-interleaved (the CPU-adapter layout). [`StreamLayout`] names
//! them; [`layout_for`] picks one per adapter by timing a copy once and remembering it.

use std::sync::Mutex;
use std::time::Instant;

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{Dispatch, Kernel, PipelineKey};
use crate::gpu::uniforms::StreamDims;

/// Invocations per workgroup of the one-per-invocation layout (each handles one vec4).
pub const WORKGROUP_SIZE: u32 = 256;
/// Floats one workgroup of that layout covers.
pub const FLOATS_PER_WORKGROUP: u64 = 4 * WORKGROUP_SIZE as u64;
/// vec4s one workgroup of the lane-interleaved layout covers (2,048 per lane: far inside
/// llvmpipe's per-invocation loop limit).
pub const LANES_PER_GROUP: u32 = 2048;

/// How a streaming kernel spreads its elements over invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamLayout {
    /// One vec4 per invocation, 256 per workgroup.
    PerInvocation,
    /// 8 invocations per workgroup, lane l at base + l, base + l + 8, ... over a block.
    Lanes,
}

impl StreamLayout {
    /// The kernel of `kernel`'s work in this layout.
    pub fn kernel(self, kernel: Kernel) -> Kernel {
        match (self, kernel) {
            (StreamLayout::Lanes, Kernel::ActForward) => Kernel::ActForwardLanes,
            (StreamLayout::Lanes, Kernel::ActBackward) => Kernel::ActBackwardLanes,
            (StreamLayout::Lanes, Kernel::Copy) => Kernel::CopyLanes,
            (StreamLayout::PerInvocation, Kernel::ActForwardLanes) => Kernel::ActForward,
            (StreamLayout::PerInvocation, Kernel::ActBackwardLanes) => Kernel::ActBackward,
            (StreamLayout::PerInvocation, Kernel::CopyLanes) => Kernel::Copy,
            (_, k) => k,
        }
    }

    /// `per-invocation` or `lanes`.
    pub fn name(self) -> &'static str {
        match self {
            StreamLayout::PerInvocation => "per-invocation",
            StreamLayout::Lanes => "lanes",
        }
    }
}

/// The layout this adapter streams fastest in: a copy of 4M floats timed once in each layout
/// (median of 3 after a warm-up) the first time it is asked, then remembered.
/// `WGMLP_STREAM=lanes|per-invocation` forces one.
pub fn layout_for(ctx: &GpuContext) -> Result<StreamLayout> {
    static CHOSEN: Mutex<Vec<(String, StreamLayout)>> = Mutex::new(Vec::new());
    match std::env::var("WGMLP_STREAM").as_deref() {
        Ok("lanes") => return Ok(StreamLayout::Lanes),
        Ok("per-invocation") => return Ok(StreamLayout::PerInvocation),
        _ => {}
    }
    let key = ctx.adapter_summary();
    let mut chosen = CHOSEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, l)) = chosen.iter().find(|(k, _)| *k == key) {
        return Ok(*l);
    }
    let len = 1u64 << 22;
    let src = ctx.storage_zeroed("stream.tune.src", len * 4);
    let dst = ctx.storage_zeroed("stream.tune.dst", len * 4);
    let mut best = (f64::MAX, StreamLayout::PerInvocation);
    for layout in [StreamLayout::PerInvocation, StreamLayout::Lanes] {
        let d = prepare_in(
            ctx,
            layout,
            Kernel::Copy,
            Activation::Identity,
            &[&src],
            &dst,
            len,
        )?;
        let mut times = Vec::new();
        for rep in 0..4 {
            let start = Instant::now();
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                d.record(&mut pass);
            }
            ctx.queue.submit([enc.finish()]);
            ctx.wait("stream layout timing")?;
            if rep > 0 {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        if times[1] < best.0 {
            best = (times[1], layout);
        }
    }
    log::info!("streaming layout on {key}: {}", best.1.name());
    chosen.push((key, best.1));
    Ok(best.1)
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
/// group and grid over `len` floats (at least 1), in this adapter's layout ([`layout_for`]),
/// to be recorded into passes many times.
pub fn prepare(
    ctx: &GpuContext,
    kernel: Kernel,
    act: Activation,
    inputs: &[&wgpu::Buffer],
    output: &wgpu::Buffer,
    len: u64,
) -> Result<Dispatch> {
    prepare_in(ctx, layout_for(ctx)?, kernel, act, inputs, output, len)
}

/// [`prepare`] in a given layout.
pub fn prepare_in(
    ctx: &GpuContext,
    layout: StreamLayout,
    kernel: Kernel,
    act: Activation,
    inputs: &[&wgpu::Buffer],
    output: &wgpu::Buffer,
    len: u64,
) -> Result<Dispatch> {
    let kernel = layout.kernel(kernel);
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
    let per_group = match layout {
        StreamLayout::PerInvocation => 0,
        StreamLayout::Lanes => LANES_PER_GROUP,
    };
    let params = ctx.uniform(
        "elementwise.params",
        &StreamDims {
            n_vec4: n_vec4_u32,
            per_group,
            _pad0: 0,
            _pad1: 0,
        },
    );
    let bind = match (kernel, inputs) {
        (
            Kernel::ActForward | Kernel::Copy | Kernel::ActForwardLanes | Kernel::CopyLanes,
            [src],
        ) => ctx.bind_group(kernel, &[(0, src), (1, output), (2, &params)]),
        (Kernel::ActBackward | Kernel::ActBackwardLanes, [z, dy]) => {
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
    let workgroups = match layout {
        StreamLayout::PerInvocation => n_vec4_u32.div_ceil(WORKGROUP_SIZE),
        StreamLayout::Lanes => n_vec4_u32.div_ceil(LANES_PER_GROUP),
    };
    let (gx, gy) = ctx.grid_1d(workgroups);
    if gy > ctx.max_workgroups_per_dim {
        return Err(Error::shape(
            kernel.name(),
            "fewer elements than the grid holds",
            len,
        ));
    }
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
