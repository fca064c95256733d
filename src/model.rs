//! [`Model`]: what every trainable MLP offers, on the GPU ([`GpuMlp`], [`FusedMlp`]) or the
//! CPU reference ([`CpuMlp`]), and [`Device`]: where a model is made.
//!
//! Code written against `Model` (a training loop, a test, an application) runs unchanged on
//! both devices:
//!
//! ```
//! use wgmlp::{Device, MlpConfig, Model, OptimizerConfig, Target};
//!
//! # fn main() -> wgmlp::Result<()> {
//! let config = MlpConfig::new(2, &[8], 2).with_seed(7);
//! let x = [0.0f32, 1.0, 1.0, 0.0];
//! let labels = [1u32, 0];
//! for device in [Device::Cpu, Device::auto()] {
//!     let mut model = device.model(&config, OptimizerConfig::sgd(0.5), 2)?;
//!     let first = model.train_step(&x, Target::Labels(&labels), 2)?.loss;
//!     for _ in 0..20 {
//!         model.train_step(&x, Target::Labels(&labels), 2)?;
//!     }
//!     let last = model.train_step(&x, Target::Labels(&labels), 2)?.loss;
//!     assert!(last < first, "{}: {first} -> {last}", model.device_name());
//! }
//! # Ok(())
//! # }
//! ```

use crate::config::MlpConfig;
use crate::error::{Error, Result};
use crate::gpu::{FusedMlp, GpuContext, GpuMlp};
use crate::optim::{OptimizerConfig, OptimizerState};
use crate::reference::CpuMlp;

pub use crate::reference::{BatchLoss, Target};

/// A trainable MLP: forward pass, loss and gradients, optimizer steps, and its parameters
/// and optimizer state. Implemented by [`GpuMlp`] (the layered GPU path), [`FusedMlp`] (one
/// kernel per step, for small networks) and [`CpuMlp<f32>`] (the CPU reference); make one
/// with [`Device::model`] or their own constructors.
///
/// Batches are row-major `[batch × input]` features with [`Target::Labels`] (one class per
/// row) or [`Target::Values`] (`[batch × output]` regression targets). Parameters are flat,
/// in the layout of [`MlpConfig::layers`]: the same on every device, so they move between
/// devices and into checkpoints unchanged.
///
/// The trait is sealed: the engine's own [`crate::Trainer`] drives these models through
/// device-specific paths (resident data on the GPU) that outside types could not provide.
pub trait Model: Send + sealed::Sealed {
    /// The architecture.
    fn config(&self) -> &MlpConfig;

    /// The optimizer settings (the learning rate is the one [`Model::set_lr`] set last).
    fn optimizer(&self) -> &OptimizerConfig;

    /// Where the model runs, in words: the adapter's name and driver, or the CPU.
    fn device_name(&self) -> String;

    /// The largest batch one call takes.
    fn max_batch(&self) -> usize;

    /// The network's outputs (logits, or regression outputs) for `batch` rows of `x`.
    fn forward(&mut self, x: &[f32], batch: usize) -> Result<Vec<f32>>;

    /// The batch's loss and metrics, and the gradient of the mean loss with respect to
    /// every parameter (flat). The parameters are not changed.
    fn loss_and_gradients(
        &mut self,
        x: &[f32],
        target: Target<'_>,
        batch: usize,
    ) -> Result<(BatchLoss<f32>, Vec<f32>)>;

    /// One optimizer step on a batch; returns the batch's loss and metrics as the
    /// parameters were before the step. A non-finite loss is [`Error::Diverged`] and leaves
    /// the parameters as they were.
    fn train_step(&mut self, x: &[f32], target: Target<'_>, batch: usize)
    -> Result<BatchLoss<f32>>;

    /// The flat parameters.
    fn params(&self) -> Result<Vec<f32>>;

    /// Replaces the flat parameters.
    fn set_params(&mut self, params: &[f32]) -> Result<()>;

    /// The optimizer state: step count and moment buffers.
    fn optimizer_state(&self) -> Result<OptimizerState<f32>>;

    /// Restores an optimizer state (to resume training).
    fn set_optimizer_state(&mut self, state: &OptimizerState<f32>) -> Result<()>;

    /// Sets the learning rate of the following steps.
    fn set_lr(&mut self, lr: f32) -> Result<()>;

    /// For standardised regression targets: the std of each target, so the squared and
    /// absolute errors in [`BatchLoss`] come back in the targets' own units (default 1).
    fn set_target_scale(&mut self, scale: &[f32]) -> Result<()>;
}

pub(crate) mod sealed {
    use crate::error::Result;
    use crate::gpu::{GpuContext, GpuDataset, TrainState};
    use crate::reference::CpuMlp;

