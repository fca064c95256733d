//! The library writes nothing unless asked: no files in the home or cache directories (the
//! autotune and fused-kernel caches stay in memory without `ContextOptions::cache_dir`) and
//! nothing on stdout or stderr. The work runs in a child process of this test binary with
//! `HOME` and `XDG_CACHE_HOME` pointing at empty directories; the parent then checks them
//! and the child's output.

mod common;

use std::process::Command;
use std::sync::Arc;

use wgmlp::{
    ContextOptions, Control, Device, GpuContext, KernelChoice, MlpConfig, OptimizerConfig,
    Predictor, Trainer,
};

const CHILD: &str = "WGMLP_QUIET_LIBRARY_CHILD";

/// The library's work: open a context, autotune and time the fused kernel against the
/// layered path (both caches), train, evaluate and predict.
#[test]
fn library_work_in_a_child_process() {
    if std::env::var_os(CHILD).is_none() {
        return; // run by the parent below, with the environment it sets
    }
    let ctx = GpuContext::new().expect("adapter");
    assert!(ctx.cache_dir.is_none());
    let (train, test) = wgmlp::data::synthetic::builtin("spirals", 1).unwrap();
    let config = MlpConfig::new(2, &[16, 16], 3).with_seed(1);
    for kernel in [KernelChoice::Auto, KernelChoice::Layered] {
        let mut t = Trainer::builder(
            Device::Gpu(ctx.clone()),
            &config,
            OptimizerConfig::adam(0.01),
        )
        .batch_size(64)
        .kernel(kernel)
        .test(test.clone())
        .build(Arc::new(train.clone()))
        .unwrap();
        t.fit(2, |_| Ok(Control::Continue)).unwrap();
        t.evaluate_train_set().unwrap();
        let p = Predictor::of_model(&Device::Gpu(ctx.clone()), t.model()).unwrap();
        p.probabilities(&train.features[..20], 10).unwrap();
    }
    // An explicit cache directory is written (and only then).
    let dir = std::env::var_os("WGMLP_QUIET_CACHE").expect("set by the parent");
    let opts = ContextOptions {
        cache_dir: Some(dir.into()),
        ..Default::default()
    };
    let cached = GpuContext::open(&wgmlp::AdapterRequest::from_env(), opts).unwrap();
    Device::Gpu(cached)
        .model(&MlpConfig::new(20, &[33], 5), OptimizerConfig::sgd(0.1), 48)
        .unwrap();
}

#[test]
fn the_library_writes_nothing_unless_asked() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    common::gpu(); // fails with the install hint if there is no adapter
    let root = std::env::temp_dir().join(format!("wgmlp-quiet-{}", std::process::id()));
    let (home, xdg, cache) = (root.join("home"), root.join("xdg"), root.join("cache"));
    for d in [&home, &xdg, &cache] {
        std::fs::create_dir_all(d).unwrap();
    }
    // Mesa keeps its own shader cache under XDG_CACHE_HOME: point it where it was, so the
    // child does not recompile every shader (and the listing below is the library's).
    let mesa_cache = std::env::var_os("MESA_SHADER_CACHE_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache"))
                })
                .map(|c| c.join("mesa_shader_cache"))
        })
        .unwrap_or_else(|| root.join("mesa"));
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "library_work_in_a_child_process", "--nocapture"])
        .env(CHILD, "1")
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", &xdg)
        .env("WGMLP_QUIET_CACHE", &cache)
        .env("MESA_SHADER_CACHE_DIR", &mesa_cache)
        .env_remove("WGMLP_CACHE_DIR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let listing = |d: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path().display().to_string())
            .filter(|p| !p.ends_with("mesa_shader_cache")) // the driver's, if it ignores the variable
            .collect()
    };
    assert!(
        listing(&home).is_empty(),
        "written to HOME: {:?}",
        listing(&home)
    );
    assert!(
        listing(&xdg).is_empty(),
        "written to XDG_CACHE_HOME: {:?}",
        listing(&xdg)
    );
    assert!(
        listing(&cache).iter().any(|p| p.ends_with("autotune.json")),
        "the explicit cache directory was not used: {:?}",
        listing(&cache)
    );
    // The test harness prints its own lines; nothing else may appear. Mesa's loader warns
    // about XDG_RUNTIME_DIR on some machines: that line is the driver's, not the library's.
    let ours = |l: &&str| {
        !l.trim().is_empty()
            && !l.starts_with("running ")
            && !l.starts_with("test ")
            && !l.contains("XDG_RUNTIME_DIR")
    };
    let extra: Vec<&str> = stdout.lines().chain(stderr.lines()).filter(ours).collect();
    assert!(
        extra.is_empty(),
        "the library printed:\n{}",
        extra.join("\n")
    );
    std::fs::remove_dir_all(&root).unwrap();
}
