//! `Trainer`: epochs of shuffled mini-batches on the GPU (or the CPU reference), with
//! evaluation and metrics read back once per epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::config::MlpConfig;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::fused::{FusedMlp, KernelChoice, KernelDecision};
use crate::gpu::{GpuContext, GpuDataset, GpuMlp};
use crate::model::sealed::{Engine, GpuSteps};
use crate::model::{Device, Model};
use crate::optim::{OptimizerConfig, OptimizerState};
use crate::reference::{BatchLoss, CpuMlp, Target};
use crate::rng::Rng;
use crate::schedule::LrSchedule;

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

/// A dataset the trainer reads: shared with the caller (never copied), and for a GPU model
/// also resident on its device.
struct TrainData {
    host: Arc<Dataset>,
    gpu: Option<GpuDataset>,
}

impl TrainData {
    fn new(host: Arc<Dataset>, ctx: Option<&GpuContext>) -> Result<Self> {
        let gpu = ctx.map(|c| GpuDataset::upload(c, &host)).transpose()?;
        Ok(TrainData { host, gpu })
    }
}

/// What [`Trainer::fit`] reports while it runs.
#[derive(Clone, Copy)]
pub enum Event<'a> {
    /// Steps of the running epoch are done: on the GPU after each submit of
    /// [`TrainOptions::steps_per_submit`] steps (the count is of steps finished, not queued),
    /// on the CPU after every step.
    Progress {
        /// The running epoch (1-based).
        epoch: usize,
        /// Steps of it done.
        done: usize,
        /// Steps in the epoch.
        steps: usize,
    },
    /// An epoch finished and was evaluated: the moment to log, keep the best parameters
    /// (`model.params()`), or save a checkpoint (with `model.optimizer_state()`).
    Epoch {
        /// Its metrics.
        metrics: &'a EpochMetrics,
        /// The model after the epoch.
        model: &'a dyn Model,
    },
}

impl std::fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Progress { epoch, done, steps } => f
                .debug_struct("Progress")
                .field("epoch", epoch)
                .field("done", done)
                .field("steps", steps)
                .finish(),
            Event::Epoch { metrics, .. } => f.debug_tuple("Epoch").field(metrics).finish(),
        }
    }
}

/// What the host program answers an [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop: after an [`Event::Epoch`], `fit` returns the epochs so far; after an
    /// [`Event::Progress`], the running epoch stops after the work already submitted and
    /// `fit` returns [`Error::Interrupted`] (the parameters are those after the last finished
    /// step).
    Stop,
}

