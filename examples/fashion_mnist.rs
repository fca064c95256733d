//! The textbook's experiment: an MLP 784-256-10 with ReLU, SGD lr 0.1, batch 256, 10 epochs,
//! on Fashion-MNIST (the book reports about 85% test accuracy).
//!
//! ```text
//! cargo run --release --example fashion_mnist -- DIR [EPOCHS]
//! ```
//! where DIR holds train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz),
//! t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz).

use wgmlp::data::idx;
use wgmlp::{
    Control, Device, Error, Event, GpuContext, MlpConfig, OptimizerConfig, Result, Trainer,
};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or_else(|| {
        Error::config(
            "DIR",
            "usage: fashion_mnist DIR [EPOCHS] (DIR holds the four Fashion-MNIST IDX files)",
        )
    })?;
    let epochs: usize = match args.next() {
        Some(e) => e
            .parse()
            .map_err(|_| Error::config("EPOCHS", format!("{e:?} is not a number")))?,
        None => 10,
    };
    let (train, test) = idx::read_dir(dir.as_ref())?;
    let device = Device::Gpu(GpuContext::new()?);
    let config = MlpConfig::new(train.n_features, &[256], train.n_classes);
    println!(
        "{}: {} train / {} test samples, {} on {}",
        train.name,
        train.len(),
        test.len(),
        config.describe(),
        device.describe()
    );
    let mut trainer = Trainer::builder(device, &config, OptimizerConfig::sgd(0.1))
        .batch_size(256)
        .test(test)
        .build(train)?;
    trainer.fit(epochs, |event| {
        if let Event::Epoch { metrics: m, .. } = event {
            println!(
                "epoch {:>2}  train loss {:.4}  train acc {:.4}  test acc {:.4}  {:.0} samples/s",
                m.epoch,
                m.train_loss,
                m.train_accuracy,
                m.test_accuracy.unwrap_or(f32::NAN),
                m.samples_per_second
            );
        }
        Ok(Control::Continue)
    })?;
    Ok(())
}
