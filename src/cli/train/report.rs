//! What a training run leaves behind: the summary, the checkpoint (with the metrics history
//! and, after an early stop, why it stopped), `--metrics-json` and the plots.

use std::path::Path;

use wgmlp::checkpoint::{self, Checkpoint, TrainingState};
use wgmlp::infer::{self, Device};
use wgmlp::plot::{self, Series};
use wgmlp::{Dataset, EpochMetrics, Error, MlpConfig, Result, Trainer};

use super::super::common::{Source, adapter_json, write_json};
use super::{Plan, TrainArgs};

/// An epoch's metrics as JSON (the `epochs` entries of `--metrics-json` and of the
/// checkpoint's `metrics` metadata).
fn epoch_json(m: &EpochMetrics) -> serde_json::Value {
    serde_json::json!({
        "epoch": m.epoch, "train_loss": m.train_loss, "train_accuracy": m.train_accuracy,
        "test_loss": m.test_loss, "test_accuracy": m.test_accuracy,
        "seconds": m.seconds, "samples_per_second": m.samples_per_second,
    })
}

/// The inverse of [`epoch_json`]; `None` for an entry that is not one.
pub(super) fn epoch_from_json(v: &serde_json::Value) -> Option<EpochMetrics> {
    let f = |k: &str| v.get(k).and_then(|x| x.as_f64());
    Some(EpochMetrics {
        epoch: usize::try_from(v.get("epoch")?.as_u64()?).ok()?,
        train_loss: f("train_loss")? as f32,
        train_accuracy: f("train_accuracy")? as f32,
        test_loss: f("test_loss").map(|x| x as f32),
        test_accuracy: f("test_accuracy").map(|x| x as f32),
        seconds: f("seconds").unwrap_or(0.0),
        samples_per_second: f("samples_per_second").unwrap_or(0.0),
    })
}

/// What the outputs of a run are made from.
pub(super) struct Report<'a> {
    pub(super) args: &'a TrainArgs,
    pub(super) plan: &'a Plan,
    pub(super) source: &'a Source<'a>,
    pub(super) device: Device<'a>,
    pub(super) history: &'a [EpochMetrics],
    pub(super) seconds: f64,
}

