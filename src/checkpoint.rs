//! Checkpoints: safetensors files laid out like PyTorch's `nn.Sequential(Linear, act, Linear, …)`.
//!
//! Layer `l` is the Sequential's module `2l`: tensors `{2l}.weight` (`[fan_out, fan_in]`, the
//! transpose of our row-major `[fan_in × fan_out]` W) and `{2l}.bias` (`[fan_out]`), F32
//! little-endian, so `safetensors.numpy.load_file` or `torch.nn.Sequential.load_state_dict`
//! reads them unchanged. With `learn_prelu` the learned slope α of a pReLU layer `l` is the
//! tensor `{2l+1}.weight` of shape `[1]`, as PyTorch's `nn.PReLU()` at that index stores it
//! (metadata `learn_prelu` = `true`; files without the key have fixed slopes).
//! The `__metadata__` strings record the architecture (`format`,
//! `version`, `widths`, `activations`, `loss`, `init`, `seed`, `normalization`) and, for
//! training checkpoints, the optimizer (`epoch`, `optimizer`, `lr`, …, `optimizer_step`, with
//! flat, untransposed tensors `optimizer.m` / `optimizer.v`) and an optional `metrics` JSON.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;

use safetensors::tensor::{Metadata, TensorView};
use safetensors::{Dtype, SafeTensorError};

use crate::config::MlpConfig;
use crate::data::Normalization;
use crate::error::{Error, Result};
use crate::optim::{OptimizerConfig, OptimizerKind, OptimizerState};

/// The `format` metadata value of every wgmlp checkpoint.
pub const FORMAT: &str = "wgmlp";
/// The checkpoint layout version this code writes and reads.
pub const VERSION: &str = "1";

const RESAVE: &str = "re-save the checkpoint with wgmlp (or copy it again if it was transferred)";

/// What a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Architecture, loss, initialisation and seed.
    pub config: MlpConfig,
    /// Parameters in our flat layout (see [`MlpConfig::layers`]).
    pub params: Vec<f32>,
    /// Input standardisation fitted on the training set, if any.
    pub normalization: Option<Normalization>,
    /// Regression target standardisation fitted on the training set (the model predicts
    /// standardised targets; `predict` undoes it), if any.
    pub target_normalization: Option<Normalization>,
    /// What raw inputs are divided by before anything else (255 for a model trained on u8
    /// IDX images, which the IDX reader scales to [0, 1]); metadata `input_divisor`.
    pub input_divisor: Option<f32>,
    /// Names of the classes (index = class) when the training labels were strings; else
    /// empty. Metadata `class_names`, a JSON array of strings.
    pub class_names: Vec<String>,
    /// Optimizer state, present when saved for resuming.
    pub training: Option<TrainingState>,
    /// Early stopping's progress, in training checkpoints of runs that use it.
    pub early_stopping: Option<EarlyStopState>,
    /// The learning-rate schedule of the run (metadata `lr_schedule`, `warmup`,
    /// `schedule_epochs`); `None` for a constant rate.
    pub lr_schedule: Option<crate::schedule::LrSchedule>,
}

impl Checkpoint {
    /// A checkpoint of `params` with no normalization and no training state.
    pub fn new(config: MlpConfig, params: Vec<f32>) -> Self {
        let (normalization, training) = (None, None);
        Checkpoint {
            config,
            params,
            normalization,
            target_normalization: None,
            input_divisor: None,
            class_names: Vec::new(),
            training,
            early_stopping: None,
            lr_schedule: None,
        }
    }

    /// A checkpoint of a model's architecture and current parameters (read back from its
    /// device); with `epoch`, also its optimizer state, so training can resume from it.
    pub fn of_model(model: &dyn crate::Model, epoch: Option<usize>) -> Result<Self> {
        let mut ckpt = Checkpoint::new(model.config().clone(), model.params()?);
        if let Some(epoch) = epoch {
            ckpt.training = Some(TrainingState {
                epoch,
                optimizer: *model.optimizer(),
                state: model.optimizer_state()?,
            });
        }
        Ok(ckpt)
    }
}

/// Early stopping's progress, kept in training checkpoints so that a resumed run stops
/// where an uninterrupted one would (metadata `early_stopping`, a JSON object, and the
/// tensor `early_stopping.best_params`, flat like the optimizer moments).
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStopState {
    /// `val_loss` or `val_accuracy`.
    pub monitor: String,
    /// Epochs without improvement that stop training.
    pub patience: usize,
    /// The epoch with the best monitored value so far (0: none yet).
    pub best_epoch: usize,
    /// That value.
    pub best_value: f32,
    /// Epochs since then.
    pub wait: usize,
    /// The parameters after the best epoch (flat layout).
    pub best_params: Vec<f32>,
}

/// The `early_stopping` metadata: an [`EarlyStopState`] without its parameters, as JSON
/// (keys in alphabetical order, as written since the key exists). The value is text so that
/// the f32 reads back exactly.
#[derive(serde::Serialize, serde::Deserialize)]
struct EarlyStopMetadata {
    best_epoch: usize,
    best_value: String,
    monitor: String,
    patience: usize,
    wait: usize,
}

/// Everything needed to resume training where a checkpoint left off.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingState {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer and hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Step count and moments (`m`, `v` each empty or `n_params` long, flat layout).
    pub state: OptimizerState<f32>,
}

/// Writes atomically (temporary file in the same directory, fsync, rename); errors name the path.
pub fn save(path: &Path, ckpt: &Checkpoint) -> Result<()> {
    save_with_metrics(path, ckpt, None)
}

/// Like [`save`], also storing `metrics` (which must be valid JSON) under the `metrics` key.
pub fn save_with_metrics(path: &Path, ckpt: &Checkpoint, metrics: Option<&str>) -> Result<()> {
    let bytes = serialize(ckpt, metrics)?;
    crate::fsutil::write_atomic(path, &bytes)
}

/// Reads and validates a checkpoint; every problem is an [`Error::Data`] naming path and position.
pub fn load(path: &Path) -> Result<Checkpoint> {
    load_with_metrics(path).map(|(ckpt, _)| ckpt)
}

/// Like [`load`], also returning the `metrics` JSON string if the checkpoint has one.
pub fn load_with_metrics(path: &Path) -> Result<(Checkpoint, Option<String>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    parse(path, &bytes)
}

/// Like [`load_with_metrics`], from the bytes of a file; `path` names it in errors.
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<(Checkpoint, Option<String>)> {
    parse(path, bytes)
}

/// Errors unless `ckpt` has the widths and activations of `expected` (for `--resume` with flags).
pub fn check_compatible(path: &Path, ckpt: &Checkpoint, expected: &MlpConfig) -> Result<()> {
    let position = if ckpt.config.widths() != expected.widths() {
        "metadata widths"
    } else if ckpt.config.activations != expected.activations {
        "metadata activations"
    } else if ckpt.config.learn_prelu != expected.learn_prelu {
        "metadata learn_prelu"
    } else {
        return Ok(());
    };
    Err(Error::data(
        path,
        position,
        format!(
            "checkpoint is {} but the command asks for {}; drop the architecture flags \
             (--hidden, --activation) to continue with the checkpoint's, or train a new model without --resume",
            architecture(&ckpt.config),
            architecture(expected)
        ),
    ))
}

