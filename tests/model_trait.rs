//! One test body for every model behind the `Model` trait: the GPU's layered model and the
//! CPU reference run the same code for every activation and every optimizer, and must agree.
//!
//! Tolerance: 2e-3 relative (plus 1e-5 absolute) on losses and parameters after three
//! steps. Both sides compute in f32 but sum in different orders (the GPU's matmul cores
//! split and vectorise their reductions), so results differ by rounding, which the optimizers
//! then carry into the parameters; Adam's normalised update amplifies it for gradients near
//! zero, which the absolute term covers.

mod common;

use std::sync::Arc;

use common::gpu;
use wgmlp::optim::OptimizerKind;
use wgmlp::{
    Activation, Checkpoint, Control, Device, GpuContext, GpuMlp, MlpConfig, Model, OptimizerConfig,
    Predictor, Target, Trainer,
};

/// What one model did: losses of three steps, then its parameters, its optimizer state's step
/// count, its outputs and its gradients on the first batch.
struct Run {
    losses: Vec<f32>,
    params: Vec<f32>,
    step: u64,
    outputs: Vec<f32>,
    grads: Vec<f32>,
}

/// The generic body: only `Model` methods.
fn exercise(model: &mut dyn Model, x: &[f32], labels: &[u32], batch: usize) -> Run {
    let name = model.device_name();
    let n = model.config().n_params();
    assert_eq!(model.params().unwrap().len(), n, "{name}");
    let outputs = model.forward(x, batch).unwrap();
    assert_eq!(outputs.len(), batch * model.config().output, "{name}");
    let before = model.params().unwrap();
    let (_, grads) = model
        .loss_and_gradients(x, Target::Labels(labels), batch)
        .unwrap();
    assert_eq!(grads.len(), n, "{name}");
    assert_eq!(
        model.params().unwrap(),
        before,
        "{name}: gradients moved the parameters"
    );
    let mut losses = Vec::new();
    for _ in 0..3 {
        let r = model.train_step(x, Target::Labels(labels), batch).unwrap();
        assert!(r.loss.is_finite() && r.correct <= batch, "{name}: {r:?}");
        losses.push(r.loss);
    }
    let state = model.optimizer_state().unwrap();
    assert_eq!(state.step, 3, "{name}");
    // Parameters and optimizer state round-trip through the trait.
    let params = model.params().unwrap();
    model.set_params(&params).unwrap();
    model.set_optimizer_state(&state).unwrap();
    assert_eq!(model.params().unwrap(), params, "{name}");
    assert_eq!(model.optimizer_state().unwrap().step, 3, "{name}");
    // Wrong lengths are typed errors, not panics.
    assert!(model.set_params(&params[1..]).is_err(), "{name}");
    assert!(model.forward(&x[1..], batch).is_err(), "{name}");
    assert!(model.set_lr(f32::NAN).is_err(), "{name}");
    model.set_lr(0.0).unwrap();
    model.train_step(x, Target::Labels(labels), batch).unwrap();
    assert_eq!(model.params().unwrap(), params, "{name}: lr 0 still moved");
    Run {
        losses,
        params,
        step: state.step,
        outputs,
        grads,
    }
}

fn close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 + 2e-3 * w.abs(),
            "{what}[{i}]: GPU {g} vs CPU {w}"
        );
    }
}

#[test]
fn every_activation_and_optimizer_agrees_on_gpu_and_cpu_through_the_trait() {
    // 7 inputs, two hidden layers of odd widths, 3 classes, a batch of 5.
    let batch = 5;
    let x: Vec<f32> = (0..batch * 7)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
        .collect();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 3).collect();
    let kinds = [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
    ];
    let mut cases = 0;
    for (name, act) in Activation::all() {
        for kind in kinds {
            let config = MlpConfig::new(7, &[9, 6], 3)
                .with_activation(act)
                .with_seed(3);
            let opt = OptimizerConfig::new(kind, 0.05);
            let mut runs = Vec::new();
            for device in [Device::Gpu(gpu().clone()), Device::Cpu] {
                let mut model = device.model(&config, opt, batch).unwrap();
                runs.push(exercise(&mut *model, &x, &labels, batch));
            }
            let what = format!("{name} {kind}");
            let (g, c) = (&runs[0], &runs[1]);
            assert_eq!(g.step, c.step);
            close(&format!("{what} outputs"), &g.outputs, &c.outputs);
            close(&format!("{what} gradients"), &g.grads, &c.grads);
            close(&format!("{what} losses"), &g.losses, &c.losses);
            close(&format!("{what} parameters"), &g.params, &c.params);
            cases += 1;
        }
    }
    assert_eq!(cases, Activation::all().len() * 4);
}

/// Models, trainers, predictors and contexts are owned values: they can live in one struct
/// with their context and move to another thread.
#[test]
fn models_trainers_and_predictors_are_static_and_send() {
    fn send_static<T: Send + 'static>() {}
    fn sync<T: Sync>() {}
    send_static::<GpuContext>();
    sync::<GpuContext>();
    send_static::<GpuMlp>();
    send_static::<Box<dyn Model>>();
    send_static::<Trainer>();
    send_static::<Predictor>();
    sync::<Predictor>();

    struct App {
        device: Device,
        trainer: Trainer,
    }
    let (train, _) = wgmlp::data::synthetic::builtin("xor", 1).unwrap();
    let config = MlpConfig::new(2, &[8], 2).with_seed(1);
    let device = Device::Gpu(gpu().clone());
    let trainer = Trainer::builder(device.clone(), &config, OptimizerConfig::adam(0.01))
        .batch_size(50)
        .build(Arc::new(train))
        .unwrap();
    let mut app = App { device, trainer };
    let handle = std::thread::spawn(move || {
        app.trainer.run_epoch().unwrap();
        let predictor = Predictor::of_model(&app.device, app.trainer.model()).unwrap();
        let classes = predictor.classes(&[0.5, 0.5, -0.5, 0.5], 2).unwrap();
        (app.trainer.epoch(), classes.len())
    });
    assert_eq!(handle.join().unwrap(), (1, 2));
}