/// Trains a [`Model`] epoch by epoch on shuffled mini-batches, with the data resident on the
/// model's device, and evaluates it. `'static` and `Send`: it owns its model and shares the
/// datasets.
///
/// ```
/// use std::sync::Arc;
/// use wgmlp::{Control, Device, MlpConfig, OptimizerConfig, Trainer, data::synthetic};
///
/// # fn main() -> wgmlp::Result<()> {
/// let data = Arc::new(synthetic::spirals(100, 3, 0.2, 1));
/// let config = MlpConfig::new(2, &[32], 3).with_seed(1);
/// let mut trainer = Trainer::builder(Device::Cpu, &config, OptimizerConfig::adam(0.01))
///     .batch_size(32)
///     .build(data)?;
/// let history = trainer.fit(5, |_event| Ok(Control::Continue))?;
/// assert_eq!(history.len(), 5);
/// # Ok(())
/// # }
/// ```
pub struct Trainer {
    model: Box<dyn Model>,
    train: TrainData,
    test: Option<TrainData>,
    options: TrainOptions,
    seed: u64,
    epoch: usize,
    stop: Option<Arc<AtomicBool>>,
    /// Per-target scale of the regression metrics (see [`Trainer::set_target_scale`]).
    target_scale: Vec<f32>,
    /// The learning rate per epoch, from the optimizer's rate at construction.
    schedule: Option<(LrSchedule, f32)>,
    /// The GPU path and why it was chosen (`None` for a model given by the caller and on the
    /// CPU).
    kernel: Option<KernelDecision>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("model", &self.model.config().describe())
            .field("device", &self.model.device_name())
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Trainer`]: the device, the model and the options (see [`Trainer::builder`]).
#[derive(Clone, Debug)]
pub struct TrainerBuilder {
    device: Device,
    config: MlpConfig,
    optimizer: OptimizerConfig,
    options: TrainOptions,
    kernel: KernelChoice,
    params: Option<Vec<f32>>,
    test: Option<Arc<Dataset>>,
    schedule: Option<LrSchedule>,
}

impl TrainerBuilder {
    /// Samples per optimizer step (default 256; the last batch of an epoch may be smaller).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.options.batch_size = batch_size;
        self
    }

    /// Training steps recorded into one command encoder and submitted together (default
    /// 64; GPU only).
    pub fn steps_per_submit(mut self, steps: usize) -> Self {
        self.options.steps_per_submit = steps;
        self
    }

    /// Batch size and steps per submit at once.
    pub fn options(mut self, options: TrainOptions) -> Self {
        self.options = options;
        self
    }

    /// Which GPU path trains the model (default [`KernelChoice::Layered`]; `Auto` times the
    /// fused kernel against it where it fits and keeps the faster).
    pub fn kernel(mut self, kernel: KernelChoice) -> Self {
        self.kernel = kernel;
        self
    }

    /// Starts from these flat parameters instead of the config's seeded initialisation.
    pub fn params(mut self, params: Vec<f32>) -> Self {
        self.params = Some(params);
        self
    }

    /// A held-out set, evaluated after every epoch (`test_loss`, `test_accuracy`).
    pub fn test(mut self, test: impl Into<Arc<Dataset>>) -> Self {
        self.test = Some(test.into());
        self
    }

    /// A learning-rate schedule: epoch `e` runs at `schedule.lr(optimizer.lr, e)`.
    pub fn lr_schedule(mut self, schedule: LrSchedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// Checks the data against the model, makes the model and uploads the data once.
    pub fn build(self, train: impl Into<Arc<Dataset>>) -> Result<Trainer> {
        let train = train.into();
        let TrainerBuilder {
            device,
            config,
            optimizer,
            options,
            kernel,
            params,
            test,
            schedule,
        } = self;
        check_data(&config, &train, test.as_deref(), &options)?;
        if let Some(s) = &schedule {
            s.validate()?;
        }
        let params = match params {
            Some(p) => p,
            None => config.init_params(),
        };
        let batch = options.batch_size.min(train.len());
        let (model, decision): (Box<dyn Model>, _) = match &device {
            Device::Cpu => (
                device.model_from_params(&config, optimizer, batch, &params)?,
                None,
            ),
            Device::Gpu(ctx) => {
                let decision = crate::gpu::fused::decide(ctx, &config, optimizer, batch, kernel)?;
                if let Some(note) = &decision.note {
                    log::info!("{note}");
                }
                let model: Box<dyn Model> = match decision.fused {
                    Some(_) => Box::new(FusedMlp::from_params(
                        ctx, &config, optimizer, batch, &params,
                    )?),
                    None => Box::new(GpuMlp::from_params(
                        ctx, &config, optimizer, batch, &params,
                    )?),
                };
                (model, Some(decision))
            }
        };
        let mut trainer = Trainer::assemble(model, train, test, options, device.context())?;
        trainer.kernel = decision;
        trainer.schedule = schedule.map(|s| (s, optimizer.lr));
        Ok(trainer)
    }
}

impl Trainer {
    /// A builder for a trainer of a new model of `config` on `device`.
    pub fn builder(
        device: Device,
        config: &MlpConfig,
        optimizer: OptimizerConfig,
    ) -> TrainerBuilder {
        TrainerBuilder {
            device,
            config: config.clone(),
            optimizer,
            options: TrainOptions::default(),
            kernel: KernelChoice::Layered,
            params: None,
            test: None,
            schedule: None,
        }
    }

    /// A trainer of a model the caller made (any [`Model`]: its parameters and optimizer
    /// state are kept). A GPU model's batches must hold `options.batch_size` rows (or the
    /// whole training set, if smaller).
    pub fn new(
        model: Box<dyn Model>,
        train: impl Into<Arc<Dataset>>,
        test: Option<Arc<Dataset>>,
        options: TrainOptions,
    ) -> Result<Trainer> {
        let train = train.into();
        check_data(model.config(), &train, test.as_deref(), &options)?;
        let batch = options.batch_size.min(train.len());
        if batch > model.max_batch() {
            return Err(Error::shape(
                "batch size",
                format!(
                    "at most {} rows (the model's largest batch)",
                    model.max_batch()
                ),
                batch,
            ));
        }
        let mut model = model;
        let ctx = match model.engine() {
            Engine::Gpu(g) => Some(g.context().clone()),
            Engine::Cpu(_) => None,
        };
        Trainer::assemble(model, train, test, options, ctx.as_ref())
    }

    fn assemble(
        model: Box<dyn Model>,
        train: Arc<Dataset>,
        test: Option<Arc<Dataset>>,
        options: TrainOptions,
        ctx: Option<&GpuContext>,
    ) -> Result<Trainer> {
        let output = model.config().output;
        Ok(Trainer {
            seed: model.config().seed,
            train: TrainData::new(train, ctx)?,
            test: test.map(|t| TrainData::new(t, ctx)).transpose()?,
            model,
            options,
            epoch: 0,
            stop: None,
            target_scale: vec![1.0; output],
            schedule: None,
            kernel: None,
        })
    }

    /// The model being trained.
    pub fn model(&self) -> &dyn Model {
        &*self.model
    }

    /// The model being trained, to change (its learning rate, its parameters).
    pub fn model_mut(&mut self) -> &mut dyn Model {
        &mut *self.model
    }

    /// The trained model, for inference or further training elsewhere.
    pub fn into_model(self) -> Box<dyn Model> {
        self.model
    }

    /// Epochs completed.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// The GPU path training this model and why it was chosen (`None` on the CPU and for a
    /// model given to [`Trainer::new`]).
    pub fn kernel(&self) -> Option<&KernelDecision> {
        self.kernel.as_ref()
    }

    /// Sets the learning rate of the following steps (without a schedule; a schedule set
    /// with [`TrainerBuilder::lr_schedule`] sets it again before each epoch).
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        self.model.set_lr(lr)
    }

    /// For standardised regression targets: the std of each target, so MSE, MAE and R² are
    /// reported in the targets' own units (the default scale is 1).
    pub fn set_target_scale(&mut self, scale: &[f32]) -> Result<()> {
        self.model.set_target_scale(scale)?;
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
        self.model.device_name()
    }

    /// Number of optimizer steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        let n = self.train.host.len();
        n.div_ceil(self.options.batch_size.min(n))
    }

    /// Trains until `epochs` epochs are done (counting those done before, so a resumed
    /// trainer continues), telling `on_event` of progress within each epoch and of each
    /// finished epoch; returns the metrics of the epochs it ran. `on_event` stops training by
    /// answering [`Control::Stop`]; an error it returns ends training with that error.
    pub fn fit(
        &mut self,
        epochs: usize,
        mut on_event: impl FnMut(Event<'_>) -> Result<Control>,
    ) -> Result<Vec<EpochMetrics>> {
        let mut history = Vec::new();
        while self.epoch < epochs {
            if self
                .stop
                .as_deref()
                .is_some_and(|s| s.load(Ordering::SeqCst))
            {
                return Err(interrupted(self.epoch + 1, 0));
            }
            let mut failed = None;
            let epoch = self.epoch + 1;
            let mut progress = |done: usize, steps: usize| {
                let event = Event::Progress { epoch, done, steps };
                match on_event(event) {
                    Ok(c) => c,
                    Err(e) => {
                        failed = Some(e);
                        Control::Stop
                    }
                }
            };
            let result = self.epoch_with(Some(&mut progress));
            if let Some(e) = failed {
                return Err(e);
            }
            let m = result?;
            let control = on_event(Event::Epoch {
                metrics: &m,
                model: &*self.model,
            })?;
            history.push(m);
            if control == Control::Stop {
                break;
            }
        }
        Ok(history)
    }

    /// Trains one epoch and evaluates; returns its metrics.
    pub fn run_epoch(&mut self) -> Result<EpochMetrics> {
        self.epoch_with(None)
    }

    /// One epoch; with a `progress` listener the GPU path waits for each submit before the
    /// next (one in flight) so the listener hears of finished steps, without one it queues.
    fn epoch_with(
        &mut self,
        listener: Option<&mut dyn FnMut(usize, usize) -> Control>,
    ) -> Result<EpochMetrics> {
        let epoch = self.epoch + 1;
        if let Some((schedule, base)) = self.schedule {
            self.model.set_lr(schedule.lr(base, epoch))?;
        }
        let start = Instant::now();
        let n = self.train.host.len();
        let perm = epoch_permutation(self.seed, epoch, n);
        let batch = self.options.batch_size.min(n);
        let flag = self.stop.clone();
        let stop = move || flag.as_deref().is_some_and(|s| s.load(Ordering::SeqCst));
        let listening = listener.is_some();
        let mut listener = listener;
        let mut progress = |done: usize, steps: usize| match listener.as_deref_mut() {
            Some(f) => f(done, steps) == Control::Continue,
            None => true,
        };
        let (train_stats, test_stats) = match self.model.engine() {
            Engine::Gpu(mlp) => gpu_epoch(
                mlp,
                gpu_data(&self.train)?,
                self.test.as_ref().map(gpu_data).transpose()?,
                &perm,
                batch,
                &self.options,
                epoch,
                listening.then_some(&mut progress as &mut dyn FnMut(usize, usize) -> bool),
                &stop,
            )?,
            Engine::Cpu(mlp) => cpu_epoch(
                mlp,
                &self.train.host,
                self.test.as_ref().map(|t| &*t.host),
                &perm,
                batch,
                epoch,
                &mut progress,
                &stop,
            )?,
        };
        self.epoch = epoch;
        let seconds = start.elapsed().as_secs_f64();
        let train_regression = self.regression(&train_stats, &self.train.host);
        let test_regression = test_stats
            .zip(self.test.as_ref())
            .and_then(|(s, t)| self.regression(&s, &t.host));
        Ok(EpochMetrics {
            epoch,
            train_loss: train_stats.loss,
            train_accuracy: train_stats.accuracy,
            test_loss: test_stats.map(|s| s.loss),
            test_accuracy: test_stats.map(|s| s.accuracy),
            train_regression,
            test_regression,
            seconds,
            samples_per_second: n as f64 / seconds.max(1e-9),
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
            self.regression(&stats, &self.train.host),
        ))
    }

    fn train_set_stats(&mut self) -> Result<Stats> {
        let batch = self.options.batch_size.min(self.train.host.len());
        match self.model.engine() {
            Engine::Gpu(mlp) => evaluate_gpu(mlp, gpu_data(&self.train)?),
            Engine::Cpu(mlp) => cpu_stats(mlp, &self.train.host, batch),
        }
    }

    /// The current flat parameters.
    pub fn params(&self) -> Result<Vec<f32>> {
        self.model.params()
    }

    /// The current optimizer state.
    pub fn optimizer_state(&self) -> Result<OptimizerState<f32>> {
        self.model.optimizer_state()
    }

    /// Restores parameters, optimizer state and the epoch count (to resume a run).
    pub fn restore(
        &mut self,
        params: &[f32],
        state: &OptimizerState<f32>,
        epoch: usize,
    ) -> Result<()> {
        self.model.set_params(params)?;
        self.model.set_optimizer_state(state)?;
        self.epoch = epoch;
        Ok(())
    }
}

/// The resident copy of a dataset (a GPU model's trainer always has one).
fn gpu_data(d: &TrainData) -> Result<&GpuDataset> {
    d.gpu
        .as_ref()
        .ok_or_else(|| Error::config("dataset", "not resident on the model's GPU"))
}

fn check_data(
    config: &MlpConfig,
    train: &Dataset,
    test: Option<&Dataset>,
    options: &TrainOptions,
) -> Result<()> {
    config.validate()?;
    if options.batch_size == 0 {
        return Err(Error::config("batch_size", "must be at least 1 (got 0)"));
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

/// The metrics of a GPU model on all of `data`, in order.
fn evaluate_gpu(mlp: &mut dyn GpuSteps, data: &GpuDataset) -> Result<Stats> {
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
    mlp: &mut dyn GpuSteps,
    train: &GpuDataset,
    test: Option<&GpuDataset>,
    perm: &[u32],
    batch: usize,
    options: &TrainOptions,
    epoch: usize,
    mut progress: Option<&mut dyn FnMut(usize, usize) -> bool>,
    stop: &dyn Fn() -> bool,
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
            let mut go_on = true;
            if let Some(report) = progress.as_deref_mut() {
                if let Some((previous, done)) = in_flight.take() {
                    // Faults surface at the epoch's readback; here only the count matters.
                    let _ = ctx.device.poll(wgpu::PollType::Wait {
                        submission_index: Some(previous),
                        timeout: Some(ctx.wait_timeout),
                    });
                    go_on = report(done, steps.len());
                }
                in_flight = Some((index, i + 1));
            }
            if !go_on || stop() {
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
    progress: &mut dyn FnMut(usize, usize) -> bool,
    stop: &dyn Fn() -> bool,
) -> Result<(Stats, Option<Stats>)> {
    let d = train.n_features;
    let total = perm.len().div_ceil(batch.max(1));
    let mut sums = Sums::default();
    for (i, chunk) in perm.chunks(batch).enumerate() {
        if i > 0 && stop() {
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
        let r: BatchLoss<f32> = mlp
            .train_step(&x, target, chunk.len())
            .map_err(|e| match e {
                Error::Diverged { step, loss, .. } => Error::Diverged { epoch, step, loss },
                other => other,
            })?;
        sums.add(&r, chunk.len());
        if !progress(i + 1, total) && i + 1 < total {
            return Err(interrupted(epoch, i + 1));
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
