//! `Trainer::fit` and its events: progress within an epoch after every GPU submit (waiting
//! for the previous one, so the count is of finished work) and every CPU step; an event per
//! epoch with the model; and stopping from either event.

mod common;

use common::gpu;
use wgmlp::data::synthetic;
use wgmlp::{Control, Device, Error, Event, MlpConfig, OptimizerConfig, TrainOptions, Trainer};

fn trainer(device: Device) -> Trainer {
    let (train, test) = synthetic::builtin("xor", 1).unwrap();
    Trainer::builder(
        device,
        &MlpConfig::new(2, &[8], 2),
        OptimizerConfig::sgd(0.1),
    )
    .options(TrainOptions {
        batch_size: 10,
        steps_per_submit: 7,
    })
    .test(test)
    .build(train)
    .unwrap()
}

#[test]
fn fit_reports_progress_and_epochs_on_gpu_and_cpu() {
    for device in [Device::Gpu(gpu().clone()), Device::Cpu] {
        let on_gpu = device.context().is_some();
        let mut t = trainer(device);
        let mut progress = Vec::new();
        let mut epochs = Vec::new();
        let history = t
            .fit(2, |event| {
                match event {
                    Event::Progress { epoch, done, steps } => progress.push((epoch, done, steps)),
                    Event::Epoch { metrics, model } => {
                        assert_eq!(model.params().unwrap().len(), 2 * 8 + 8 + 8 * 2 + 2);
                        epochs.push(metrics.epoch);
                    }
                }
                Ok(Control::Continue)
            })
            .unwrap();
        assert_eq!(history.iter().map(|m| m.epoch).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(epochs, [1, 2]);
        assert_eq!(t.epoch(), 2);
        // 1000 samples in batches of 10: 100 steps; 14 submits of 7 (the last with the rest).
        let steps = 100;
        for epoch in [1, 2] {
            let seen: Vec<(usize, usize)> = progress
                .iter()
                .filter(|p| p.0 == epoch)
                .map(|p| (p.1, p.2))
                .collect();
            assert!(seen.iter().all(|&(_, total)| total == steps), "{seen:?}");
            assert_eq!(seen.last(), Some(&(steps, steps)));
            assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
            let reports = if on_gpu { 14 } else { 100 };
            assert_eq!(seen.len(), reports, "{seen:?}");
        }
        // Asking for 2 epochs again does nothing: they are done.
        assert!(t.fit(2, |_| Ok(Control::Continue)).unwrap().is_empty());
    }
}

#[test]
fn fit_stops_when_the_host_says_so() {
    for device in [Device::Gpu(gpu().clone()), Device::Cpu] {
        // After an epoch: the epochs so far are returned.
        let mut t = trainer(device.clone());
        let history = t
            .fit(5, |event| {
                Ok(match event {
                    Event::Epoch { metrics, .. } if metrics.epoch == 2 => Control::Stop,
                    _ => Control::Continue,
                })
            })
            .unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(t.epoch(), 2);

        // Within an epoch: the work submitted finishes, then Interrupted.
        let mut t = trainer(device.clone());
        let err = t
            .fit(5, |event| {
                Ok(match event {
                    Event::Progress { done, .. } if done >= 20 => Control::Stop,
                    _ => Control::Continue,
                })
            })
            .unwrap_err();
        match err {
            Error::Interrupted {
                epoch,
                step,
                completed,
            } => {
                assert_eq!((epoch, completed), (1, 0));
                assert!((20..100).contains(&(step as usize)), "step {step}");
            }
            other => panic!("{}: expected Interrupted, got {other}", device.describe()),
        }
        assert_eq!(t.epoch(), 0);
        assert!(t.params().unwrap().iter().all(|p| p.is_finite()));

        // An error from the host ends training with that error.
        let mut t = trainer(device);
        let err = t
            .fit(5, |_| Err(Error::config("host", "stop with this")))
            .unwrap_err();
        assert!(err.to_string().contains("stop with this"), "{err}");
    }
}