    /// The device-specific side of a model that the trainer uses.
    pub enum Engine<'a> {
        /// A GPU model, trained on data resident on its device.
        Gpu(&'a mut dyn GpuSteps),
        /// The CPU reference, trained on host data.
        Cpu(&'a mut CpuMlp<f32>),
    }

    /// Implemented by the crate's models only (see [`super::Model`]).
    pub trait Sealed {
        /// The trainer's view of the model.
        fn engine(&mut self) -> Engine<'_>;
    }

    /// What an epoch on the GPU needs of a model: `GpuMlp` and `FusedMlp` record the same
    /// way, and keep their running state in the same `gpu::state::States`.
    pub trait GpuSteps {
        fn context(&self) -> &GpuContext;
        /// Rows of the model's largest batch.
        fn batch_rows(&self) -> usize;
        fn train_step(
            &mut self,
            enc: &mut wgpu::CommandEncoder,
            data: &GpuDataset,
            offset: usize,
            batch: usize,
        ) -> Result<()>;
        /// Records the evaluation of rows `offset..offset + batch` of `data`, in order.
        fn eval_batch(
            &mut self,
            enc: &mut wgpu::CommandEncoder,
            data: &GpuDataset,
            offset: usize,
            batch: usize,
        ) -> Result<()>;

        /// Records the evaluation of all of `data`, in batches of the largest batch.
        fn evaluation(&mut self, enc: &mut wgpu::CommandEncoder, data: &GpuDataset) -> Result<()> {
            let batch = self.batch_rows();
            for offset in (0..data.len).step_by(batch) {
                self.eval_batch(enc, data, offset, batch.min(data.len - offset))?;
            }
            Ok(())
        }
        /// Records the zeroing of the running metrics (the step counter stays).
        fn reset_metrics(&self, enc: &mut wgpu::CommandEncoder);
        /// Records a copy of the training and evaluation states for [`Self::read_snapshot`].
        fn snapshot(&self, enc: &mut wgpu::CommandEncoder);
        fn read_snapshot(&self) -> Result<(TrainState, TrainState)>;
        fn clear_divergence(&self);
    }
}

/// The trainer's hooks and the [`Model`] methods of a GPU model, from its inherent methods
/// of the same names.
macro_rules! gpu_model {
    ($ty:ty) => {
        impl sealed::GpuSteps for $ty {
            fn context(&self) -> &GpuContext {
                <$ty>::context(self)
            }
            fn reset_metrics(&self, enc: &mut wgpu::CommandEncoder) {
                <$ty>::states(self).encode_reset(enc)
            }
            fn snapshot(&self, enc: &mut wgpu::CommandEncoder) {
                <$ty>::states(self).encode_snapshot(enc)
            }
            fn read_snapshot(&self) -> Result<(crate::gpu::TrainState, crate::gpu::TrainState)> {
                <$ty>::states(self).read_snapshot(<$ty>::context(self))
            }
            fn clear_divergence(&self) {
                <$ty>::states(self).clear_divergence(<$ty>::context(self))
            }
            fn batch_rows(&self) -> usize {
                <$ty>::max_batch(self)
            }
            fn train_step(
                &mut self,
                enc: &mut wgpu::CommandEncoder,
                data: &crate::gpu::GpuDataset,
                offset: usize,
                batch: usize,
            ) -> Result<()> {
                self.encode_train_step(enc, data, offset, batch)
            }
            fn eval_batch(
                &mut self,
                enc: &mut wgpu::CommandEncoder,
                data: &crate::gpu::GpuDataset,
                offset: usize,
                batch: usize,
            ) -> Result<()> {
                self.encode_eval_batch(enc, data, offset, batch)
            }
        }

        impl sealed::Sealed for $ty {
            fn engine(&mut self) -> sealed::Engine<'_> {
                sealed::Engine::Gpu(self)
            }
        }

        impl Model for $ty {
            fn config(&self) -> &MlpConfig {
                <$ty>::config(self)
            }
            fn optimizer(&self) -> &OptimizerConfig {
                <$ty>::optimizer(self)
            }
            fn device_name(&self) -> String {
                <$ty>::context(self).adapter_summary()
            }
            fn max_batch(&self) -> usize {
                <$ty>::max_batch(self)
            }
            fn forward(&mut self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
                <$ty>::forward(self, x, batch)
            }
            fn loss_and_gradients(
                &mut self,
                x: &[f32],
                target: Target<'_>,
                batch: usize,
            ) -> Result<(BatchLoss<f32>, Vec<f32>)> {
                <$ty>::loss_and_gradients(self, x, target, batch)
            }
            fn train_step(
                &mut self,
                x: &[f32],
                target: Target<'_>,
                batch: usize,
            ) -> Result<BatchLoss<f32>> {
                <$ty>::train_step(self, x, target, batch)
            }
            fn params(&self) -> Result<Vec<f32>> {
                <$ty>::params(self)
            }
            fn set_params(&mut self, params: &[f32]) -> Result<()> {
                <$ty>::set_params(self, params)
            }
            fn optimizer_state(&self) -> Result<OptimizerState<f32>> {
                <$ty>::optimizer_state(self)
            }
            fn set_optimizer_state(&mut self, state: &OptimizerState<f32>) -> Result<()> {
                <$ty>::set_optimizer_state(self, state)
            }
            fn set_lr(&mut self, lr: f32) -> Result<()> {
                <$ty>::set_lr(self, lr)
            }
            fn set_target_scale(&mut self, scale: &[f32]) -> Result<()> {
                <$ty>::set_target_scale(self, scale)
            }
        }
    };
}
gpu_model!(GpuMlp);
gpu_model!(FusedMlp);

impl sealed::Sealed for CpuMlp<f32> {
    fn engine(&mut self) -> sealed::Engine<'_> {
        sealed::Engine::Cpu(self)
    }
}

