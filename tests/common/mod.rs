//! Helpers shared by the integration tests: one GPU context per test binary, and a
//! tolerance check that prints the first mismatches with their index (as llm.c does).
#![allow(dead_code)]

use std::sync::OnceLock;

use wgmlp::GpuContext;

/// The GPU context of this test binary, opened once. Fails (never skips) when there is no
/// adapter, saying how to install one. Prints the adapter so every log names it.
pub fn gpu() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    let ctx = CTX.get_or_init(|| match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) => panic!(
            "GPU tests need an adapter and none could be opened: {e}\n\
             hint: {}",
            wgmlp::gpu::NO_ADAPTER_HINT
        ),
    });
    eprintln!("[adapter] {}", ctx.adapter_summary());
    ctx
}

/// Checks `|got - want| <= atol + rtol * |want|` elementwise; NaN must meet NaN and an
/// infinity the same infinity. On failure lists the first 10 mismatches with their index and input.
pub fn assert_close(what: &str, inputs: &[f32], got: &[f32], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut bad = Vec::new();
    let mut count = 0usize;
    for i in 0..got.len() {
        let (g, w) = (got[i] as f64, want[i]);
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= atol + rtol * w.abs()
        };
        if !ok {
            count += 1;
            if bad.len() < 10 {
                let x = inputs.get(i).map(|x| format!("{x:e}")).unwrap_or_default();
                bad.push(format!(
                    "  [{i}] x = {x}: got {g:e}, want {w:e}, |diff| = {:e}",
                    (g - w).abs()
                ));
            }
        }
    }
    assert!(
        count == 0,
        "{what}: {count} of {} values outside |got - want| <= {atol:e} + {rtol:e}·|want|; first:\n{}",
        got.len(),
        bad.join("\n")
    );
}

/// Relative error of two vectors in the 2-norm: ‖a − b‖ / max(‖b‖, tiny).
pub fn rel_err_norm(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den.max(1e-300)
}

/// A trainer of a new model of `config` on `device`, sharing copies of the datasets.
pub fn trainer(
    device: wgmlp::Device,
    config: &wgmlp::MlpConfig,
    optimizer: wgmlp::OptimizerConfig,
    train: &wgmlp::Dataset,
    test: Option<&wgmlp::Dataset>,
    options: wgmlp::TrainOptions,
) -> wgmlp::Result<wgmlp::Trainer> {
    let mut builder = wgmlp::Trainer::builder(device, config, optimizer).options(options);
    if let Some(t) = test {
        builder = builder.test(t.clone());
    }
    builder.build(train.clone())
}
