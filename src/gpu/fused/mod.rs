//! `FusedMlp`: a narrow MLP's whole forward pass, loss, backward pass and parameter
//! gradients in one dispatch, for hidden widths up to 128 — tiny-cuda-nn's "fully fused"
//! idea in portable WGSL.
//!
//! # Design
//!
//! A *row group* of S lanes (one subgroup of the adapter's fixed size, or one workgroup of 8
//! invocations that exchange values through workgroup memory where there are no subgroups)
//! takes a chunk of rows of the batch through every layer. Each vector of a row is spread over
//! the lanes (element j in lane j % S, slot j / S):
//!
//! * **forward**, layer by layer: lane l holds W[:, l + S·c] in registers, loaded once per
//!   chunk; each row's input values are broadcast to every lane and each lane accumulates its
//!   own output columns. The chunk's pre-activations wait in a storage buffer (the row store).
//! * **loss** on the output row (softmax cross-entropy or MSE, against labels or float
//!   targets) with subgroup (or workgroup) reductions; dL/dZ replaces the logits.
//! * **backward**, layer by layer: db and dW += X ⊗ dZ in registers (the input broadcast
//!   again), then dY = dZ·Wᵀ with lane l holding rows W[l + S·m, :] and dZ broadcast; the
//!   previous layer's pre-activations are overwritten by their gradients.
//! * each chunk (slot) writes its dW, db and dα (learned pReLU) to its own row of a partial
//!   buffer in the flat parameter layout; `fused_reduce.wgsl` sums the slots into the gradient
//!   buffer and the metrics into the training state (divergence check and step count as the
//!   loss and optimizer kernels do). No float atomics anywhere.
//!
//! Loss and gradients take 2 dispatches (fused, reduce); a training step 4 (fused, reduce,
//! optim.wgsl's `update`, and `fused_pack.wgsl`, which copies the updated parameters into the
//! r32float texture the kernel reads its weights from).
//!
//! The loops over a layer's width are unrolled by a generator ([`codegen`]) for each model
//! shape; only loops over rows, layers, column groups and blocks remain. The activation is
//! chosen per layer at run time (a switch on a uniform), so one pipeline serves every
//! activation of a shape. Hidden layers of any width ≤ 128 are padded to the widest, a multiple
//! of S; layers wider than 8 slots per lane run in groups of 4 slots; the first layer streams
//! its weights in blocks, so the input may be of any width.
//!
//! # Why this design (measured on lavapipe while the machine was shared; same-run ratios)
//!
//! * *Lanes own columns, weights in registers, inputs broadcast* against *one lane per row*
//!   (each invocation holds R rows' activations and reads the weights as vec4 from a uniform
//!   buffer, the usual port of tiny-cuda-nn's idea), on one 64×64 ReLU layer over 16,384 rows:
//!   25.9–37.4 against 3.6 / 6.5 / 10.1 / 11.9 GFLOP/s for R = 1 / 2 / 4 / 8 (R = 8 took 13 s
//!   to compile). lavapipe does every storage, workgroup or uniform load one lane at a time
//!   (12–30 ns per 8 lanes) while `subgroupBroadcast` costs ~4 ns: loading each weight once per
//!   chunk and moving activations by broadcast wins.
//! * Compile time decided the rest. Mesa 22.3 turns every storage access at a lane-dependent
//!   address into a loop over the lanes, and LLVM's time grows steeply with their number:
//!   the first version (weights from a storage buffer, the chunk's rows in a private array,
//!   read-modify-write partial gradients) took 142–248 s to compile for 2-64-64-3 and 35 s
//!   for 2-32-32-3. Measured on parts of the 64-wide kernel: weight loads from a texture
//!   instead of storage, 33 s → 4.7 s (a texel fetch is straight-line code; a uniform buffer,
//!   6.1 s, would cap the weights at 64 KiB); a private array indexed by the row became a
//!   ladder over the whole array (the row store moved to a storage buffer); plain stores
//!   instead of read-modify-write of the partials roughly halved the backward's time. With
//!   column groups for 128-wide layers, a first use now compiles in 1.3 s (2-16-16-2), 3.8 s
//!   (2-32-32-3), 7–16 s (2-64-64-3) and 13 s (2-128-128-3) instead of 223 s.
//! * llvmpipe ends a shader's loops after 65,535 iterations (a guard against endless loops),
//!   which silently cut the backward pass of 8,192-row chunks short: chunks are capped so
//!   every pass over them stays below that ([`FusedShape::max_chunk_rows`]).
//!
//! Whole-network figures against the layered path and the CPU reference are in BENCHMARKS.md
//! and `wgmlp bench fused`.
//!
//! Workgroup memory: a few hundred bytes (only the workgroup exchange uses any), far below
//! WebGPU's 16 KiB; 8 to 64 invocations per workgroup.

