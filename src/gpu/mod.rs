//! The GPU side: context, kernels and the operations built on them.
//!
//! - `context`: adapter, device, limits, pipeline cache, buffers.
//! - `kernels`: every WGSL kernel in one enum, with its source and binding signature;
//!   `uniforms`: the Rust mirrors of `shaders/structs.wgsl`.
//! - `matmul`: the matmul cores and the dispatches of one layer; `tune` chooses a core per
//!   shape, remembered by `autotune` (a cache of choices).
//! - `layer`: one layer outside a model; `mlp`: the whole model; `dataset`: resident data;
//!   `elementwise`: the streaming activation kernels.
//!
//! Dependencies point one way: context ← kernels/uniforms ← matmul ← layer ← tune ← mlp.

pub mod autotune;
pub mod context;
pub mod dataset;
pub mod elementwise;
pub mod kernels;
pub mod layer;
pub mod matmul;
pub mod mlp;
pub mod tune;
pub mod uniforms;

pub use context::{AdapterRequest, GpuContext, NO_ADAPTER_HINT};
pub use dataset::GpuDataset;
pub use kernels::{Dispatch, Kernel, PipelineKey};
pub use mlp::{GpuMlp, TrainState};