/// After the last epoch: the summary, the checkpoint, the metrics and the plots.
pub(super) fn finish(
    r: &Report,
    trainer: &mut Trainer,
    save_path: Option<&Path>,
    train: &Dataset,
) -> Result<()> {
    let last = r.history.last().cloned();
    let (final_train_loss, final_train_acc) = trainer.evaluate_train_set()?;
    let summary = match last.as_ref().and_then(|m| m.test_accuracy.zip(m.test_loss)) {
        Some((acc, loss)) => format!("test accuracy {acc:.4}, test loss {loss:.4}"),
        None => format!("train accuracy {final_train_acc:.4}"),
    };
    println!(
        "trained {} for {} epochs in {:.1} s on {}: {summary}",
        r.plan.config.describe(),
        trainer.epoch,
        r.seconds,
        r.device.describe()
    );
    if let Some(path) = save_path {
        let with_state = r.args.checkpoint_every.is_some() || r.args.resume.is_some();
        save(path, r.plan, trainer, with_state, r.history, None)?;
        let what = match (r.args.save.is_none(), with_state) {
            (true, _) => format!(
                " (the --resume checkpoint, now at epoch {}; --resume it again to go on)",
                trainer.epoch
            ),
            (false, true) => format!(
                " (epoch {}, with the optimizer state for --resume)",
                trainer.epoch
            ),
            (false, false) => String::new(),
        };
        println!("saved {}{what}", path.display());
    }
    let last = last.as_ref();
    let final_json = serde_json::json!({
        "epochs": trainer.epoch,
        "test_accuracy": last.and_then(|m| m.test_accuracy),
        "test_loss": last.and_then(|m| m.test_loss),
        "train_accuracy": final_train_acc,
        "train_loss": final_train_loss,
        "seconds": r.seconds,
    });
    write_outputs(r, final_json)?;
    if let Some(path) = &r.args.plot_boundary {
        draw_boundary(path, r.device, &r.plan.config, &trainer.params()?, train)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Training stopped early (a signal, a divergence, another error): the parameters it
/// reached are written where a checkpoint was asked for, with the reason in the metadata,
/// and so are the metrics and curves so far; then the error is returned.
pub(super) fn stopped(
    r: &Report,
    trainer: &Trainer,
    save_path: Option<&Path>,
    e: Error,
) -> Result<()> {
    let event = match &e {
        Error::Interrupted {
            epoch,
            step,
            completed,
        } => serde_json::json!({"interrupted": {
            "epoch": epoch, "steps": step, "epochs_complete": completed,
        }}),
        Error::Diverged { epoch, step, loss } => serde_json::json!({"diverged": {
            "epoch": epoch, "step": step, "loss": loss.to_string(),
        }}),
        _ => return Err(e),
    };
    let (key, value) = event
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("one key");
    match save_path {
        Some(path) => {
            save(
                path,
                r.plan,
                trainer,
                true,
                r.history,
                Some((&key, value.clone())),
            )?;
            let what = match &e {
                Error::Diverged { .. } => "the parameters from before that step".to_string(),
                _ => format!(
                    "the parameters after the last finished step ({} epochs complete)",
                    trainer.epoch
                ),
            };
            eprintln!(
                "saved {what} to {} with the optimizer state (metadata metrics.{key}); continue with --resume {}",
                path.display(),
                path.display()
            );
        }
        None => eprintln!("nothing saved: give --save FILE.safetensors to keep the parameters"),
    }
    let last = r.history.last();
    let final_json = serde_json::json!({
        "epochs": trainer.epoch,
        "test_accuracy": last.and_then(|m| m.test_accuracy),
        "test_loss": last.and_then(|m| m.test_loss),
        "seconds": r.seconds,
        key: value,
    });
    write_outputs(r, final_json)?;
    Err(e)
}

/// `--metrics-json` (the whole history, a resumed run's included) and `--plot`.
fn write_outputs(r: &Report, final_json: serde_json::Value) -> Result<()> {
    if let Some(path) = &r.args.metrics_json {
        let c = &r.plan.config;
        let value = serde_json::json!({
            "adapter": adapter_json(r.device),
            "config": {
                "widths": c.widths(),
                "activations": c.activations.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "learn_prelu": c.learn_prelu,
                "loss": c.loss.to_string(),
                "init": c.init.to_string(),
                "optimizer": r.plan.optimizer.kind.to_string(),
                "lr": r.plan.optimizer.lr,
                "weight_decay": r.plan.optimizer.weight_decay,
                "batch_size": r.plan.batch_size,
                "epochs": r.plan.epochs,
                "seed": c.seed,
                "normalize": if r.plan.normalization.is_some() { "standard" } else { "none" },
                "data": r.source.describe(),
                "resumed_from": r.args.resume.as_ref().map(|p| p.display().to_string()),
            },
            "epochs": r.history.iter().map(epoch_json).collect::<Vec<_>>(),
            "final": final_json,
        });
        write_json(path, &value)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &r.args.plot {
        draw_curves(path, r.history)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Writes the checkpoint: the model, the optimizer state when `with_state`, and in the
/// `metrics` metadata the history of every epoch (and `event`, e.g. a divergence).
pub(super) fn save(
    path: &Path,
    plan: &Plan,
    trainer: &Trainer,
    with_state: bool,
    history: &[EpochMetrics],
    event: Option<(&str, serde_json::Value)>,
) -> Result<()> {
    let training = if with_state {
        Some(TrainingState {
            epoch: trainer.epoch,
            optimizer: plan.optimizer,
            state: trainer.optimizer_state()?,
        })
    } else {
        None
    };
    let mut metrics = serde_json::json!({
        "epochs": history.iter().map(epoch_json).collect::<Vec<_>>(),
    });
    if let (Some((key, value)), Some(map)) = (event, metrics.as_object_mut()) {
        map.insert(key.to_string(), value);
    }
    checkpoint::save_with_metrics(
        path,
        &Checkpoint {
            config: plan.config.clone(),
            params: trainer.params()?,
            normalization: plan.normalization.clone(),
            training,
        },
        Some(&metrics.to_string()),
    )
}

fn draw_curves(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let pts = |f: &dyn Fn(&EpochMetrics) -> Option<f32>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|m| f(m).map(|v| (m.epoch as f64, v as f64)))
            .collect()
    };
    let mut series = vec![
        Series {
            label: "train loss",
            points: pts(&|m| Some(m.train_loss)),
        },
        Series {
            label: "train acc",
            points: pts(&|m| Some(m.train_accuracy)),
        },
    ];
    let test = pts(&|m| m.test_accuracy);
    if !test.is_empty() {
        series.push(Series {
            label: "test acc",
            points: test,
        });
    }
    wgmlp::fsutil::write_atomic_with(path, |tmp| plot::line_chart(tmp, "epoch", "", &series))
}

fn draw_boundary(
    path: &Path,
    device: Device,
    config: &MlpConfig,
    params: &[f32],
    data: &Dataset,
) -> Result<()> {
    if data.n_features != 2 {
        return Err(Error::config(
            "--plot-boundary",
            format!(
                "needs 2-D data; this dataset has {} features",
                data.n_features
            ),
        ));
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for i in 0..data.len() {
        let r = data.row(i);
        x0 = x0.min(r[0] as f64);
        x1 = x1.max(r[0] as f64);
        y0 = y0.min(r[1] as f64);
        y1 = y1.max(r[1] as f64);
    }
    let (px, py) = (0.1 * (x1 - x0).max(1e-3), 0.1 * (y1 - y0).max(1e-3));
    let (xr, yr) = ((x0 - px, x1 + px), (y0 - py, y1 + py));
    let res = 200;
    let mut grid = Vec::with_capacity(res * res * 2);
    for j in 0..res {
        for i in 0..res {
            grid.push((xr.0 + (i as f64 + 0.5) * (xr.1 - xr.0) / res as f64) as f32);
            grid.push((yr.0 + (j as f64 + 0.5) * (yr.1 - yr.0) / res as f64) as f32);
        }
    }
    let logits = infer::logits(device, config, params, &grid, res * res)?;
    let classes: Vec<usize> = logits
        .chunks(config.output)
        .map(wgmlp::reference::argmax)
        .collect();
    let points: Vec<(f64, f64, usize)> = (0..data.len())
        .map(|i| {
            (
                data.row(i)[0] as f64,
                data.row(i)[1] as f64,
                data.labels[i] as usize,
            )
        })
        .collect();
    wgmlp::fsutil::write_atomic_with(path, |tmp| {
        plot::decision_regions(tmp, xr, yr, res, &classes, &points)
    })
}
