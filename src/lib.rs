//! # wgmlp
//!
//! Train small multilayer perceptrons on any GPU through wgpu compute shaders: Vulkan,
//! Metal, DX12, OpenGL, or a software adapter (Mesa's lavapipe/llvmpipe) when there is no GPU.
//!
//! Every kernel has a plain CPU reference beside it ([`Activation::forward_f64`], ...) that
//! the tests compare it with.
//!
//! ```no_run
//! use wgmlp::{Activation, GpuContext};
//!
//! let ctx = GpuContext::new()?; // WGPU_BACKEND / WGPU_ADAPTER_NAME are honoured
//! let act: Activation = "swish:1".parse()?;
//! let y = wgmlp::gpu::elementwise::forward(&ctx, act, &[-1.0, 0.0, 2.0])?;
//! assert!((y[2] - act.forward_f64(2.0) as f32).abs() < 1e-6);
//! # Ok::<(), wgmlp::Error>(())
//! ```

pub mod activation;
#[cfg(feature = "bench")]
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod dropout;
pub mod error;
pub mod fsutil;
pub mod gpu;
pub mod infer;
pub mod optim;
#[cfg(feature = "plot")]
pub mod plot;
pub mod reference;
pub mod rng;
pub mod schedule;
pub mod train;

pub use activation::{ACTIVATION_NAMES, Activation};
pub use config::{Init, Loss, MlpConfig, Task};
pub use data::{Dataset, Normalization};
pub use error::{Error, GpuFault, Result};
pub use gpu::{AdapterRequest, GpuContext, GpuDataset, GpuMlp};
pub use optim::{OptimizerConfig, OptimizerKind};
pub use reference::CpuMlp;
pub use train::{EpochMetrics, RegressionMetrics, TrainOptions, Trainer};
