//! The seed chapter's argument in one run: on the 3-class spiral data a linear model stays
//! near chance, while one hidden ReLU layer (2-64-3) fits it.
//!
//! `cargo run --release --example spirals` (GPU if there is one, else a software adapter;
//! `--cpu` uses the CPU reference path).

use wgmlp::data::synthetic;
use wgmlp::{GpuContext, MlpConfig, OptimizerConfig, Result, TrainOptions, Trainer};

const EPOCHS: usize = 200;

fn train(ctx: Option<&GpuContext>, hidden: &[usize], data: &wgmlp::Dataset) -> Result<f32> {
    let config = MlpConfig::new(2, hidden, 3).with_seed(7);
    let opt = OptimizerConfig::adam(0.01);
    let options = TrainOptions {
        batch_size: 64,
        ..TrainOptions::default()
    };
    let mut trainer = match ctx {
        Some(ctx) => Trainer::gpu(ctx, &config, opt, data, None, options)?,
        None => Trainer::cpu(&config, opt, data, None, options)?,
    };
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
    let use_cpu = std::env::args().any(|a| a == "--cpu");
    let ctx = if use_cpu {
        None
    } else {
        Some(GpuContext::new()?)
    };
    match &ctx {
        Some(c) => println!("device: {}", c.adapter_summary()),
        None => println!("device: CPU reference"),
    }
    let data = synthetic::spirals(200, 3, 0.2, 0);
    println!(
        "spirals: {} points, {} classes; Adam lr 0.01, batch 64, {EPOCHS} epochs",
        data.len(),
        data.n_classes
    );
    let linear = train(ctx.as_ref(), &[], &data)?;
    let mlp = train(ctx.as_ref(), &[64], &data)?;
    println!("linear model {linear:.4} vs one hidden layer {mlp:.4}");
    println!("final train accuracy {mlp:.4}");
    Ok(())
}
