//! Progress within an epoch: the trainer reports steps done after every GPU submit (waiting
//! for the previous one, so the count is of finished work) and every CPU step.

mod common;

use std::sync::{Arc, Mutex};

use common::gpu;
use wgmlp::data::synthetic;
use wgmlp::{MlpConfig, OptimizerConfig, TrainOptions, Trainer};

#[test]
fn progress_is_reported_within_each_epoch_on_gpu_and_cpu() {
    let (train, test) = synthetic::builtin("xor", 1).unwrap();
    let config = MlpConfig::new(2, &[8], 2);
    let options = TrainOptions {
        batch_size: 10,
        steps_per_submit: 7,
    };
    for on_gpu in [true, false] {
        let mut t = if on_gpu {
            let o = options.clone();
            Trainer::gpu(
                gpu(),
                &config,
                OptimizerConfig::sgd(0.1),
                &train,
                Some(&test),
                o,
            )
        } else {
            Trainer::cpu(
                &config,
                OptimizerConfig::sgd(0.1),
                &train,
                Some(&test),
                options.clone(),
            )
        }
        .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        t.set_progress(Box::new(move |done, total| {
            sink.lock().unwrap().push((done, total))
        }));
        t.run_epoch().unwrap();
        let seen = seen.lock().unwrap().clone();
        // 1000 samples in batches of 10: 100 steps; 14 submits of 7 (the last with the rest).
        let steps = 100;
        assert!(seen.iter().all(|&(_, total)| total == steps), "{seen:?}");
        assert_eq!(seen.last(), Some(&(steps, steps)));
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
        let reports = if on_gpu { 14 } else { 100 };
        assert_eq!(seen.len(), reports, "{seen:?}");
    }
}
