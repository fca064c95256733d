//! # wgmlp
//!
//! Train small multilayer perceptrons on any GPU through wgpu compute shaders: Vulkan,
//! Metal, DX12, OpenGL, or a software adapter (Mesa's lavapipe/llvmpipe) when there is no GPU.
//! The same models also run on a plain CPU reference path, which the tests compare every
//! kernel with.
//!
//! # A walk-through
//!
//! Open a device, put your own `Vec<f32>` features and `Vec<u32>` labels in a [`Dataset`],
//! train, evaluate, save a checkpoint, load it and predict:
//!
//! ```
//! use wgmlp::checkpoint::{self, Checkpoint};
//! use wgmlp::{Control, Dataset, Device, MlpConfig, Normalization, OptimizerConfig};
//! use wgmlp::{Predictor, Trainer, infer};
//!
//! # fn main() -> wgmlp::Result<()> {
//! // 1. A device: the GPU wgpu finds (a software adapter counts), else the CPU reference.
//! let device = Device::auto();
//! println!("running on {}", device.describe());
//!
//! // 2. Your data: row-major features and one class per row. Here points of a 20 × 20 grid
//! //    over [-9.5, 9.5]², class 1 above the diagonal.
//! let (mut features, mut labels) = (Vec::new(), Vec::new());
//! for i in 0..400 {
//!     let (x, y) = ((i % 20) as f32 - 9.5, (i / 20) as f32 - 9.5);
//!     features.extend([x, y]);
//!     labels.push(u32::from(y > x));
//! }
//! let data = Dataset::new("grid", features, labels, 2, 2)?; // 2 features, 2 classes
//! let (mut train, mut test) = data.split(0.25, 7); // a seeded 300/100 split
//! // Standardise the features with the training set's statistics (kept in the checkpoint).
//! let norm = Normalization::fit(&train);
//! norm.apply_to(&mut train)?;
//! norm.apply_to(&mut test)?;
//!
//! // 3. A model (2 inputs, one hidden ReLU layer of 16, 2 classes) and its training.
//! let config = MlpConfig::new(2, &[16], 2).with_seed(1);
//! let mut trainer = Trainer::builder(device.clone(), &config, OptimizerConfig::adam(0.05))
//!     .batch_size(32)
//!     .test(test.clone())
//!     .build(train)?;
//! let history = trainer.fit(20, |_event| Ok(Control::Continue))?;
//! println!("test accuracy after 20 epochs: {:?}", history[19].test_accuracy);
//!
//! // 4. Evaluate: a forward-only Predictor of the trained parameters.
//! let predictor = Predictor::of_model(&device, trainer.model())?;
//! let eval = infer::evaluate(&predictor, &test)?;
//! assert!(eval.accuracy > 0.9, "{eval:?}");
//!
//! // 5. Save: architecture, parameters and the normalisation, as safetensors.
//! let path = std::env::temp_dir().join(format!("wgmlp-doc-{}.safetensors", std::process::id()));
//! let mut ckpt = Checkpoint::new(config, trainer.params()?);
//! ckpt.normalization = Some(norm);
//! checkpoint::save(&path, &ckpt)?;
//!
//! // 6. Load and predict on raw inputs, normalised as in training.
//! let ckpt = checkpoint::load(&path)?;
//! let predictor = Predictor::new(&device, &ckpt.config, &ckpt.params)?;
//! let mut x = vec![5.0, -5.0, -5.0, 5.0]; // (5, -5) and (-5, 5)
//! if let Some(norm) = &ckpt.normalization {
//!     norm.apply(&mut x)?;
//! }
//! assert_eq!(predictor.classes(&x, 2)?, [0, 1]);
//! let p = predictor.probabilities(&x, 2)?; // [2 × 2], each row sums to 1
//! assert!(p[0] > 0.5 && p[3] > 0.5); // row 0 is class 0, row 1 class 1
//! # std::fs::remove_file(&path).ok();
//! # Ok(())
//! # }
//! ```
//!
//! Regression works the same way with [`Dataset::regression`] (float targets),
//! [`MlpConfig::with_task`]`(`[`Task::Regress`]`)` and a regression loss, and
//! [`infer::evaluate_regression`] / [`infer::predictions`]. [`data::csv`] and [`data::idx`]
//! read CSV files and MNIST-style IDX files into a [`Dataset`]; [`data::synthetic`] makes the
//! built-in toy sets. `cargo run --release --example embed` runs a version of the above in
//! which one struct owns the device and the model.
//!
//! # GPU or CPU: [`Device`]
//!
//! A [`Device`] says where models run: [`Device::Gpu`] holds a [`GpuContext`], a cheap-to-clone
//! handle to one wgpu device and its caches (every model, trainer and predictor made from it
//! keeps a clone, so none of them borrows it); [`Device::Cpu`] is the reference path (plain f32
//! loops on one thread: slow, but exact and always there).
//!
//! - [`Device::auto`]: [`GpuContext::new`] (the adapter `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and
//!   `WGPU_POWER_PREF` ask for; a hardware GPU first, then a software adapter), or the CPU
//!   when no adapter opens.
//! - `Device::Gpu(GpuContext::new()?)`: a GPU or an error ([`Error::NoAdapter`] says how to
//!   install a software adapter).
//! - [`GpuContext::open`] with an [`AdapterRequest`] and [`ContextOptions`] chooses the
//!   adapter and the options in code; [`GpuContext::from_adapter`] and
//!   [`GpuContext::from_device`] wrap an adapter or a device the application already has.
//!
//! Parameters are flat `Vec<f32>` in the layout of [`MlpConfig::layers`] on every device, so a
//! model trained on one device is loaded on another with [`Device::model_from_params`] or
//! [`Predictor::new`].
//!
//! # The [`Model`] trait
//!
//! [`Device::model`] makes a `Box<dyn Model>`: a [`GpuMlp`] (layer-by-layer kernels) on a GPU,
//! a [`CpuMlp`] on the CPU; [`FusedMlp`] (the whole step in one kernel, for narrow networks) is
//! the third implementation. A `Model` takes host batches: [`Model::forward`],
//! [`Model::loss_and_gradients`] and [`Model::train_step`] with a [`Target::Labels`] or
//! [`Target::Values`] batch, plus [`Model::params`] / [`Model::set_params`], the optimizer
//! state and the learning rate. Code written against it runs on both devices (see the
//! [`model`] module's example). The trait is sealed: [`Trainer`] drives these models through
//! device-specific paths (data resident on the GPU, many steps per submit).
//!
//! # Training: [`Trainer`] and its events
//!
//! [`Trainer::builder`] makes the model and uploads the data once ([`TrainerBuilder`] sets the
//! batch size, a test set, a learning-rate schedule, start parameters and, on a GPU, the
//! [`KernelChoice`]); [`Trainer::new`] takes a model you made. The
//! trainer owns its model and shares its datasets (`Arc<Dataset>`), so it is `'static + Send`
//! and can run on another thread. [`Trainer::fit`] runs epochs and calls you back with an
//! [`Event`]: [`Event::Progress`] as the steps of an epoch finish, [`Event::Epoch`] with the
//! epoch's [`EpochMetrics`] and the model after it. Answer [`Control::Stop`] to stop: after an
//! epoch, `fit` returns the epochs so far; during one, it stops after the work already
//! submitted and returns [`Error::Interrupted`]. Early stopping on the test loss, keeping the
//! best parameters:
//!
//! ```
//! use wgmlp::{Control, Device, Event, MlpConfig, OptimizerConfig, Trainer, data::synthetic};
//!
//! # fn main() -> wgmlp::Result<()> {
//! let (train, test) = synthetic::builtin("spirals", 1)?;
//! let config = MlpConfig::new(2, &[32], 3);
//! let mut trainer = Trainer::builder(Device::Cpu, &config, OptimizerConfig::adam(0.01))
//!     .batch_size(64)
//!     .test(test)
//!     .build(train)?;
//! let (mut best, mut best_params, mut waited) = (f32::INFINITY, Vec::new(), 0);
//! let history = trainer.fit(300, |event| {
//!     if let Event::Epoch { metrics, model } = event {
//!         let loss = metrics.test_loss.unwrap_or(metrics.train_loss);
//!         if loss < best {
//!             (best, best_params, waited) = (loss, model.params()?, 0);
//!         } else {
//!             waited += 1;
//!             if waited == 5 {
//!                 return Ok(Control::Stop);
//!             }
//!         }
//!     }
//!     Ok(Control::Continue)
//! })?;
//! trainer.model_mut().set_params(&best_params)?;
//! println!("{} epochs, best test loss {best:.4}", history.len());
//! # Ok(())
//! # }
//! ```
//!
//! [`Trainer::run_epoch`] runs one epoch without callbacks, [`Trainer::set_stop_flag`] stops a
//! run from a signal handler, and [`Trainer::restore`] resumes one from a checkpoint's
//! [`TrainingState`](checkpoint::TrainingState).
//!
//! # Caches and autotuning: [`ContextOptions`]
//!
//! Each layer's matmul has several cores; with the default
//! [`Policy::Auto`](gpu::autotune::Policy::Auto) the context times the eligible ones once per
//! shape class the first time a shape is used and keeps the fastest. The default
//! [`ContextOptions`] (what [`GpuContext::new`] and [`Device::auto`] use) keep those choices
//! in memory only: **the library writes nothing to disk** unless you set
//! [`ContextOptions::cache_dir`], where `autotune.json` and the fused-kernel choices
//! `kernels.json` are then kept between runs. [`ContextOptions::from_env`] is what the
//! command-line tool uses: the policy from `WGMLP_MATMUL` and a cache directory from
//! `WGMLP_CACHE_DIR`, else `$XDG_CACHE_HOME/wgmlp` or `~/.cache/wgmlp`.
//! [`Policy::Heuristic`](gpu::autotune::Policy::Heuristic) skips the timing;
//! [`ContextOptions::wait_timeout`] bounds every wait for the GPU. (GPU drivers may keep
//! their own shader caches; Mesa does.)
//!
//! ```no_run
//! use wgmlp::gpu::autotune::Policy;
//! use wgmlp::{AdapterRequest, ContextOptions, Device, GpuContext};
//!
//! let options = ContextOptions {
//!     autotune: Policy::Auto,
//!     cache_dir: Some("my-app-cache".into()),
//!     ..ContextOptions::default()
//! };
//! let device = Device::Gpu(GpuContext::open(&AdapterRequest::from_env(), options)?);
//! # Ok::<(), wgmlp::Error>(())
//! ```
//!
//! # Errors
//!
//! Every fallible function returns [`Result<T>`](Result), whose [`Error`] names what was wrong
//! and, where there is something to do, what to do: no adapter, or one below the limits the
//! kernels need ([`Error::NoAdapter`], [`Error::AdapterUnsuitable`]); a GPU failure at run time
//! ([`Error::Gpu`] with a [`GpuFault`]: out of memory, a lost device, a validation error, a
//! timeout); shapes, settings and data that do not fit ([`Error::Shape`], [`Error::Config`],
//! [`Error::InvalidData`], [`Error::Data`] with the file and position); a model too large for
//! the host or the adapter, found before anything is allocated ([`Error::TooLarge`]); a
//! non-finite loss ([`Error::Diverged`]: the parameters from before that step are kept); a
//! stopped run ([`Error::Interrupted`]). Malformed data, shapes and settings are errors, not
//! panics.
//!
//! # Cargo features
//!
//! - `cli` (default): the `wgmlp` command-line program; turns on `plot` and `bench`.
//! - `plot`: the `plot` module, PNG and SVG charts through plotters (which needs fontconfig).
//! - `bench`: the `bench` module, the benchmark sections, with a CPU sgemm to compare with.
//!
//! For the library alone, depend on it with `default-features = false` (or build with
//! `cargo build --no-default-features`): everything on this page stays, without the
//! command line's, the plots' or the benchmarks' dependencies.
//!
//! # Below the models
//!
//! Every kernel has a plain CPU reference beside it ([`Activation::forward_f64`], ...) that
//! the tests compare it with, and the kernels can be used on their own:
//!
//! ```no_run
//! use wgmlp::{Activation, GpuContext};
//!
//! let ctx = GpuContext::new()?;
//! let act: Activation = "swish:1".parse()?;
//! let y = wgmlp::gpu::elementwise::forward(&ctx, act, &[-1.0, 0.0, 2.0])?;
//! assert!((y[2] - act.forward_f64(2.0) as f32).abs() < 1e-6);
//! # Ok::<(), wgmlp::Error>(())
//! ```

#![warn(missing_docs)]

pub mod activation;
#[cfg(feature = "bench")]
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub(crate) mod dropout;
pub mod error;
#[doc(hidden)]
pub mod fsutil;
pub mod gpu;
pub mod infer;
pub mod model;
pub mod optim;
#[cfg(feature = "plot")]
pub mod plot;
pub mod reference;
pub mod rng;
pub mod schedule;
pub mod train;

pub use activation::{ACTIVATION_NAMES, Activation};
pub use checkpoint::Checkpoint;
pub use config::{Init, Loss, MlpConfig, Task};
pub use data::{Dataset, Normalization};
pub use error::{Error, GpuFault, Result};
pub use gpu::fused::KernelChoice;
pub use gpu::{AdapterRequest, ContextOptions, FusedMlp, GpuContext, GpuDataset, GpuMlp};
pub use infer::Predictor;
pub use model::{BatchLoss, Device, Model, Target};
pub use optim::{OptimizerConfig, OptimizerKind};
pub use reference::CpuMlp;
pub use train::{
    Control, EpochMetrics, Event, RegressionMetrics, TrainOptions, Trainer, TrainerBuilder,
};
