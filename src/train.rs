//! `Trainer`: epochs of shuffled mini-batches on the GPU (or the CPU reference), with
//! evaluation and metrics read back once per epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::config::MlpConfig;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::fused::{FusedMlp, KernelChoice, KernelDecision};
use crate::gpu::uniforms::TrainState;
use crate::gpu::{GpuContext, GpuDataset, GpuMlp};
use crate::optim::{OptimizerConfig, OptimizerState};
use crate::reference::{BatchLoss, CpuMlp, Target};
use crate::rng::Rng;

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Samples per optimizer step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Training steps recorded into one command encoder and submitted together.
    pub steps_per_submit: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            batch_size: 256,
            steps_per_submit: 64,
        }
    }
}

/// What one epoch measured.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (as the parameters were at each step).
    pub train_loss: f32,
    /// Training accuracy over the epoch (likewise).
    pub train_accuracy: f32,
    /// Loss on the test set after the epoch, if there is one.
    pub test_loss: Option<f32>,
    /// Accuracy on the test set after the epoch, if there is one.
    pub test_accuracy: Option<f32>,
    /// Regression: running MSE, MAE and R² of the epoch's training batches.
    pub train_regression: Option<RegressionMetrics>,
    /// Regression: MSE, MAE and R² on the test set after the epoch, if there is one.
    pub test_regression: Option<RegressionMetrics>,
    /// Wall-clock seconds of the epoch (training and evaluation).
    pub seconds: f64,
    /// Training samples per second.
    pub samples_per_second: f64,
}

/// Regression metrics of a pass over a dataset, in the targets' own units (a standardised
/// target's errors are scaled back by its std).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegressionMetrics {
    /// Mean squared error over samples and target columns.
    pub mse: f32,
    /// Mean absolute error over samples and target columns.
    pub mae: f32,
    /// Coefficient of determination 1 − SS_res / SS_tot, summed over target columns (the
    /// variance-weighted R² of scikit-learn's `r2_score(multioutput="variance_weighted")`;
    /// for one target the plain R²).
    pub r2: f32,
}

impl RegressionMetrics {
    /// From summed squared and absolute errors over `count` samples of `n_targets` columns,
    /// and the dataset's total sum of squares (see [`Dataset::target_sum_of_squares`]).
    pub fn from_sums(
        sq_err: f64,
        abs_err: f64,
        count: usize,
        n_targets: usize,
        ss_tot: f64,
    ) -> Self {
        let n = (count * n_targets).max(1) as f64;
        let r2 = if ss_tot > 0.0 {
            1.0 - sq_err / ss_tot
        } else {
            f64::NAN
        };
        RegressionMetrics {
            mse: (sq_err / n) as f32,
            mae: (abs_err / n) as f32,
            r2: r2 as f32,
        }
    }
}

/// The permutation of `0..n` used in `epoch` (1-based): the same on every device.
pub fn epoch_permutation(seed: u64, epoch: usize, n: usize) -> Vec<u32> {
    Rng::new(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).permutation(n)
}

/// What a pass over a dataset summed: mean loss, accuracy, and (regression) the summed
/// squared and absolute errors.
#[derive(Clone, Copy, Debug)]
struct Stats {
    loss: f32,
    accuracy: f32,
    sq_err: f64,
    abs_err: f64,
}

impl Stats {
    fn of_state(s: &crate::gpu::TrainState) -> Stats {
        Stats {
            loss: s.mean_loss(),
            accuracy: s.accuracy(),
            sq_err: f64::from(s.sq_err),
            abs_err: f64::from(s.abs_err),
        }
    }
}

/// The GPU model with its resident datasets.
pub struct GpuEngine<'c> {
    /// The model.
    pub mlp: GpuMlp<'c>,
    /// Training set on the GPU.
    pub train: GpuDataset,
    /// Test set on the GPU.
    pub test: Option<GpuDataset>,
}