/// Our flat parameters → PyTorch-layout `(name, shape, data)`; panics unless `params.len() == config.n_params()`.
pub fn to_torch_tensors(config: &MlpConfig, params: &[f32]) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    assert_eq!(params.len(), config.n_params(), "parameter count");
    let mut out = Vec::new();
    for (l, layer) in config.layers().iter().enumerate() {
        let (fan_in, fan_out) = (layer.fan_in, layer.fan_out);
        let w = &params[layer.w_offset..layer.b_offset];
        let mut t = vec![0.0f32; w.len()];
        for (i, row) in w.chunks_exact(fan_out).enumerate() {
            for (j, &x) in row.iter().enumerate() {
                t[j * fan_in + i] = x;
            }
        }
        out.push((format!("{}.weight", 2 * l), vec![fan_out, fan_in], t));
        let b = params[layer.b_offset..layer.b_offset + fan_out].to_vec();
        out.push((format!("{}.bias", 2 * l), vec![fan_out], b));
        if let Some(a) = layer.alpha_offset {
            out.push((format!("{}.weight", 2 * l + 1), vec![1], vec![params[a]]));
        }
    }
    out
}

/// PyTorch-layout tensors (extra ones ignored) → our flat parameters; the inverse of [`to_torch_tensors`].
pub fn from_torch_tensors(
    config: &MlpConfig,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
) -> Result<Vec<f32>> {
    let mut params = vec![0.0f32; config.n_params()];
    for (l, layer) in config.layers().iter().enumerate() {
        let (fan_in, fan_out) = (layer.fan_in, layer.fan_out);
        let mut wanted = vec![
            (2 * l, "weight", vec![fan_out, fan_in]),
            (2 * l, "bias", vec![fan_out]),
        ];
        if layer.alpha_offset.is_some() {
            wanted.push((2 * l + 1, "alpha", vec![1]));
        }
        for (index, suffix, shape) in wanted {
            let name = match suffix {
                "alpha" => format!("{index}.weight"),
                _ => format!("{index}.{suffix}"),
            };
            let op = format!("tensor {name}");
            let (_, got, data) = tensors
                .iter()
                .find(|(n, _, _)| *n == name)
                .ok_or_else(|| Error::shape(&op, format!("{shape:?}"), "no such tensor"))?;
            if *got != shape || data.len() != shape.iter().product::<usize>() {
                let found = format!("{got:?} with {} values", data.len());
                return Err(Error::shape(&op, format!("{shape:?}"), found));
            }
            if suffix == "bias" {
                params[layer.b_offset..layer.b_offset + fan_out].copy_from_slice(data);
                continue;
            }
            if let ("alpha", Some(a)) = (suffix, layer.alpha_offset) {
                params[a] = data[0];
                continue;
            }
            let w = &mut params[layer.w_offset..layer.b_offset];
            for (j, row) in data.chunks_exact(fan_in).enumerate() {
                for (i, &x) in row.iter().enumerate() {
                    w[i * fan_out + j] = x;
                }
            }
        }
    }
    Ok(params)
}

/// `784-256-10 relu`, `3-2-2 prelu:0.1,swish:2`, `4-3 linear`.
fn architecture(c: &MlpConfig) -> String {
    let acts = match c.activations.first() {
        None => "linear".to_string(),
        Some(a) if c.activations.iter().all(|b| b == a) => a.to_string(),
        Some(_) => join(&c.activations, ","),
    };
    let learned = if c.learn_prelu { " learn_prelu" } else { "" };
    format!("{} {acts}{learned}", join(&c.widths(), "-"))
}

fn join<T: ToString>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `[j, i]` for element `k` of a row-major tensor of `shape`.
fn unravel(mut k: usize, shape: &[usize]) -> String {
    let mut idx = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        idx[d] = k % n.max(1);
        k /= n.max(1);
    }
    format!("{idx:?}")
}

/// The first non-finite value as `"element [j, i] is NaN"`.
fn non_finite(data: &[f32], shape: &[usize]) -> Option<String> {
    let k = data.iter().position(|x| !x.is_finite())?;
    Some(format!("element {} is {}", unravel(k, shape), data[k]))
}

