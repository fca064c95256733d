//! wgmlp inside an application: a `Brain` owns its device and its model, learns from the
//! application's own `Vec<f32>` features and `Vec<u32>` labels, saves a checkpoint, and a
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
    /// Trains a 2-16-2 classifier on 2 features and a label (0 or 1) per sample.
    fn train(device: Device, features: Vec<f32>, labels: Vec<u32>) -> Result<Brain> {
        let data = Dataset::new("points", features, labels, 2, 2)?;
        let config = MlpConfig::new(2, &[16], 2).with_seed(1);
        let mut trainer = Trainer::builder(device.clone(), &config, OptimizerConfig::adam(0.02))
            .batch_size(32)
            .build(data)?;
        trainer.fit(300, |event| match event {
            Event::Epoch { metrics: m, .. } if m.train_accuracy >= 0.98 => {
                println!(
                    "epoch {}: train accuracy {:.3}, stop",
                    m.epoch, m.train_accuracy
                );
                Ok(Control::Stop)
            }
            _ => Ok(Control::Continue),
        })?;
        let model = trainer.into_model();
        Ok(Brain { device, model })
    }

    /// Saves the architecture and the parameters (a safetensors file).
    fn save(&self, path: &Path) -> Result<()> {
        let ckpt = Checkpoint::new(self.model.config().clone(), self.model.params()?);
        checkpoint::save(path, &ckpt)
    }

    /// A forward-only model of a saved brain, on the same device.
    fn load(&self, path: &Path) -> Result<Predictor> {
        let ckpt = checkpoint::load(path)?;
        Predictor::new(&self.device, &ckpt.config, &ckpt.params)
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
    let device = Device::auto();
    println!("device: {}", device.describe());
    let (features, labels) = xor_grid(20);
    let brain = Brain::train(device, features, labels)?;

    let path = std::env::temp_dir().join(format!("wgmlp-embed-{}.safetensors", std::process::id()));
    brain.save(&path)?;
    let predictor = brain.load(&path)?;
    std::fs::remove_file(&path).ok();

    let (x, y) = xor_grid(16);
    let classes = predictor.classes(&[0.5, 0.5, -0.5, 0.5], 2)?;
    let test = Dataset::new("test grid", x, y, 2, 2)?;
    let accuracy = infer::evaluate(&predictor, &test)?.accuracy;
    println!(
        "reloaded from {}: (0.5, 0.5) -> {}, (-0.5, 0.5) -> {}",
        path.display(),
        classes[0],
        classes[1]
    );
    println!(
        "test accuracy {accuracy:.3} on {} unseen points",
        test.len()
    );
    Ok(())
}