/// The fused-kernel model with its resident datasets.
pub struct FusedEngine<'c> {
    /// The model.
    pub mlp: FusedMlp<'c>,
    /// Training set on the GPU.
    pub train: GpuDataset,
    /// Test set on the GPU.
    pub test: Option<GpuDataset>,
}

/// Where the model lives.
pub enum Engine<'c> {
    /// On the GPU, with the datasets resident there.
    Gpu(Box<GpuEngine<'c>>),
    /// On the GPU, trained by the fused kernel (`--kernel fused`, or `auto` when it fits and is
    /// faster).
    Fused(Box<FusedEngine<'c>>),
    /// The CPU reference in f32.
    Cpu(Box<CpuMlp<f32>>),
}

/// Trains an MLP epoch by epoch.
pub struct Trainer<'c> {
    /// The model and its data.
    pub engine: Engine<'c>,
    train: Dataset,
    test: Option<Dataset>,
    options: TrainOptions,
    seed: u64,
    /// Epochs completed.
    pub epoch: usize,
    stop: Option<Arc<AtomicBool>>,
    /// Per-target scale of the regression metrics (see [`Trainer::set_target_scale`]).
    target_scale: Vec<f32>,
    /// Called with (steps done, steps) of the running epoch (see [`Trainer::set_progress`]).
    progress: Option<Progress<'c>>,
    /// The GPU path and why it was chosen (`None` on the CPU).
    kernel: Option<KernelDecision>,
}

/// A progress callback: (steps done, steps in the epoch).
pub type Progress<'c> = Box<dyn FnMut(usize, usize) + 'c>;

impl<'c> Trainer<'c> {
    /// A trainer on the GPU's layered path: uploads both datasets once.
    pub fn gpu(
        ctx: &'c GpuContext,
        config: &MlpConfig,
        optimizer: OptimizerConfig,
        train: &Dataset,
        test: Option<&Dataset>,
        options: TrainOptions,
    ) -> Result<Self> {
        Self::gpu_with_kernel(
            ctx,
            config,
            optimizer,
            train,
            test,
            options,
            KernelChoice::Layered,
        )
    }

    /// A trainer on the GPU path `kernel` chooses (`--kernel`: the fused kernel, the layered
    /// path, or `auto`): uploads both datasets once. [`Self::kernel`] says what was chosen.
    pub fn gpu_with_kernel(
        ctx: &'c GpuContext,
        config: &MlpConfig,
        optimizer: OptimizerConfig,
        train: &Dataset,
        test: Option<&Dataset>,
        options: TrainOptions,
        kernel: KernelChoice,
    ) -> Result<Self> {
        check_data(config, train, test, &options)?;
        let batch = options.batch_size.min(train.len());
        let decision = crate::gpu::fused::decide(ctx, config, optimizer, batch, kernel)?;
        if let Some(note) = &decision.note {
            log::info!("{note}");
        }
        let train_gpu = GpuDataset::upload(ctx, train)?;
        let test_gpu = test.map(|t| GpuDataset::upload(ctx, t)).transpose()?;
        let engine = match decision.fused {
            Some(_) => Engine::Fused(Box::new(FusedEngine {
                mlp: FusedMlp::new(ctx, config, optimizer, batch)?,
                train: train_gpu,
                test: test_gpu,
            })),
            None => Engine::Gpu(Box::new(GpuEngine {
                mlp: GpuMlp::new(ctx, config, optimizer, batch)?,
                train: train_gpu,
                test: test_gpu,
            })),
        };
        let mut trainer = Self::with_engine(engine, config, train, test, options);
        trainer.kernel = Some(decision);
        Ok(trainer)
    }

    /// The GPU path training this model and why it was chosen (`None` on the CPU).
    pub fn kernel(&self) -> Option<&KernelDecision> {
        self.kernel.as_ref()
    }

    /// A trainer on the CPU reference path (f32).
    pub fn cpu(
        config: &MlpConfig,
        optimizer: OptimizerConfig,
        train: &Dataset,
        test: Option<&Dataset>,
        options: TrainOptions,
    ) -> Result<Self> {
        check_data(config, train, test, &options)?;
        let mlp = CpuMlp::<f32>::new(config, optimizer)?;
        Ok(Self::with_engine(
            Engine::Cpu(Box::new(mlp)),
            config,
            train,
            test,
            options,
        ))
    }

