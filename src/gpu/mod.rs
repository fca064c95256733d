//! The GPU side: context, kernels and the operations built on them.

pub mod autotune;
pub mod context;
pub mod dataset;
pub mod elementwise;
pub mod fused;
pub mod kernels;
pub mod layer;
pub mod mlp;

pub use context::{AdapterRequest, GpuContext, NO_ADAPTER_HINT};
pub use dataset::GpuDataset;
pub use fused::FusedMlp;
pub use kernels::{Dispatch, Kernel, PipelineKey};
pub use mlp::{GpuMlp, TrainState};
