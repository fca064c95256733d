//! The matmul core choice: timed once per shape class and adapter, cached on disk, reused.
//! (Which core wins is the adapter's business; the tests check the mechanism, not the timing.)

use wgmlp::GpuContext;
use wgmlp::gpu::MatmulVariant;
use wgmlp::gpu::autotune::{Autotuner, Policy, shape_class};
use wgmlp::gpu::tune;

#[test]
fn autotune_times_once_caches_on_disk_and_reuses_the_choice() {
    let dir = std::env::temp_dir().join(format!("wgmlp-autotune-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("autotune.json");
    let mut ctx = GpuContext::new().expect("adapter");
    eprintln!("[adapter] {}", ctx.adapter_summary());
    ctx.get_mut().unwrap().autotune = Autotuner::with(&ctx.info, Policy::Auto, Some(path.clone()));
    let v = tune::choose(&ctx, 64, 40, 32, 0, 1280).unwrap();
    assert_eq!(ctx.autotune.tunings(), 1);
    // Same shape class (64x64x32): no second timing.
    assert_eq!(tune::choose(&ctx, 50, 36, 32, 0, 1152).unwrap(), v);
    assert_eq!(ctx.autotune.tunings(), 1);
    // A layer the vec4 cores cannot run is timed among the cores that can run it.
    let unaligned = tune::choose(&ctx, 64, 40, 30, 0, 1200).unwrap();
    assert!(!unaligned.needs_vec4(), "{unaligned:?}");
    assert_eq!(ctx.autotune.tunings(), 2);
    // A new process (here: a new tuner) reads the choice from the cache file.
    let again = Autotuner::with(&ctx.info, Policy::Auto, Some(path.clone()));
    assert_eq!(
        again.choices(),
        vec![
            (shape_class(64, 40, 32), v),
            (
                format!("{}:scalar+tiled", shape_class(64, 40, 30)),
                unaligned
            )
        ]
    );
    assert_eq!(
        again
            .choose(64, 40, 32, &MatmulVariant::ALL, |_| panic!(
                "a cached choice is not timed again"
            ))
            .unwrap(),
        v
    );
    assert_eq!(again.tunings(), 0);
    // Forcing a core overrides the cache.
    let forced = Autotuner::with(&ctx.info, Policy::Force(MatmulVariant::Scalar), Some(path));
    assert_eq!(
        forced
            .choose(64, 40, 32, &MatmulVariant::ALL, |_| panic!(
                "a forced core is not timed"
            ))
            .unwrap(),
        MatmulVariant::Scalar
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