    fn with_engine(
        engine: Engine<'c>,
        config: &MlpConfig,
        train: &Dataset,
        test: Option<&Dataset>,
        options: TrainOptions,
    ) -> Self {
        Trainer {
            engine,
            train: train.clone(),
            test: test.cloned(),
            options,
            seed: config.seed,
            epoch: 0,
            stop: None,
            target_scale: vec![1.0; config.output],
            progress: None,
            kernel: None,
        }
    }

    /// Reports progress within each epoch: on the GPU after each submit of
    /// `steps_per_submit` steps (the trainer then waits for the previous submit to finish,
    /// keeping one in flight, so the count is of steps done, not queued); on the CPU after
    /// every step.
    pub fn set_progress(&mut self, f: Progress<'c>) {
        self.progress = Some(f);
    }

    /// Sets the learning rate of the following steps (for a schedule, between epochs).
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        match &mut self.engine {
            Engine::Gpu(g) => g.mlp.set_lr(lr),
            Engine::Fused(f) => f.mlp.set_lr(lr),
            Engine::Cpu(mlp) => {
                if !(lr.is_finite() && lr >= 0.0) {
                    return Err(Error::config(
                        "learning rate",
                        format!("{lr} must be a finite number >= 0"),
                    ));
                }
                mlp.optimizer.lr = lr;
                Ok(())
            }
        }
    }

    /// For standardised regression targets: the std of each target, so MSE, MAE and R² are
    /// reported in the targets' own units (the default scale is 1).
    pub fn set_target_scale(&mut self, scale: &[f32]) -> Result<()> {
        match &mut self.engine {
            Engine::Gpu(g) => g.mlp.set_target_scale(scale)?,
            // The fused path trains classification only (fused::decide).
            Engine::Fused(_) => {
                return Err(Error::config(
                    "target scale",
                    "the fused kernel does not train regression datasets",
                ));
            }
            Engine::Cpu(mlp) => {
                if scale.len() != mlp.config.output {
                    return Err(Error::shape("target scale", mlp.config.output, scale.len()));
                }
                mlp.target_scale = scale.to_vec();
            }
        }
        self.target_scale = scale.to_vec();
        Ok(())
    }

    /// The regression metrics of `stats` over `data` (None for classification).
    fn regression(&self, stats: &Stats, data: &Dataset) -> Option<RegressionMetrics> {
        data.is_regression().then(|| {
            RegressionMetrics::from_sums(
                stats.sq_err,
                stats.abs_err,
                data.len(),
                data.n_targets,
                data.target_sum_of_squares(Some(&self.target_scale)),
            )
        })
    }

    /// Once `flag` is set (by a signal handler, say), the running epoch stops after the work
    /// already submitted to the GPU (or the CPU step that is running) with
    /// [`Error::Interrupted`]; the parameters are then those after the last finished step.
    pub fn set_stop_flag(&mut self, flag: Arc<AtomicBool>) {
        self.stop = Some(flag);
    }

    /// A short name of where training runs.
    pub fn device_name(&self) -> String {
        match &self.engine {
            Engine::Gpu(g) => g.mlp.context().adapter_summary(),
            Engine::Fused(f) => f.mlp.context().adapter_summary(),
            Engine::Cpu(_) => "CPU reference (f32)".to_string(),
        }
    }

    /// Number of optimizer steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.train
            .len()
            .div_ceil(self.options.batch_size.min(self.train.len()))
    }

    /// Trains one epoch and evaluates; returns its metrics.
    pub fn run_epoch(&mut self) -> Result<EpochMetrics> {
        let epoch = self.epoch + 1;
        let start = Instant::now();
        let perm = epoch_permutation(self.seed, epoch, self.train.len());
        let batch = self.options.batch_size.min(self.train.len());
        let stop = self.stop.as_deref();
        let progress = self.progress.as_deref_mut();
        let (train_stats, test_stats) = match &mut self.engine {
            Engine::Gpu(g) => {
                let GpuEngine { mlp, train, test } = &mut **g;
                gpu_epoch(
                    mlp,
                    train,
                    test.as_ref(),
                    &perm,
                    batch,
                    &self.options,
                    epoch,
                    stop,
                    progress,
                )?
            }
            Engine::Fused(f) => {
                let FusedEngine { mlp, train, test } = &mut **f;
                gpu_epoch(
                    mlp,
                    train,
                    test.as_ref(),
                    &perm,
                    batch,
                    &self.options,
                    epoch,
                    stop,
                    progress,
                )?
            }
            Engine::Cpu(mlp) => cpu_epoch(
                mlp,
                &self.train,
                self.test.as_ref(),
                &perm,
                batch,
                epoch,
                stop,
                progress,
            )?,
        };
        self.epoch = epoch;
        let seconds = start.elapsed().as_secs_f64();
        let train_regression = self.regression(&train_stats, &self.train);
        let test_regression = test_stats
            .zip(self.test.as_ref())
            .and_then(|(s, t)| self.regression(&s, t));
        Ok(EpochMetrics {
            epoch,
            train_loss: train_stats.loss,
            train_accuracy: train_stats.accuracy,
            test_loss: test_stats.map(|s| s.loss),
            test_accuracy: test_stats.map(|s| s.accuracy),
            train_regression,
            test_regression,
            seconds,
            samples_per_second: self.train.len() as f64 / seconds.max(1e-9),
        })
    }

    /// Loss and accuracy of the current parameters on the whole training set (in order).
    pub fn evaluate_train_set(&mut self) -> Result<(f32, f32)> {
        let (loss, accuracy, _) = self.evaluate_train_set_full()?;
        Ok((loss, accuracy))
    }

    /// Loss, accuracy and (regression) MSE/MAE/R² of the current parameters on the whole
    /// training set, in order.
    pub fn evaluate_train_set_full(&mut self) -> Result<(f32, f32, Option<RegressionMetrics>)> {
        let stats = self.train_set_stats()?;
        Ok((
            stats.loss,
            stats.accuracy,
            self.regression(&stats, &self.train),
        ))
    }

    fn train_set_stats(&mut self) -> Result<Stats> {
        let batch = self.options.batch_size.min(self.train.len());
        match &mut self.engine {
            Engine::Gpu(g) => {
                let GpuEngine { mlp, train, .. } = &mut **g;
                evaluate_gpu(mlp, train)
            }
            Engine::Fused(f) => {
                let FusedEngine { mlp, train, .. } = &mut **f;
                evaluate_gpu(mlp, train)
            }
            Engine::Cpu(mlp) => cpu_stats(mlp, &self.train, batch),
        }
    }

    /// The current flat parameters.
    pub fn params(&self) -> Result<Vec<f32>> {
        match &self.engine {
            Engine::Gpu(g) => g.mlp.params(),
            Engine::Fused(f) => f.mlp.params(),
            Engine::Cpu(mlp) => Ok(mlp.params.clone()),
        }
    }

    /// The current optimizer state.
    pub fn optimizer_state(&self) -> Result<OptimizerState<f32>> {
        match &self.engine {
            Engine::Gpu(g) => g.mlp.optimizer_state(),
            Engine::Fused(f) => f.mlp.optimizer_state(),
            Engine::Cpu(mlp) => Ok(mlp.state.clone()),
        }
    }

    /// Restores parameters, optimizer state and the epoch count (to resume a run).
    pub fn restore(
        &mut self,
        params: &[f32],
        state: &OptimizerState<f32>,
        epoch: usize,
    ) -> Result<()> {
        match &mut self.engine {
            Engine::Gpu(g) => {
                g.mlp.set_params(params)?;
                g.mlp.set_optimizer_state(state)?;
            }
            Engine::Fused(f) => {
                f.mlp.set_params(params)?;
                f.mlp.set_optimizer_state(state)?;
            }
            Engine::Cpu(mlp) => {
                if params.len() != mlp.params.len() {
                    return Err(Error::shape("parameters", mlp.params.len(), params.len()));
                }
                if state.m.len() != params.len() || state.v.len() != params.len() {
                    return Err(Error::shape(
                        "optimizer state",
                        format!("{} values per moment", params.len()),
                        format!("{} and {}", state.m.len(), state.v.len()),
                    ));
                }
                mlp.params = params.to_vec();
                mlp.state = state.clone();
            }
        }
        self.epoch = epoch;
        Ok(())
    }
}

