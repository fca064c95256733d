//! wgmlp inside an application: a `Brain` owns its device and its model, learns from the
//! application's own `Vec<f32>` features and `Vec<u32>` labels and saves a checkpoint; a
//! `Predictor` loaded from that file answers.
//!
//! `cargo run --release --example embed` (a GPU if there is one, else a software adapter,
//! else the CPU reference path).

use std::path::Path;

use wgmlp::checkpoint::{self, Checkpoint};
use wgmlp::{Control, Dataset, Device, Event, MlpConfig, Model, OptimizerConfig};
use wgmlp::{Predictor, Result, Trainer, infer};

/// The application's model: where it runs and what it has learned.
struct Brain {
    device: Device,
    model: Box<dyn Model>,
}

impl Brain {
    /// Trains a 2-16-2 classifier on 2 features and a label (0 or 1) per sample, until it
    /// classifies 98% of them right.
    fn train(device: Device, features: Vec<f32>, labels: Vec<u32>) -> Result<Brain> {
        let data = Dataset::new("points", features, labels, 2, 2)?;
        let config = MlpConfig::new(2, &[16], 2).with_seed(1);
        let mut trainer = Trainer::builder(device.clone(), &config, OptimizerConfig::adam(0.02))
            .batch_size(32)
            .build(data)?;
        let epochs = trainer.fit(300, |event| match event {
            Event::Epoch { metrics, .. } if metrics.train_accuracy >= 0.98 => Ok(Control::Stop),
            _ => Ok(Control::Continue),
        })?;
        println!(
            "trained for {} epochs on {}",
            epochs.len(),
            device.describe()
        );
        let model = trainer.into_model();
        Ok(Brain { device, model })
    }

    /// Saves the architecture and the parameters (a safetensors file).
    fn save(&self, path: &Path) -> Result<()> {
        checkpoint::save(path, &Checkpoint::of_model(&*self.model, None)?)
    }
}

/// `n × n` points on a grid over [-1, 1]², labelled 1 where x and y differ in sign (XOR).
fn xor_grid(n: usize) -> (Vec<f32>, Vec<u32>) {
    let at = |i: usize| (i as f32 + 0.5) / n as f32 * 2.0 - 1.0;
    let points: Vec<(f32, f32)> = (0..n * n).map(|k| (at(k / n), at(k % n))).collect();
    let features = points.iter().flat_map(|&(x, y)| [x, y]).collect();
    let labels = points
        .iter()
        .map(|&(x, y)| u32::from((x > 0.0) != (y > 0.0)))
        .collect();
    (features, labels)
}

fn main() -> Result<()> {
    let (features, labels) = xor_grid(20);
    let brain = Brain::train(Device::auto(), features, labels)?;
    let path = std::env::temp_dir().join(format!("wgmlp-embed-{}.safetensors", std::process::id()));
    brain.save(&path)?;

    let ckpt = checkpoint::load(&path)?;
    std::fs::remove_file(&path).ok();
    let predictor = Predictor::new(&brain.device, &ckpt.config, &ckpt.params)?;
    let (x, y) = xor_grid(16);
    let test = Dataset::new("test grid", x, y, 2, 2)?;
    let accuracy = infer::evaluate(&predictor, &test)?.accuracy;
    println!(
        "reloaded {}: test accuracy {accuracy:.3} on {} new points",
        ckpt.config.describe(),
        test.len()
    );
    Ok(())
}