/// Checks a learning rate before any model takes it.
pub(crate) fn check_lr(lr: f32) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            "learning rate",
            format!("{lr} must be a finite number >= 0"),
        ))
    }
}

impl Model for CpuMlp<f32> {
    fn config(&self) -> &MlpConfig {
        &self.config
    }
    fn optimizer(&self) -> &OptimizerConfig {
        &self.optimizer
    }
    fn device_name(&self) -> String {
        "CPU reference (f32)".to_string()
    }
    fn max_batch(&self) -> usize {
        usize::MAX
    }
    fn forward(&mut self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
        CpuMlp::forward(self, x, batch)
    }
    fn loss_and_gradients(
        &mut self,
        x: &[f32],
        target: Target<'_>,
        batch: usize,
    ) -> Result<(BatchLoss<f32>, Vec<f32>)> {
        CpuMlp::loss_and_gradients(self, x, target, batch)
    }
    fn train_step(
        &mut self,
        x: &[f32],
        target: Target<'_>,
        batch: usize,
    ) -> Result<BatchLoss<f32>> {
        CpuMlp::train_step(self, x, target, batch)
    }
    fn params(&self) -> Result<Vec<f32>> {
        Ok(self.params.clone())
    }
    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.params.len() {
            return Err(Error::shape("parameters", self.params.len(), params.len()));
        }
        self.params.copy_from_slice(params);
        Ok(())
    }
    fn optimizer_state(&self) -> Result<OptimizerState<f32>> {
        Ok(self.state.clone())
    }
    fn set_optimizer_state(&mut self, state: &OptimizerState<f32>) -> Result<()> {
        let n = self.params.len();
        state.check_len(n)?;
        self.state = state.clone();
        Ok(())
    }
    fn set_lr(&mut self, lr: f32) -> Result<()> {
        check_lr(lr)?;
        self.optimizer.lr = lr;
        Ok(())
    }
    fn set_target_scale(&mut self, scale: &[f32]) -> Result<()> {
        if scale.len() != self.config.output {
            return Err(Error::shape(
                "target scale",
                self.config.output,
                scale.len(),
            ));
        }
        self.target_scale = scale.to_vec();
        Ok(())
    }
}

/// Where models run: a GPU (or software adapter) behind a [`GpuContext`], or the CPU
/// reference path. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Device {
    /// The GPU behind this context.
    Gpu(GpuContext),
    /// The CPU reference path (plain f32 loops, one thread).
    Cpu,
}

impl Device {
    /// The adapter [`GpuContext::new`] opens (a hardware GPU, else a software adapter), or
    /// the CPU reference path when none can be opened (the reason is logged as a warning).
    pub fn auto() -> Device {
        match GpuContext::new() {
            Ok(ctx) => Device::Gpu(ctx),
            Err(e) => {
                log::warn!("no GPU adapter ({e}); using the CPU reference path");
                Device::Cpu
            }
        }
    }

    /// The device in words: the adapter's name, backend and driver, or the CPU.
    pub fn describe(&self) -> String {
        match self {
            Device::Gpu(ctx) => ctx.adapter_summary(),
            Device::Cpu => "CPU reference (f32)".to_string(),
        }
    }

    /// The GPU context, if this is a GPU.
    pub fn context(&self) -> Option<&GpuContext> {
        match self {
            Device::Gpu(ctx) => Some(ctx),
            Device::Cpu => None,
        }
    }

    /// A model with the config's seeded initial parameters: [`GpuMlp`] (batches of up to
    /// `max_batch` rows) on a GPU, [`CpuMlp`] on the CPU.
    pub fn model(
        &self,
        config: &MlpConfig,
        optimizer: OptimizerConfig,
        max_batch: usize,
    ) -> Result<Box<dyn Model>> {
        config.validate()?;
        self.model_from_params(config, optimizer, max_batch, &config.init_params())
    }

    /// A model with the given flat parameters (from a checkpoint, or another device).
    pub fn model_from_params(
        &self,
        config: &MlpConfig,
        optimizer: OptimizerConfig,
        max_batch: usize,
        params: &[f32],
    ) -> Result<Box<dyn Model>> {
        Ok(match self {
            Device::Gpu(ctx) => Box::new(GpuMlp::from_params(
                ctx, config, optimizer, max_batch, params,
            )?),
            Device::Cpu => Box::new(CpuMlp::<f32>::from_params(
                config,
                params.to_vec(),
                optimizer,
            )?),
        })
    }
}

impl From<GpuContext> for Device {
    fn from(ctx: GpuContext) -> Self {
        Device::Gpu(ctx)
    }
}