fn check_data(
    config: &MlpConfig,
    train: &Dataset,
    test: Option<&Dataset>,
    options: &TrainOptions,
) -> Result<()> {
    config.validate()?;
    if options.batch_size == 0 {
        return Err(Error::config("--batch-size", "must be at least 1 (got 0)"));
    }
    if options.steps_per_submit == 0 {
        return Err(Error::config("steps per submit", "must be at least 1"));
    }
    for (what, d) in std::iter::once(("training set", train)).chain(test.map(|t| ("test set", t))) {
        if d.is_empty() {
            return Err(Error::InvalidData {
                what: what.into(),
                message: "it has no samples".into(),
            });
        }
        if d.n_features != config.input {
            return Err(Error::shape(
                what,
                format!("{} features (the model's input width)", config.input),
                d.n_features,
            ));
        }
        let regress = config.task == crate::config::Task::Regress;
        if regress != d.is_regression() || (regress && d.n_targets != config.output) {
            return Err(Error::shape(
                what,
                match regress {
                    true => format!("{} regression targets per sample", config.output),
                    false => "class labels (a classification model)".to_string(),
                },
                format!("{} target columns", d.n_targets),
            ));
        }
        if d.n_classes > config.output {
            return Err(Error::shape(
                what,
                format!("at most {} classes (the model's outputs)", config.output),
                d.n_classes,
            ));
        }
        if let Some((i, v)) = d.features.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::InvalidData {
                what: what.into(),
                message: format!(
                    "feature {} of sample {} is {v}; remove or impute non-finite values",
                    i % d.n_features,
                    i / d.n_features
                ),
            });
        }
    }
    Ok(())
}