/// Checks `ckpt` (and `metrics`) and serialises it to safetensors bytes.
fn serialize(ckpt: &Checkpoint, metrics: Option<&str>) -> Result<Vec<u8>> {
    let c = &ckpt.config;
    c.validate()?;
    let n = c.n_params();
    if ckpt.params.len() != n {
        let expected = format!("{n} parameters for {}", architecture(c));
        let got = format!("{} parameters", ckpt.params.len());
        return Err(Error::shape("checkpoint save", expected, got));
    }
    let mut tensors = to_torch_tensors(c, &ckpt.params);
    let mut meta: HashMap<String, String> = [
        ("format", FORMAT.to_string()),
        ("version", VERSION.to_string()),
        ("widths", join(&c.widths(), ",")),
        ("activations", join(&c.activations, ",")),
        ("task", c.task.to_string()),
        ("loss", c.loss.to_string()),
        ("init", c.init.to_string()),
        ("seed", c.seed.to_string()),
        ("normalization", "none".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if c.learn_prelu {
        meta.insert("learn_prelu".into(), "true".into());
    }
    if c.dropout > 0.0 {
        meta.insert("dropout".into(), c.dropout.to_string());
    }
    if let Some(norm) = &ckpt.normalization {
        if norm.mean.len() != c.input || norm.std.len() != c.input {
            let got = format!("{} means and {} stds", norm.mean.len(), norm.std.len());
            let expected = format!("{} features", c.input);
            return Err(Error::shape("checkpoint normalization", expected, got));
        }
        Normalization::from_parts(norm.mean.clone(), norm.std.clone())?;
        meta.insert("normalization".into(), "standard".into());
        for (name, v) in [
            ("normalization.mean", &norm.mean),
            ("normalization.std", &norm.std),
        ] {
            tensors.push((name.to_string(), vec![c.input], v.clone()));
        }
    }
    if let Some(es) = &ckpt.early_stopping {
        if es.best_params.len() != n {
            let got = format!("{} best parameters", es.best_params.len());
            return Err(Error::shape("checkpoint early stopping", n, got));
        }
        let value = serde_json::to_string(&EarlyStopMetadata {
            best_epoch: es.best_epoch,
            best_value: es.best_value.to_string(),
            monitor: es.monitor.clone(),
            patience: es.patience,
            wait: es.wait,
        })
        .map_err(|e| Error::config("early stopping", e.to_string()))?;
        meta.insert("early_stopping".into(), value);
        tensors.push((
            "early_stopping.best_params".to_string(),
            vec![n],
            es.best_params.clone(),
        ));
    }
    if let Some(sched) = ckpt.lr_schedule.filter(|s| !s.is_constant()) {
        sched.validate()?;
        meta.insert("lr_schedule".into(), sched.kind.to_string());
        meta.insert("warmup".into(), sched.warmup.to_string());
        meta.insert("schedule_epochs".into(), sched.epochs.to_string());
    }
    if let Some(d) = ckpt.input_divisor {
        if !(d.is_finite() && d > 0.0) {
            return Err(Error::config(
                "input divisor",
                format!("{d} must be a positive number"),
            ));
        }
        meta.insert("input_divisor".into(), d.to_string());
    }
    if !ckpt.class_names.is_empty() {
        if ckpt.class_names.len() > c.output {
            let got = format!("{} class names", ckpt.class_names.len());
            let expected = format!("at most {} (one per output)", c.output);
            return Err(Error::shape("checkpoint class names", expected, got));
        }
        let names = serde_json::to_string(&ckpt.class_names)
            .map_err(|e| Error::config("class names", e.to_string()))?;
        meta.insert("class_names".into(), names);
    }
    if let Some(norm) = &ckpt.target_normalization {
        if norm.mean.len() != c.output || norm.std.len() != c.output {
            let got = format!("{} means and {} stds", norm.mean.len(), norm.std.len());
            let expected = format!("{} targets", c.output);
            return Err(Error::shape(
                "checkpoint target normalization",
                expected,
                got,
            ));
        }
        Normalization::from_parts(norm.mean.clone(), norm.std.clone())?;
        meta.insert("target_normalization".into(), "standard".into());
        for (name, v) in [
            ("target_normalization.mean", &norm.mean),
            ("target_normalization.std", &norm.std),
        ] {
            tensors.push((name.to_string(), vec![c.output], v.clone()));
        }
    }
    if let Some(t) = &ckpt.training {
        let o = &t.optimizer;
        for (k, v) in [
            ("epoch", t.epoch.to_string()),
            ("optimizer", o.kind.to_string()),
            ("lr", o.lr.to_string()),
            ("momentum", o.momentum.to_string()),
            ("beta1", o.beta1.to_string()),
            ("beta2", o.beta2.to_string()),
            ("eps", o.eps.to_string()),
            ("weight_decay", o.weight_decay.to_string()),
            ("clip_grad_norm", o.clip_norm.to_string()),
            ("optimizer_step", t.state.step.to_string()),
        ] {
            meta.insert(k.to_string(), v);
        }
        for (name, buf) in [("optimizer.m", &t.state.m), ("optimizer.v", &t.state.v)] {
            if !buf.is_empty() && buf.len() != n {
                let got = format!("{} values in {name}", buf.len());
                return Err(Error::shape(
                    "checkpoint save",
                    format!("0 or {n} values"),
                    got,
                ));
            }
            tensors.push((name.to_string(), vec![buf.len()], buf.clone()));
        }
    }
    for (name, shape, data) in &tensors {
        if let Some(bad) = non_finite(data, shape) {
            let message = format!("tensor {name}: {bad}; a checkpoint must hold finite values");
            let what = "checkpoint".to_string();
            return Err(Error::InvalidData { what, message });
        }
    }
    if let Some(m) = metrics {
        serde_json::from_str::<serde::de::IgnoredAny>(m)
            .map_err(|e| Error::config("metrics", format!("not valid JSON: {e}")))?;
        meta.insert("metrics".into(), m.to_string());
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, s, d)| (n, s, f32_bytes(&d)))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, s, d)| Ok((n.as_str(), TensorView::new(Dtype::F32, s.clone(), d)?)))
        .collect::<std::result::Result<Vec<_>, SafeTensorError>>();
    views
        .and_then(|v| safetensors::serialize(v, Some(meta)))
        .map_err(|e| Error::config("checkpoint", format!("could not serialise: {e}")))
}

/// A safetensors parse failure as an [`Error::Data`] at `header` (or the offending tensor).
fn header_error(path: &Path, bytes: &[u8], e: SafeTensorError) -> Error {
    let len = bytes.len();
    let claimed = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes);
    use SafeTensorError as E;
    let message = match (&e, claimed) {
        (E::HeaderTooSmall, _) => format!(
            "the file is {len} bytes, too short for a safetensors file: \
             it is empty or truncated; {RESAVE}"
        ),
        (E::HeaderTooLarge | E::InvalidHeaderLength, Some(c)) => format!(
            "the first 8 bytes claim a {c}-byte header but the file is {len} bytes: \
             it is not a safetensors file, or it was truncated; {RESAVE}"
        ),
        (E::InvalidHeader(_) | E::InvalidHeaderDeserialization(_), _) => {
            format!("{e}: this is not a safetensors file, or it is corrupt; {RESAVE}")
        }
        (E::MetadataIncompleteBuffer, Some(c)) => {
            let held = (len as u64).saturating_sub(c.saturating_add(8));
            match declared_data_len(bytes) {
                Some(d) if d > held => format!(
                    "the header describes {d} bytes of tensor data but the file holds only {held}: \
                     it was truncated; {RESAVE}"
                ),
                Some(d) => format!(
                    "the header describes {d} bytes of tensor data but the file holds {held}: \
                     {} bytes were appended; {RESAVE}",
                    held - d
                ),
                None => format!("the tensor data does not match the header; {RESAVE}"),
            }
        }
        (E::InvalidOffset(name), _) => {
            let msg = format!("its data offsets in the header are inconsistent; {RESAVE}");
            return Error::data(path, format!("tensor {name}"), msg);
        }
        _ => format!("{e}: the file is corrupt; {RESAVE}"),
    };
    Error::data(path, "header", message)
}

/// Bytes of tensor data the JSON header declares (the largest end offset).
fn declared_data_len(bytes: &[u8]) -> Option<u64> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Value =
        serde_json::from_slice(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    let tensors = header.as_object()?.values();
    Some(
        tensors
            .filter_map(|v| v.get("data_offsets")?.get(1)?.as_u64())
            .max()
            .unwrap_or(0),
    )
}

/// Typed access to a parsed file's metadata and tensors, with errors naming the path.
struct Reader<'a> {
    path: &'a Path,
    meta: &'a HashMap<String, String>,
    info: &'a Metadata,
    data: &'a [u8],
}

impl Reader<'_> {
    fn key(&self, key: &str) -> Result<&str> {
        self.meta.get(key).map(String::as_str).ok_or_else(|| {
            let msg = format!("the key {key:?} is missing; the checkpoint is incomplete: {RESAVE}");
            Error::data(self.path, format!("metadata {key}"), msg)
        })
    }

    fn parse<T: FromStr<Err: Display>>(&self, key: &str) -> Result<T> {
        let v = self.key(key)?;
        let msg = |e: T::Err| format!("cannot parse {v:?}: {e}");
        v.parse()
            .map_err(|e| Error::data(self.path, format!("metadata {key}"), msg(e)))
    }

    /// The F32 tensor `name`, checked for shape (any of `shapes`) and finiteness.
    fn tensor(&self, name: &str, shapes: &[Vec<usize>], context: &str) -> Result<Vec<f32>> {
        let position = format!("tensor {name}");
        let err = |msg: String| Error::data(self.path, &position, msg);
        let Some(info) = self.info.info(name) else {
            let mut have: Vec<String> = self.info.tensors().into_keys().collect();
            have.sort();
            let have = join(&have, ", ");
            let msg =
                format!("missing, though {context} call for it (the file has [{have}]); {RESAVE}");
            return Err(err(msg));
        };
        if info.dtype != Dtype::F32 {
            let msg = format!("dtype is {} but wgmlp checkpoints store F32", info.dtype);
            return Err(err(msg));
        }
        if !shapes.contains(&info.shape) {
            let (want, found) = (&shapes[0], &info.shape);
            return Err(err(format!(
                "expected shape {want:?} (from {context}), found {found:?}"
            )));
        }
        let (s, e) = info.data_offsets;
        let bytes = self
            .data
            .get(s..e)
            .ok_or_else(|| err(format!("data outside the file; {RESAVE}")))?;
        let to_f32 = |c: &[u8]| f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let values: Vec<f32> = bytes.chunks_exact(4).map(to_f32).collect();
        if let Some(bad) = non_finite(&values, &info.shape) {
            return Err(err(format!("{bad}; the checkpoint is corrupt")));
        }
        Ok(values)
    }
}