/// The forward-only GPU predictor gives the training model's outputs, the CPU's within f32
/// rounding, across batches past its 1,024-row pass.
#[test]
fn predictor_matches_the_models_on_both_devices() {
    let config = MlpConfig::new(3, &[16], 4).with_seed(9);
    let params = config.init_params();
    let n = 1500;
    let x: Vec<f32> = (0..n * 3).map(|i| ((i % 17) as f32 - 8.0) / 4.0).collect();
    let gpu_p = Predictor::new(&Device::Gpu(gpu().clone()), &config, &params).unwrap();
    let cpu_p = Predictor::new(&Device::Cpu, &config, &params).unwrap();
    let (g, c) = (gpu_p.logits(&x, n).unwrap(), cpu_p.logits(&x, n).unwrap());
    close("predictor logits", &g, &c);
    let mut model = Device::Cpu
        .model_from_params(&config, OptimizerConfig::sgd(0.1), n, &params)
        .unwrap();
    assert_eq!(model.forward(&x, n).unwrap(), c);
    let p = gpu_p.probabilities(&x, n).unwrap();
    assert!(
        p.chunks(4)
            .all(|r| (r.iter().sum::<f32>() - 1.0).abs() < 1e-5)
    );
    assert_eq!(gpu_p.classes(&x, n).unwrap(), cpu_p.classes(&x, n).unwrap());
    assert!(gpu_p.logits(&x[1..], n).is_err());
    assert!(Predictor::new(&Device::Cpu, &config, &params[1..]).is_err());
}

/// Save through the library and resume: two epochs, a checkpoint with the optimizer state, a
/// new trainer from it and a third epoch give the parameters of three uninterrupted epochs,
/// bit for bit, on both devices.
#[test]
fn a_checkpoint_of_a_model_resumes_training_exactly() {
    let (train, test) = wgmlp::data::synthetic::builtin("circles", 3).unwrap();
    let (train, test) = (Arc::new(train), Arc::new(test));
    let config = MlpConfig::new(2, &[12, 6], 2).with_seed(5);
    let opt = OptimizerConfig::adam(0.01);
    let dir = std::env::temp_dir().join(format!("wgmlp-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for device in [Device::Gpu(gpu().clone()), Device::Cpu] {
        let build = |params: Option<Vec<f32>>| {
            let mut b = Trainer::builder(device.clone(), &config, opt)
                .batch_size(64)
                .test(Arc::clone(&test));
            if let Some(p) = params {
                b = b.params(p);
            }
            b.build(Arc::clone(&train)).unwrap()
        };
        let mut straight = build(None);
        straight.fit(3, |_| Ok(Control::Continue)).unwrap();

        let mut first = build(None);
        first.fit(2, |_| Ok(Control::Continue)).unwrap();
        let path = dir.join("model.safetensors");
        let ckpt = Checkpoint::of_model(first.model(), Some(first.epoch())).unwrap();
        wgmlp::checkpoint::save(&path, &ckpt).unwrap();

        let loaded = wgmlp::checkpoint::load(&path).unwrap();
        let state = loaded.training.expect("saved with the optimizer state");
        let mut resumed = build(Some(loaded.params.clone()));
        resumed
            .restore(&loaded.params, &state.state, state.epoch)
            .unwrap();
        let more = resumed.fit(3, |_| Ok(Control::Continue)).unwrap();
        assert_eq!(more.len(), 1, "{}", device.describe());
        assert_eq!(
            resumed.params().unwrap(),
            straight.params().unwrap(),
            "{}",
            device.describe()
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A diverged step is an error that keeps the parameters, on every model; training then goes
/// on (the GPU models clear their divergence flag once they have reported it, as the CPU
/// reference has none to clear).
#[test]
fn training_goes_on_after_a_diverged_step() {
    let config = MlpConfig::new(2, &[4], 2)
        .with_task(wgmlp::Task::Regress)
        .with_loss(wgmlp::Loss::Mse)
        .with_seed(2);
    let x = [0.5f32, -0.5, 1.0, 0.25];
    let fused = wgmlp::FusedMlp::new(gpu(), &config, OptimizerConfig::sgd(0.1), 2).unwrap();
    let mut models: Vec<Box<dyn Model>> = vec![Box::new(fused)];
    for device in [Device::Gpu(gpu().clone()), Device::Cpu] {
        models.push(device.model(&config, OptimizerConfig::sgd(0.1), 2).unwrap());
    }
    for model in &mut models {
        let name = model.device_name();
        let before = model.params().unwrap();
        let bad = [f32::INFINITY, 0.0, 0.0, 0.0];
        let e = model.train_step(&x, Target::Values(&bad), 2).unwrap_err();
        assert!(matches!(e, wgmlp::Error::Diverged { .. }), "{name}: {e}");
        assert_eq!(model.params().unwrap(), before, "{name}");
        let good = [0.1f32, 0.2, 0.3, 0.4];
        let r = model.train_step(&x, Target::Values(&good), 2).unwrap();
        assert!(r.loss.is_finite(), "{name}");
        assert_ne!(
            model.params().unwrap(),
            before,
            "{name}: stuck after the divergence"
        );
    }
}