/// What an epoch on the GPU needs of a model: [`GpuMlp`] and [`FusedMlp`] record the same
/// way.
trait GpuSteps {
    fn context(&self) -> &GpuContext;
    fn reset_metrics(&self, enc: &mut wgpu::CommandEncoder);
    fn train_step(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        data: &GpuDataset,
        offset: usize,
        batch: usize,
    ) -> Result<()>;
    fn evaluation(&mut self, enc: &mut wgpu::CommandEncoder, data: &GpuDataset) -> Result<()>;
    fn snapshot(&self, enc: &mut wgpu::CommandEncoder);
    fn read_snapshot(&self) -> Result<(TrainState, TrainState)>;
    fn clear_divergence(&self);
}

macro_rules! gpu_steps {
    ($ty:ty) => {
        impl GpuSteps for $ty {
            fn context(&self) -> &GpuContext {
                <$ty>::context(self)
            }
            fn reset_metrics(&self, enc: &mut wgpu::CommandEncoder) {
                self.encode_reset_metrics(enc)
            }
            fn train_step(
                &mut self,
                enc: &mut wgpu::CommandEncoder,
                data: &GpuDataset,
                offset: usize,
                batch: usize,
            ) -> Result<()> {
                self.encode_train_step(enc, data, offset, batch)
            }
            fn evaluation(
                &mut self,
                enc: &mut wgpu::CommandEncoder,
                data: &GpuDataset,
            ) -> Result<()> {
                self.encode_evaluation(enc, data)
            }
            fn snapshot(&self, enc: &mut wgpu::CommandEncoder) {
                self.encode_snapshot_states(enc)
            }
            fn read_snapshot(&self) -> Result<(TrainState, TrainState)> {
                <$ty>::read_snapshot(self)
            }
            fn clear_divergence(&self) {
                <$ty>::clear_divergence(self)
            }
        }
    };
}
gpu_steps!(GpuMlp<'_>);
gpu_steps!(FusedMlp<'_>);

/// The metrics of a GPU model on all of `data`, in order.
fn evaluate_gpu(mlp: &mut impl GpuSteps, data: &GpuDataset) -> Result<Stats> {
    let mut enc = mlp
        .context()
        .device
        .create_command_encoder(&Default::default());
    mlp.reset_metrics(&mut enc);
    mlp.evaluation(&mut enc, data)?;
    mlp.snapshot(&mut enc);
    mlp.context().queue.submit([enc.finish()]);
    let (_, ev) = mlp.read_snapshot()?;
    Ok(Stats::of_state(&ev))
}

#[allow(clippy::too_many_arguments)]
fn gpu_epoch(
    mlp: &mut impl GpuSteps,
    train: &GpuDataset,
    test: Option<&GpuDataset>,
    perm: &[u32],
    batch: usize,
    options: &TrainOptions,
    epoch: usize,
    stop: Option<&AtomicBool>,
    mut progress: Option<&mut (dyn FnMut(usize, usize) + '_)>,
) -> Result<(Stats, Option<Stats>)> {
    let mut in_flight: Option<(wgpu::SubmissionIndex, usize)> = None;
    train.set_permutation(mlp.context(), perm)?;
    let n = train.len;
    let steps: Vec<(usize, usize)> = (0..n)
        .step_by(batch)
        .map(|o| (o, batch.min(n - o)))
        .collect();
    let mut enc = mlp
        .context()
        .device
        .create_command_encoder(&Default::default());
    mlp.reset_metrics(&mut enc);
    for (i, &(offset, b)) in steps.iter().enumerate() {
        mlp.train_step(&mut enc, train, offset, b)?;
        if (i + 1) % options.steps_per_submit == 0 && i + 1 < steps.len() {
            let ctx = mlp.context();
            let full = std::mem::replace(
                &mut enc,
                ctx.device.create_command_encoder(&Default::default()),
            );
            let index = ctx.queue.submit([full.finish()]);
            if let Some(report) = progress.as_deref_mut() {
                if let Some((previous, done)) = in_flight.take() {
                    // Faults surface at the epoch's readback; here only the count matters.
                    let _ = ctx.device.poll(wgpu::PollType::Wait {
                        submission_index: Some(previous),
                        timeout: Some(ctx.wait_timeout),
                    });
                    report(done, steps.len());
                }
                in_flight = Some((index, i + 1));
            }
            if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                return Err(interrupted(epoch, i + 1));
            }
        }
    }
    if let Some(test) = test {
        mlp.evaluation(&mut enc, test)?;
    }
    mlp.snapshot(&mut enc);
    let ctx = mlp.context();
    ctx.queue.submit([enc.finish()]);
    let (tr, ev) = mlp.read_snapshot()?;
    ctx.check("training epoch")?;
    if let Some(report) = progress {
        report(steps.len(), steps.len());
    }
    if tr.diverged != 0 {
        mlp.clear_divergence();
        return Err(Error::Diverged {
            epoch,
            step: tr.bad_step as u64,
            loss: tr.bad_loss,
        });
    }
    let test_stats = test.map(|_| Stats::of_state(&ev));
    Ok((Stats::of_state(&tr), test_stats))
}

/// The error of an epoch stopped by the stop flag after `steps` of its steps.
fn interrupted(epoch: usize, steps: usize) -> Error {
    Error::Interrupted {
        epoch,
        step: steps as u64,
        completed: epoch - 1,
    }
}

#[allow(clippy::too_many_arguments)]
fn cpu_epoch(
    mlp: &mut CpuMlp<f32>,
    train: &Dataset,
    test: Option<&Dataset>,
    perm: &[u32],
    batch: usize,
    epoch: usize,
    stop: Option<&AtomicBool>,
    mut progress: Option<&mut (dyn FnMut(usize, usize) + '_)>,
) -> Result<(Stats, Option<Stats>)> {
    let d = train.n_features;
    let total = perm.len().div_ceil(batch.max(1));
    let mut sums = Sums::default();
    for (i, chunk) in perm.chunks(batch).enumerate() {
        if i > 0 && stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Err(interrupted(epoch, i));
        }
        let mut x = Vec::with_capacity(chunk.len() * d);
        let mut y = Vec::with_capacity(chunk.len());
        let mut t = Vec::with_capacity(chunk.len() * train.n_targets);
        for &i in chunk {
            x.extend_from_slice(train.row(i as usize));
            y.push(train.labels[i as usize]);
            if train.is_regression() {
                t.extend_from_slice(train.target_row(i as usize));
            }
        }
        let target = if train.is_regression() {
            Target::Values(&t)
        } else {
            Target::Labels(&y)
        };
        let r: BatchLoss<f32> =
            mlp.train_step_for(&x, target, chunk.len())
                .map_err(|e| match e {
                    Error::Diverged { step, loss, .. } => Error::Diverged { epoch, step, loss },
                    other => other,
                })?;
        sums.add(&r, chunk.len());
        if let Some(report) = progress.as_deref_mut() {
            report(i + 1, total);
        }
    }
    let test_stats = test.map(|t| cpu_stats(mlp, t, batch)).transpose()?;
    Ok((sums.stats(train.len()), test_stats))
}

/// Running sums of batch metrics (f64, like the reference's own accumulation).
#[derive(Default)]
struct Sums {
    loss: f64,
    correct: usize,
    sq_err: f64,
    abs_err: f64,
}

impl Sums {
    fn add(&mut self, r: &BatchLoss<f32>, rows: usize) {
        self.loss += r.loss as f64 * rows as f64;
        self.correct += r.correct;
        self.sq_err += f64::from(r.sq_err);
        self.abs_err += f64::from(r.abs_err);
    }

    fn stats(&self, n: usize) -> Stats {
        let n = n.max(1) as f64;
        Stats {
            loss: (self.loss / n) as f32,
            accuracy: (self.correct as f64 / n) as f32,
            sq_err: self.sq_err,
            abs_err: self.abs_err,
        }
    }
}

/// The metrics of `mlp` on all of `data`, in batches.
fn cpu_stats(mlp: &CpuMlp<f32>, data: &Dataset, batch: usize) -> Result<Stats> {
    let mut sums = Sums::default();
    let d = data.n_features;
    let k = data.n_targets;
    for start in (0..data.len()).step_by(batch.max(1)) {
        let b = batch.min(data.len() - start);
        let x = &data.features[start * d..(start + b) * d];
        let target = if data.is_regression() {
            Target::Values(&data.targets[start * k..(start + b) * k])
        } else {
            Target::Labels(&data.labels[start..start + b])
        };
        let logits = mlp.forward(x, b)?;
        let (r, _) = mlp.batch_loss(&logits, target, b, false);
        sums.add(&r, b);
    }
    Ok(sums.stats(data.len()))
}

/// Mean loss and accuracy of `mlp` on `data`, in batches.
pub fn evaluate_cpu(mlp: &CpuMlp<f32>, data: &Dataset, batch: usize) -> Result<(f32, f32)> {
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    let d = data.n_features;
    for start in (0..data.len()).step_by(batch.max(1)) {
        let b = batch.min(data.len() - start);
        let x = &data.features[start * d..(start + b) * d];
        let labels = &data.labels[start..start + b];
        let logits = mlp.forward(x, b)?;
        let (r, _) = crate::reference::loss_and_grad(mlp.config.loss, &logits, labels, b, false);
        loss_sum += r.loss as f64 * b as f64;
        correct += r.correct;
    }
    let n = data.len() as f64;
    Ok(((loss_sum / n) as f32, (correct as f64 / n) as f32))
}