/// Parses and validates checkpoint `bytes` read from `path`.
fn parse(path: &Path, bytes: &[u8]) -> Result<(Checkpoint, Option<String>)> {
    let (n, info) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| header_error(path, bytes, e))?;
    let other = "this file was probably written by another program (e.g. PyTorch), not by wgmlp";
    let Some(meta) = info.metadata() else {
        let msg = format!("the safetensors file has no __metadata__; {other}");
        return Err(Error::data(path, "metadata format", msg));
    };
    let r = Reader {
        path,
        meta,
        info: &info,
        data: bytes.get(8 + n..).unwrap_or_default(),
    };
    let format = r.key("format")?;
    if format != FORMAT {
        let msg = format!("format is {format:?}, not {FORMAT:?}; {other}");
        return Err(Error::data(path, "metadata format", msg));
    }
    let version = r.key("version")?;
    if version != VERSION {
        let msg = format!(
            "version {version:?} is unsupported (this wgmlp reads {VERSION}); use a newer wgmlp"
        );
        return Err(Error::data(path, "metadata version", msg));
    }
    let widths_text = r.key("widths")?;
    let widths: Vec<usize> = widths_text
        .split(',')
        .map(|w| w.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .ok()
        .filter(|w: &Vec<usize>| w.len() >= 2)
        .ok_or_else(|| {
            let msg = format!("{widths_text:?} is not a comma-separated list of 2 or more widths");
            Error::data(path, "metadata widths", msg)
        })?;
    let acts_text = r.key("activations")?;
    let activations = if acts_text.trim().is_empty() {
        Vec::new()
    } else {
        acts_text
            .split(',')
            .map(|a| a.parse())
            .collect::<Result<Vec<_>>>()
            .map_err(|e| Error::data(path, "metadata activations", e))?
    };
    if activations.len() != widths.len() - 2 {
        let (a, h) = (activations.len(), widths.len() - 2);
        let msg = format!("{a} activations for the {h} hidden layers of widths {widths_text}");
        return Err(Error::data(path, "metadata activations", msg));
    }
    let config = MlpConfig {
        input: widths[0],
        hidden: widths[1..widths.len() - 1].to_vec(),
        activations,
        output: widths[widths.len() - 1],
        task: match meta.get("task") {
            None => crate::config::Task::Classify,
            Some(_) => r.parse("task")?,
        },
        loss: r.parse("loss")?,
        init: r.parse("init")?,
        seed: r.parse("seed")?,
        dropout: match meta.get("dropout") {
            None => 0.0,
            Some(_) => r.parse("dropout")?,
        },
        learn_prelu: match meta.get("learn_prelu").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                let msg = format!("{other:?} is neither \"true\" nor \"false\"; {RESAVE}");
                return Err(Error::data(path, "metadata learn_prelu", msg));
            }
        },
    };
    config
        .validate()
        .map_err(|e| Error::data(path, "metadata widths", e))?;
    let arch = format!("metadata widths {widths_text}");
    let mut names = Vec::new();
    let mut tensors = Vec::new();
    for (i, l) in config.layers().iter().enumerate() {
        for (suffix, shape) in [
            ("weight", vec![l.fan_out, l.fan_in]),
            ("bias", vec![l.fan_out]),
        ] {
            let name = format!("{}.{suffix}", 2 * i);
            let data = r.tensor(&name, std::slice::from_ref(&shape), &arch)?;
            names.push(name.clone());
            tensors.push((name, shape, data));
        }
        if l.alpha_offset.is_some() {
            let name = format!("{}.weight", 2 * i + 1);
            let data = r.tensor(&name, &[vec![1]], "metadata learn_prelu=true")?;
            names.push(name.clone());
            tensors.push((name, vec![1], data));
        }
    }
    let params =
        from_torch_tensors(&config, &tensors).map_err(|e| Error::data(path, "tensors", e))?;
    let normalization = match r.key("normalization")? {
        "none" => None,
        "standard" => {
            let shape = [vec![config.input]];
            let ctx = format!("metadata normalization=standard and widths {widths_text}");
            let mean = r.tensor("normalization.mean", &shape, &ctx)?;
            let std = r.tensor("normalization.std", &shape, &ctx)?;
            names.extend(["normalization.mean", "normalization.std"].map(String::from));
            let norm = Normalization::from_parts(mean, std)
                .map_err(|e| Error::data(path, "tensor normalization.std", e))?;
            Some(norm)
        }
        other => {
            let msg = format!("{other:?} is neither \"none\" nor \"standard\"");
            return Err(Error::data(path, "metadata normalization", msg));
        }
    };
    let early_stopping = match meta.get("early_stopping") {
        None => None,
        Some(text) => {
            let bad = || {
                let msg = format!(
                    "{:?} is not an early-stopping state; {RESAVE}",
                    text.chars().take(80).collect::<String>()
                );
                Error::data(path, "metadata early_stopping", msg)
            };
            let v: EarlyStopMetadata = serde_json::from_str(text).map_err(|_| bad())?;
            let best_value: f32 = v.best_value.parse().map_err(|_| bad())?;
            let ctx = "metadata early_stopping".to_string();
            let best_params = r.tensor(
                "early_stopping.best_params",
                &[vec![config.n_params()]],
                &ctx,
            )?;
            names.push("early_stopping.best_params".to_string());
            Some(EarlyStopState {
                monitor: v.monitor,
                patience: v.patience,
                best_epoch: v.best_epoch,
                best_value,
                wait: v.wait,
                best_params,
            })
        }
    };
    let lr_schedule = match meta.get("lr_schedule") {
        None => None,
        Some(_) => {
            let sched = crate::schedule::LrSchedule {
                kind: r.parse("lr_schedule")?,
                warmup: r.parse("warmup")?,
                epochs: r.parse("schedule_epochs")?,
            };
            sched
                .validate()
                .map_err(|e| Error::data(path, "metadata warmup", format!("{e}; {RESAVE}")))?;
            Some(sched)
        }
    };
    let input_divisor = match meta.get("input_divisor") {
        None => None,
        Some(text) => Some(
            text.parse::<f32>()
                .ok()
                .filter(|d| d.is_finite() && *d > 0.0)
                .ok_or_else(|| {
                    let msg = format!("{text:?} is not a positive number; {RESAVE}");
                    Error::data(path, "metadata input_divisor", msg)
                })?,
        ),
    };
    let class_names: Vec<String> = match meta.get("class_names") {
        None => Vec::new(),
        Some(text) => serde_json::from_str::<Vec<String>>(text)
            .ok()
            .filter(|n| n.len() <= config.output)
            .ok_or_else(|| {
                let msg = format!(
                    "{:?} is not a JSON array of at most {} strings (one per output); {RESAVE}",
                    text.chars().take(60).collect::<String>(),
                    config.output
                );
                Error::data(path, "metadata class_names", msg)
            })?,
    };
    let target_normalization = match meta.get("target_normalization").map(String::as_str) {
        None | Some("none") => None,
        Some("standard") => {
            let shape = [vec![config.output]];
            let ctx = format!("metadata target_normalization=standard and widths {widths_text}");
            let mean = r.tensor("target_normalization.mean", &shape, &ctx)?;
            let std = r.tensor("target_normalization.std", &shape, &ctx)?;
            names.extend(
                ["target_normalization.mean", "target_normalization.std"].map(String::from),
            );
            let norm = Normalization::from_parts(mean, std)
                .map_err(|e| Error::data(path, "tensor target_normalization.std", e))?;
            Some(norm)
        }
        Some(other) => {
            let msg = format!("{other:?} is neither \"none\" nor \"standard\"");
            return Err(Error::data(path, "metadata target_normalization", msg));
        }
    };
    let training = if meta.contains_key("optimizer") {
        let n_params = config.n_params();
        let optimizer = OptimizerConfig {
            kind: r.parse("optimizer")?,
            lr: r.parse("lr")?,
            momentum: r.parse("momentum")?,
            beta1: r.parse("beta1")?,
            beta2: r.parse("beta2")?,
            eps: r.parse("eps")?,
            weight_decay: r.parse("weight_decay")?,
            clip_norm: match meta.get("clip_grad_norm") {
                None => 0.0,
                Some(_) => r.parse("clip_grad_norm")?,
            },
        };
        optimizer
            .validate()
            .map_err(|e| Error::data(path, "metadata optimizer", format!("{e}; {RESAVE}")))?;
        if !(optimizer.eps.is_finite() && optimizer.eps > 0.0) {
            let msg = format!("{} must be a positive number; {RESAVE}", optimizer.eps);
            return Err(Error::data(path, "metadata eps", msg));
        }
        let step: u64 = r.parse("optimizer_step")?;
        if u32::try_from(step).is_err() {
            let msg = format!("{step} steps is more than the 2^32 - 1 wgmlp counts; {RESAVE}");
            return Err(Error::data(path, "metadata optimizer_step", msg));
        }
        // A moment the optimizer uses must hold one value per parameter; one it does not
        // use may be empty ([0]). Either way it is loaded as n_params values, so resuming
        // with another --optimizer starts that moment at zero.
        let uses = |moment: u8| match optimizer.kind {
            OptimizerKind::Sgd => false,
            OptimizerKind::Momentum => moment == 1,
            OptimizerKind::Adam | OptimizerKind::AdamW => true,
        };
        let mut moment = |name: &str, index: u8| -> Result<Vec<f32>> {
            let full = vec![n_params];
            let ctx = format!(
                "metadata optimizer={} and widths {widths_text}",
                optimizer.kind
            );
            let shapes = if uses(index) {
                vec![full]
            } else {
                vec![full, vec![0]]
            };
            let mut v = r.tensor(name, &shapes, &ctx)?;
            names.push(name.to_string());
            v.resize(n_params, 0.0);
            Ok(v)
        };
        let m = moment("optimizer.m", 1)?;
        let v = moment("optimizer.v", 2)?;
        Some(TrainingState {
            epoch: r.parse("epoch")?,
            optimizer,
            state: OptimizerState { step, m, v },
        })
    } else {
        None
    };
    let mut extra: Vec<String> = info
        .tensors()
        .into_keys()
        .filter(|k| !names.contains(k))
        .collect();
    extra.sort();
    if let Some(name) = extra.first() {
        let msg = "unexpected tensor: the metadata (widths, normalization, optimizer) does not account for it; \
                   the file was modified or written by another program";
        return Err(Error::data(path, format!("tensor {name}"), msg));
    }
    let ckpt = Checkpoint {
        normalization,
        target_normalization,
        input_divisor,
        class_names,
        training,
        early_stopping,
        lr_schedule,
        ..Checkpoint::new(config, params)
    };
    Ok((ckpt, meta.get("metrics").cloned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::config::{Init, Loss};
    use crate::data::testutil::{TestDir, assert_err};
    use safetensors::SafeTensors;

    type RawTensor = (String, Dtype, Vec<usize>, Vec<u8>);
    type Raw = Vec<RawTensor>;

    fn model(config: MlpConfig) -> Checkpoint {
        let n = config.n_params();
        Checkpoint::new(
            config,
            (0..n).map(|k| (k as f32 * 0.37).sin() - 1e-42).collect(),
        )
    }

    /// 3-4-5-2, prelu:0.1 and swish:2, MSE, Glorot, seed 7, normalization, AdamW state.
    fn full() -> Checkpoint {
        let mut c = model(
            MlpConfig::new(3, &[4, 5], 2)
                .with_seed(7)
                .with_loss(Loss::Mse),
        );
        c.config.activations = vec![
            Activation::Prelu { alpha: 0.1 },
            Activation::Swish { beta: 2.0 },
        ];
        c.config.init = Init::Glorot;
        let (mean, std) = (vec![0.5, -1.0, 1e-30], vec![2.0, 0.1, 3.0]);
        c.normalization = Some(Normalization::from_parts(mean, std).unwrap());
        let n = c.params.len() as u16;
        let (m, v) = (0..n)
            .map(|k| (f32::from(k) / 7.0, f32::from(k).sqrt() * 1e-39))
            .unzip();
        let optimizer = OptimizerConfig::new(OptimizerKind::AdamW, 3e-4);
        let state = OptimizerState { step: 1234, m, v };
        c.training = Some(TrainingState {
            epoch: 12,
            optimizer,
            state,
        });
        c
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn saved(c: &Checkpoint) -> Vec<u8> {
        serialize(c, None).unwrap()
    }

    /// The `__metadata__` of `bytes`, read with the safetensors crate alone.
    fn meta_of(bytes: &[u8]) -> HashMap<String, String> {
        SafeTensors::read_metadata(bytes)
            .unwrap()
            .1
            .metadata()
            .clone()
            .unwrap()
    }

    /// Rebuilds a valid file with its tensors and metadata edited by `edit`.
    fn rewrite(bytes: &[u8], edit: impl FnOnce(&mut Raw, &mut HashMap<String, String>)) -> Vec<u8> {
        let st = SafeTensors::deserialize(bytes).unwrap();
        let mut meta = meta_of(bytes);
        let raw =
            |(n, t): (String, TensorView)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec());
        let mut ts: Raw = st.tensors().into_iter().map(raw).collect();
        edit(&mut ts, &mut meta);
        let views = ts
            .iter()
            .map(|(n, d, s, b)| (n, TensorView::new(*d, s.clone(), b).unwrap()));
        safetensors::serialize(views, Some(meta)).unwrap()
    }

    fn set(bytes: &[u8], key: &str, value: Option<&str>) -> Vec<u8> {
        rewrite(bytes, |_, m| match value {
            Some(v) => drop(m.insert(key.into(), v.into())),
            None => drop(m.remove(key)),
        })
    }

    /// Asserts that parsing `bytes` fails with an Error::Data whose text has the path and `parts`.
    fn parse_err(bytes: &[u8], parts: &[&str]) {
        let r = parse(Path::new("m.safetensors"), bytes);
        assert!(matches!(r, Err(Error::Data { .. })), "{r:?}");
        assert_err(r, &[&["m.safetensors: "], parts].concat());
    }

    #[test]
    fn round_trip_without_normalization_or_training_is_bit_exact() {
        let dir = TestDir::new("ckpt-plain");
        let p = dir.join("model.safetensors");
        for c in [
            model(MlpConfig::new(5, &[3], 4)),
            model(MlpConfig::new(2, &[], 3)),
        ] {
            save(&p, &c).unwrap();
            let back = load(&p).unwrap();
            assert_eq!(bits(&back.params), bits(&c.params));
            assert_eq!(back, c);
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temporary is left"
        );
    }

    #[test]
    fn class_names_input_divisor_and_early_stopping_round_trip_and_are_checked() {
        let dir = TestDir::new("ckpt-names");
        let p = dir.join("model.safetensors");
        let mut c = full();
        c.class_names = vec!["Iris \"setosa\"".into(), "versicolor,x".into()];
        c.input_divisor = Some(255.0);
        c.lr_schedule = Some(crate::schedule::LrSchedule {
            kind: crate::schedule::ScheduleKind::Step {
                every: 3,
                gamma: 0.25,
            },
            warmup: 2,
            epochs: 40,
        });
        c.early_stopping = Some(EarlyStopState {
            monitor: "val_loss".into(),
            patience: 3,
            best_epoch: 7,
            best_value: 0.1 + 1e-9,
            wait: 2,
            best_params: c.params.iter().map(|p| p * 0.5).collect(),
        });
        save(&p, &c).unwrap();
        assert_eq!(load(&p).unwrap(), c);
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(meta_of(&bytes)["input_divisor"], "255");
        parse_err(
            &set(&bytes, "input_divisor", Some("-1")),
            &["metadata input_divisor"],
        );
        parse_err(
            &set(&bytes, "early_stopping", Some("{}")),
            &["metadata early_stopping"],
        );
        let no_best = rewrite(&bytes, |t, _| {
            t.retain(|x| x.0 != "early_stopping.best_params")
        });
        parse_err(&no_best, &["tensor early_stopping.best_params"]);
        parse_err(
            &set(&bytes, "lr_schedule", Some("linear")),
            &["metadata lr_schedule"],
        );
        parse_err(&set(&bytes, "warmup", Some("40")), &["metadata warmup"]);
        parse_err(
            &set(&bytes, "class_names", Some("[1,2]")),
            &["metadata class_names"],
        );
        parse_err(
            &set(&bytes, "class_names", Some(r#"["a","b","c"]"#)),
            &["metadata class_names", "at most 2"],
        );
        c.class_names.push("third".into());
        assert!(matches!(save(&p, &c), Err(Error::Shape { .. })));
    }

    #[test]
    fn regression_task_and_target_normalization_round_trip_and_are_checked() {
        let dir = TestDir::new("ckpt-regress");
        let p = dir.join("model.safetensors");
        let mut c = full();
        c.config = c.config.clone().with_task(crate::config::Task::Regress);
        c.config.loss = Loss::Huber;
        let tn = Normalization::from_parts(vec![500.0, -2.0], vec![1000.0, 0.5]).unwrap();
        c.target_normalization = Some(tn);
        save(&p, &c).unwrap();
        assert_eq!(load(&p).unwrap(), c);
        let bytes = std::fs::read(&p).unwrap();
        let meta = meta_of(&bytes);
        assert_eq!(
            (meta["task"].as_str(), meta["loss"].as_str()),
            ("regress", "huber")
        );
        assert_eq!(meta["target_normalization"], "standard");
        // Files from before tasks existed have no key: classification.
        let old = set(&saved(&full()), "task", None);
        let back = parse(Path::new("m.safetensors"), &old).unwrap().0;
        assert_eq!(back.config.task, crate::config::Task::Classify);
        parse_err(
            &set(&bytes, "task", Some("cluster")),
            &["metadata task", "cluster"],
        );
        parse_err(
            &set(&bytes, "target_normalization", Some("minmax")),
            &["metadata target_normalization", "minmax"],
        );
        let no_tensor = rewrite(&bytes, |t, _| {
            t.retain(|x| x.0 != "target_normalization.std")
        });
        parse_err(&no_tensor, &["tensor target_normalization.std"]);
        // A target normalization of the wrong width is refused at save.
        c.target_normalization = Some(Normalization::from_parts(vec![0.0], vec![1.0]).unwrap());
        assert!(matches!(save(&p, &c), Err(Error::Shape { .. })));
    }

    #[test]
    fn round_trip_with_normalization_training_state_and_metrics_is_bit_exact() {
        let dir = TestDir::new("ckpt-full");
        let p = dir.join("model.safetensors");
        let c = full();
        save_with_metrics(&p, &c, Some(r#"{"test_accuracy":0.97}"#)).unwrap();
        let (back, metrics) = load_with_metrics(&p).unwrap();
        assert_eq!(back, c);
        let (t, bt) = (c.training.unwrap(), back.training.unwrap());
        assert_eq!(bits(&bt.state.m), bits(&t.state.m));
        assert_eq!(bits(&bt.state.v), bits(&t.state.v));
        assert_eq!(bits(&back.params), bits(&c.params));
        assert_eq!(metrics.as_deref(), Some(r#"{"test_accuracy":0.97}"#));
        // SGD keeps no moments: empty buffers are written empty and read back as zeros, so a
        // resume with another --optimizer starts its moments at zero.
        let state = OptimizerState {
            step: 9,
            m: vec![],
            v: vec![],
        };
        let optimizer = OptimizerConfig::sgd(0.1);
        let sgd = Checkpoint {
            training: Some(TrainingState {
                epoch: 1,
                optimizer,
                state,
            }),
            ..full()
        };
        save(&p, &sgd).unwrap();
        let n = sgd.params.len();
        let back = load(&p).unwrap().training.unwrap();
        assert_eq!(
            (back.state.step, back.state.m.len(), back.state.v.len()),
            (9, n, n)
        );
        assert!(back.state.m.iter().chain(&back.state.v).all(|&x| x == 0.0));
        assert_err(
            save_with_metrics(&p, &sgd, Some("{oops")),
            &["metrics", "JSON"],
        );
    }

    #[test]
    fn pytorch_layout_weight_is_transposed_3_2_2() {
        // Our W0 is row-major [3 × 2], W0[i][j] = 10i + j; b0 = [100, 101]; W1[i][j] = 20 + 10i + j.
        let params = vec![
            0., 1., 10., 11., 20., 21., 100., 101., 20., 21., 30., 31., 200., 201.,
        ];
        let bytes = saved(&Checkpoint::new(MlpConfig::new(3, &[2], 2), params));
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort();
        assert_eq!(names, ["0.bias", "0.weight", "2.bias", "2.weight"]);
        let read = |name: &str| {
            let t = st.tensor(name).unwrap();
            assert_eq!(t.dtype(), Dtype::F32);
            let le = |c: &[u8]| f32::from_le_bytes(c.try_into().unwrap());
            (
                t.shape().to_vec(),
                t.data().chunks(4).map(le).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            read("0.weight"),
            (vec![2, 3], vec![0., 10., 20., 1., 11., 21.])
        );
        assert_eq!(read("0.bias"), (vec![2], vec![100., 101.]));
        assert_eq!(read("2.weight"), (vec![2, 2], vec![20., 30., 21., 31.]));
        assert_eq!(read("2.bias"), (vec![2], vec![200., 201.]));
        let meta = meta_of(&bytes);
        let expected = [("format", "wgmlp"), ("version", "1"), ("widths", "3,2,2")];
        for (k, v) in expected
            .into_iter()
            .chain([("activations", "relu"), ("normalization", "none")])
        {
            assert_eq!(meta[k], v, "{k}");
        }
        assert!(!meta.contains_key("optimizer"));
    }

    #[test]
    fn learned_prelu_alpha_is_pytorch_prelu_weight_and_round_trips() {
        let dir = TestDir::new("ckpt-prelu");
        let p = dir.join("model.safetensors");
        // 3-4-5-2 with pReLU hidden layers: α of layer 0 is params[16], of layer 1 params[42].
        let mut c = full();
        c.config.activations = vec![Activation::Prelu { alpha: 0.1 }; 2];
        c.config.learn_prelu = true;
        let n = c.config.n_params();
        assert_eq!(n, 55);
        c.params = (0..n).map(|k| (k as f32 * 0.37).sin()).collect();
        c.params[16] = 0.125;
        c.params[42] = -0.5;
        let t = c.training.as_mut().unwrap();
        t.state.m.resize(n, 0.25);
        t.state.v.resize(n, 1e-3);
        save(&p, &c).unwrap();
        let back = load(&p).unwrap();
        assert_eq!(bits(&back.params), bits(&c.params));
        assert_eq!(back, c);
        // The safetensors crate alone sees PyTorch's nn.PReLU() at Sequential index 1 and 3.
        let bytes = std::fs::read(&p).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let alpha = st.tensor("1.weight").unwrap();
        assert_eq!((alpha.dtype(), alpha.shape()), (Dtype::F32, &[1][..]));
        assert_eq!(alpha.data(), 0.125f32.to_le_bytes());
        assert_eq!(
            st.tensor("3.weight").unwrap().data(),
            (-0.5f32).to_le_bytes()
        );
        assert_eq!(meta_of(&bytes)["learn_prelu"], "true");
        // Without the key the slopes are fixed and the α tensors are unexpected (or, with an
        // optimizer state, the moments have the wrong length).
        parse_err(
            &set(&bytes, "learn_prelu", None),
            &["tensor optimizer.m", "[53]", "found [55]"],
        );
        let plain = saved(&Checkpoint::new(c.config.clone(), c.params.clone()));
        parse_err(
            &set(&plain, "learn_prelu", None),
            &["tensor 1.weight", "unexpected"],
        );
        parse_err(&set(&bytes, "learn_prelu", Some("yes")), &["learn_prelu"]);
        // A missing α tensor is named.
        let no_alpha = rewrite(&bytes, |ts, _| ts.retain(|t| t.0 != "3.weight"));
        parse_err(&no_alpha, &["tensor 3.weight", "missing"]);
        // A fixed-slope model writes neither the key nor α tensors.
        let fixed = saved(&full());
        assert!(!meta_of(&fixed).contains_key("learn_prelu"));
        assert!(
            SafeTensors::deserialize(&fixed)
                .unwrap()
                .tensor("1.weight")
                .is_err()
        );
    }

    #[test]
    fn torch_tensors_convert_back_to_flat_params() {
        let c = full();
        let t = to_torch_tensors(&c.config, &c.params);
        assert_eq!(from_torch_tensors(&c.config, &t).unwrap(), c.params);
        assert_err(
            from_torch_tensors(&c.config, &t[1..]),
            &["0.weight", "no such tensor"],
        );
    }

    #[test]
    fn prelu_and_swish_parameters_round_trip_through_metadata() {
        let bytes = saved(&full());
        assert_eq!(meta_of(&bytes)["activations"], "prelu:0.1,swish:2");
        assert_eq!(meta_of(&bytes)["widths"], "3,4,5,2");
        let c = parse(Path::new("m"), &bytes).unwrap().0.config;
        assert_eq!(c.activations, full().config.activations);
        assert_eq!((c.loss, c.init, c.seed), (Loss::Mse, Init::Glorot, 7));
    }

    #[test]
    fn random_bytes_empty_file_and_overlong_header_are_typed_errors() {
        let mut rng = crate::rng::Rng::new(3);
        let random: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
        parse_err(&random, &["header", "not a safetensors file"]);
        parse_err(&[], &["header", "0 bytes", "re-save"]);
        let claims_more = [&1000u64.to_le_bytes()[..], b"{}      "].concat();
        parse_err(&claims_more, &["header", "1000-byte header", "16 bytes"]);
        parse_err(
            &[&8u64.to_le_bytes()[..], b"PK\x03\x04zip!"].concat(),
            &["header", "not a safetensors"],
        );
        let dir = TestDir::new("ckpt-empty");
        std::fs::write(dir.join("e.safetensors"), b"").unwrap();
        assert_err(load(&dir.join("e.safetensors")), &["e.safetensors: header"]);
        assert_err(
            load(&dir.join("absent.safetensors")),
            &["absent.safetensors: read"],
        );
    }

    #[test]
    fn every_truncation_of_a_valid_file_is_a_typed_error() {
        let bytes = saved(&full());
        for cut in 0..bytes.len() {
            let e = parse(Path::new("m"), &bytes[..cut]).unwrap_err();
            assert!(matches!(&e, Error::Data { .. }), "cut {cut}: {e}");
        }
        parse_err(
            &bytes[..bytes.len() - 5],
            &["header", "truncated", "re-save"],
        );
        parse_err(
            &[&bytes[..], &[0]].concat(),
            &["header", "1 bytes were appended"],
        );
    }

    #[test]
    fn wrong_shape_wrong_dtype_missing_and_extra_tensors_are_named() {
        let bytes = saved(&model(MlpConfig::new(3, &[2], 2)));
        let edit = |name: &'static str, f: fn(&mut RawTensor)| {
            rewrite(&bytes, move |ts, _| {
                ts.iter_mut().filter(|t| t.0 == name).for_each(f)
            })
        };
        let swapped = edit("0.weight", |t| t.2 = vec![3, 2]);
        parse_err(
            &swapped,
            &["tensor 0.weight", "expected shape [2, 3]", "found [3, 2]"],
        );
        let f64s = edit("2.bias", |t| {
            (t.1, t.2, t.3) = (Dtype::F64, vec![1], vec![0; 8])
        });
        parse_err(&f64s, &["tensor 2.bias", "dtype is F64", "F32"]);
        let missing = rewrite(&bytes, |ts, _| ts.retain(|t| t.0 != "2.bias"));
        parse_err(
            &missing,
            &["tensor 2.bias", "missing", "[0.bias, 0.weight, 2.weight]"],
        );
        let extra = rewrite(&bytes, |ts, _| {
            ts.push(("1.weight".into(), Dtype::F32, vec![1], vec![0; 4]))
        });
        parse_err(&extra, &["tensor 1.weight", "unexpected"]);
        let norm = set(&bytes, "normalization", Some("standard"));
        parse_err(&norm, &["tensor normalization.mean", "missing"]);
    }

    #[test]
    fn non_finite_values_are_named_with_tensor_and_index() {
        let bytes = saved(&model(MlpConfig::new(3, &[2], 2)));
        let nan = rewrite(&bytes, |ts, _| {
            let t = ts.iter_mut().find(|t| t.0 == "0.weight").unwrap();
            t.3[20..24].copy_from_slice(&f32::NAN.to_le_bytes()); // element 5 of [2, 3]
        });
        parse_err(&nan, &["tensor 0.weight", "element [1, 2] is NaN"]);
        let mut c = model(MlpConfig::new(3, &[2], 2));
        c.params[12] = f32::INFINITY; // W0 0..6, b0 6..8, W1 8..12, b1 12..14
        assert_err(
            serialize(&c, None),
            &["tensor 2.bias", "element [0] is inf"],
        );
    }

    #[test]
    fn foreign_format_and_bad_metadata_are_reported_by_key() {
        let bytes = saved(&full());
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let no_meta = safetensors::serialize(st.tensors(), None).unwrap();
        parse_err(&no_meta, &["metadata format", "another program"]);
        let cases = [
            (
                "format",
                Some("pt"),
                &["metadata format", "\"pt\"", "another program"][..],
            ),
            ("seed", None, &["metadata seed", "missing"]),
            ("widths", Some("3,x,5,2"), &["metadata widths", "3,x,5,2"]),
            (
                "activations",
                Some("relu"),
                &["metadata activations", "1 activations for the 2 hidden"],
            ),
            (
                "activations",
                Some("relu,bogus"),
                &["metadata activations", "bogus"],
            ),
            ("loss", Some("hinge"), &["metadata loss", "hinge"]),
            ("lr", Some("fast"), &["metadata lr", "fast"]),
            (
                "normalization",
                Some("minmax"),
                &["metadata normalization", "minmax"],
            ),
            ("version", Some("2"), &["metadata version", "newer wgmlp"]),
        ];
        for (key, value, parts) in cases {
            parse_err(&set(&bytes, key, value), parts);
        }
    }

    #[test]
    fn an_empty_moment_the_optimizer_uses_is_refused_by_name() {
        // AdamW uses both moments: a crafted [0] optimizer.m used to load and then panic
        // (index out of bounds) in the first CPU step of a resumed run.
        let bytes = saved(&full());
        let empty_m = rewrite(&bytes, |ts, _| {
            let t = ts.iter_mut().find(|t| t.0 == "optimizer.m").unwrap();
            (t.2, t.3) = (vec![0], vec![]);
        });
        parse_err(
            &empty_m,
            &[
                "tensor optimizer.m",
                "expected shape [53]",
                "optimizer=adamw",
                "found [0]",
            ],
        );
        // Momentum uses m only: an empty v loads as zeros.
        let momentum = set(
            &set(&bytes, "optimizer", Some("momentum")),
            "momentum",
            Some("0.9"),
        );
        let empty_v = rewrite(&momentum, |ts, _| {
            let t = ts.iter_mut().find(|t| t.0 == "optimizer.v").unwrap();
            (t.2, t.3) = (vec![0], vec![]);
        });
        let back = parse(Path::new("m"), &empty_v).unwrap().0.training.unwrap();
        assert_eq!(back.state.v, vec![0.0; 53]);
        let empty_m = rewrite(&momentum, |ts, _| {
            let t = ts.iter_mut().find(|t| t.0 == "optimizer.m").unwrap();
            (t.2, t.3) = (vec![0], vec![]);
        });
        parse_err(&empty_m, &["tensor optimizer.m", "optimizer=momentum"]);
    }

    #[test]
    fn optimizer_settings_that_cannot_train_are_refused_on_load() {
        let bytes = saved(&full());
        parse_err(
            &set(&bytes, "lr", Some("-1")),
            &["metadata optimizer", "learning rate"],
        );
        parse_err(&set(&bytes, "lr", Some("NaN")), &["metadata optimizer"]);
        parse_err(&set(&bytes, "eps", Some("0")), &["metadata eps"]);
        parse_err(
            &set(&bytes, "optimizer_step", Some("4294967296")),
            &["metadata optimizer_step", "2^32"],
        );
    }

    #[test]
    fn check_compatible_reports_both_architectures() {
        let c = model(MlpConfig::new(784, &[256], 10));
        let p = Path::new("run/model.safetensors");
        assert!(check_compatible(p, &c, &c.config.clone().with_loss(Loss::Mse)).is_ok());
        let msg = "checkpoint is 784-256-10 relu but the command asks for 784-128-10 relu";
        let r = check_compatible(p, &c, &MlpConfig::new(784, &[128], 10));
        assert_err(r, &["run/model.safetensors: metadata widths: ", msg]);
        let tanh = c.config.clone().with_activation(Activation::Tanh);
        assert_err(
            check_compatible(p, &c, &tanh),
            &["metadata activations", "784-256-10 tanh"],
        );
    }

    #[test]
    fn save_into_missing_directory_fails_naming_the_path_and_leaves_nothing() {
        let dir = TestDir::new("ckpt-missing");
        let p = dir.join("no/such/dir/model.safetensors");
        assert!(matches!(save(&p, &full()), Err(Error::Io { .. })));
        assert_err(save(&p, &full()), &[&format!("{}: create", p.display())]);
        assert!(!dir.join("no").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn failed_save_leaves_previous_file_byte_identical() {
        let dir = TestDir::new("ckpt-keep");
        let p = dir.join("model.safetensors");
        save(&p, &full()).unwrap();
        let before = std::fs::read(&p).unwrap();
        let mut short = full();
        short.params.pop();
        assert!(matches!(save(&p, &short), Err(Error::Shape { .. })));
        let normalization = Some(Normalization {
            mean: vec![0.0],
            std: vec![1.0],
        });
        let bad_norm = Checkpoint {
            normalization,
            ..full()
        };
        assert!(matches!(save(&p, &bad_norm), Err(Error::Shape { .. })));
        let mut bad_m = full();
        bad_m.training.as_mut().unwrap().state.m.pop();
        assert!(matches!(save(&p, &bad_m), Err(Error::Shape { .. })));
        let mut bad_cfg = full();
        bad_cfg.config.activations.pop();
        assert!(matches!(save(&p, &bad_cfg), Err(Error::Config { .. })));
        assert_eq!(std::fs::read(&p).unwrap(), before);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temporary is left"
        );
    }
}
