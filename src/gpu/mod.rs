//! The GPU side: context, kernels and the operations built on them.
//!
//! - `adapter`: choosing an adapter; `context`: device, limits, pipeline cache, buffers;
//!   `dispatch`: a prepared dispatch.
//! - `kernels`: every WGSL kernel in one enum, with its source and binding signature;
//!   `uniforms`: the Rust mirrors of `shaders/structs.wgsl`.
//! - `variant`: the matmul cores by name (plain data); `matmul`: their dispatches for one
//!   layer; `tune` times them and chooses a core per shape, remembered by `autotune` (a cache
//!   of choices, which knows cores only by name).
//! - `layer`: one layer outside a model; `mlp`: the whole model; `dataset`: resident data;
//!   `elementwise`: the streaming activation kernels.
//!
//! Dependencies point one way: variant ← kernels ← autotune ← context ← matmul ← layer ←
//! tune ← mlp (no cycle).

pub mod adapter;
pub mod autotune;
pub mod context;
pub mod dataset;
pub(crate) mod dispatch;
pub mod elementwise;
pub mod fused;
pub mod kernels;
pub mod layer;
#[doc(hidden)]
pub mod matmul;
pub mod mlp;
pub(crate) mod state;
#[doc(hidden)]
pub mod tune;
pub(crate) mod uniforms;
pub mod variant;

pub use autotune::Policy;
pub use context::{AdapterRequest, ContextOptions, ContextShared, GpuContext, NO_ADAPTER_HINT};
pub use dataset::GpuDataset;
pub use fused::FusedMlp;
pub use kernels::{Dispatch, Kernel, PipelineKey};
pub use mlp::{GpuMlp, TrainState};
pub use variant::MatmulVariant;
