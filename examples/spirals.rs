//! The seed chapter's argument in one run: on the 3-class spiral data a linear model stays
//! near chance, while one hidden ReLU layer (2-64-3) fits it.
//!
//! `cargo run --release --example spirals` (GPU if there is one, else a software adapter;
//! `--cpu` uses the CPU reference path).

use std::sync::Arc;

use wgmlp::data::synthetic;
use wgmlp::{Dataset, Device, GpuContext, MlpConfig, OptimizerConfig, Result, Trainer};

const EPOCHS: usize = 200;

fn train(device: &Device, hidden: &[usize], data: &Arc<Dataset>) -> Result<f32> {
    let config = MlpConfig::new(2, hidden, 3).with_seed(7);
    let mut trainer = Trainer::builder(device.clone(), &config, OptimizerConfig::adam(0.01))
        .batch_size(64)
        .build(data.clone())?;
    for _ in 0..EPOCHS {
        trainer.run_epoch()?;
    }
    let (loss, acc) = trainer.evaluate_train_set()?;
    println!(
        "{:<28} train loss {loss:.4}  train accuracy {acc:.4}",
        config.describe()
    );
    Ok(acc)
}

fn main() -> Result<()> {
    let device = if std::env::args().any(|a| a == "--cpu") {
        Device::Cpu
    } else {
        Device::Gpu(GpuContext::new()?)
    };
    println!("device: {}", device.describe());
    let data = Arc::new(synthetic::spirals(200, 3, 0.2, 0));
    println!(
        "spirals: {} points, {} classes; Adam lr 0.01, batch 64, {EPOCHS} epochs",
        data.len(),
        data.n_classes
    );
    let linear = train(&device, &[], &data)?;
    let mlp = train(&device, &[64], &data)?;
    println!("linear model {linear:.4} vs one hidden layer {mlp:.4}");
    println!("final train accuracy {mlp:.4}");
    Ok(())
}