pub mod choice;
pub mod codegen;
mod data;
mod model;
pub mod pipeline;
mod plan;
pub mod shape;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::MlpConfig;
use crate::gpu::context::GpuContext;
use crate::optim::OptimizerConfig;

pub use choice::{KernelChoice, KernelDecision, decide};
pub use pipeline::{pipeline, validate};
pub use shape::{Exchange, FusedShape, LaneSetup, MAX_HIDDEN, MAX_LAYERS, MAX_OUTPUT};

/// `shaders/fused_mlp.wgsl` (the fixed part of the fused kernel).
pub const FUSED_MLP_WGSL: &str = include_str!("../../../shaders/fused_mlp.wgsl");
/// `shaders/fused_reduce.wgsl`.
pub const FUSED_REDUCE_WGSL: &str = include_str!("../../../shaders/fused_reduce.wgsl");
/// `shaders/fused_pack.wgsl`.
pub const FUSED_PACK_WGSL: &str = include_str!("../../../shaders/fused_pack.wgsl");

/// Row width of the parameter texture (`TEX_WIDTH` in the shaders).
const TEX_WIDTH: u32 = 4096;

/// An MLP resident on the GPU, trained and evaluated by the fused kernel.
pub struct FusedMlp {
    ctx: GpuContext,
    config: MlpConfig,
    optimizer: OptimizerConfig,
    shape: FusedShape,
    max_batch: usize,
    max_slots: usize,
    /// Floats per slot in `partials`: the parameters padded to 4, 4 metrics, a scratch float
    /// per lane.
    stride: usize,
    params: wgpu::Buffer,
    /// The parameters as an r32float texture, which the fused kernel reads.
    wtex: wgpu::Texture,
    grads: wgpu::Buffer,
    moment1: wgpu::Buffer,
    moment2: wgpu::Buffer,
    /// Training and evaluation states.
    states: crate::gpu::state::States,
    xb: wgpu::Buffer,
    labels: wgpu::Buffer,
    targets: wgpu::Buffer,
    outputs: wgpu::Buffer,
    partials: wgpu::Buffer,
    /// The chunk store of every slot (pre-activations and their gradients).
    rows: wgpu::Buffer,
    net: wgpu::Buffer,
    fused_pipe: Arc<wgpu::ComputePipeline>,
    reduce_pipe: Arc<wgpu::ComputePipeline>,
    update_pipe: Arc<wgpu::ComputePipeline>,
    pack_pipe: Arc<wgpu::ComputePipeline>,
    /// The optimizer's hyper-parameters (the learning rate changes with a schedule).
    opt_uniform: wgpu::Buffer,
    opt_bind: wgpu::BindGroup,
    pack_bind: wgpu::BindGroup,
    plans: HashMap<(usize, plan::Mode, bool), plan::Plan>,
    /// Batch indices for the gather from a resident dataset.
    idx: wgpu::Buffer,
    /// Gather dispatches by (dataset id, batch size).
    gathers: HashMap<(u64, usize), Vec<crate::gpu::Dispatch>>,
}
