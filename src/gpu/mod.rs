//! The GPU side: context, kernels and the operations built on them.

pub mod context;
pub mod elementwise;
pub mod kernels;

pub use context::{AdapterRequest, GpuContext, NO_ADAPTER_HINT};
pub use kernels::{Kernel, PipelineKey};
