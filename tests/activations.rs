//! Every activation: GPU kernels vs the CPU f64 reference, the reference's derivatives vs
//! finite differences, and the textbook's identities.

mod common;

use common::{assert_close, gpu};
use wgmlp::gpu::elementwise;
use wgmlp::rng::Rng;
use wgmlp::{ACTIVATION_NAMES, Activation, GpuContext};

/// Tolerance of the f32 kernels against the f64 reference: an absolute 1e-6 (f32 carries
/// ~7 digits, and near the zeros of f' a difference of two O(1) terms leaves an absolute,
/// not relative, rounding error of a few ulps of 1) plus a relative 1e-5 (exp/log on GPUs are
/// specified to a few ulps, ~3e-7 relative, and our formulas chain at most ~10 such operations).
const ATOL: f64 = 1e-6;
const RTOL: f64 = 1e-5;

/// Inputs every test covers: zeros, tiny, moderate, the overflow range of exp (|x| ≈ 88),
/// far past it, the largest finite floats, ±inf and NaN.
fn edge_values() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        1e-7,
        1e-3,
        0.05,
        0.1,
        0.5,
        1.0,
        2.0,
        8.0,
        20.0,
        50.0,
        88.0,
        89.0,
        100.0,
        1000.0,
        1e10,
        1e30,
        f32::MAX,
        f32::INFINITY,
    ];
    let negatives: Vec<f32> = v.iter().map(|x| -x).collect();
    v.extend(negatives);
    v.push(f32::NAN);
    v
}

/// A few thousand random inputs: most in [-10, 10], some log-uniform up to ±1e4.
fn random_inputs(seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut v: Vec<f32> = (0..3000)
        .map(|_| rng.uniform_range(-10.0, 10.0) as f32)
        .collect();
    v.extend((0..1000).map(|_| {
        let mag = 10f64.powf(rng.uniform_range(-6.0, 4.0));
        (if rng.uniform() < 0.5 { -mag } else { mag }) as f32
    }));
    v.extend(edge_values());
    v
}

#[test]
fn gpu_forward_matches_cpu_f64_for_every_activation() {
    let ctx = gpu();
    let x = random_inputs(1);
    for (name, act) in Activation::all() {
        let got = elementwise::forward(ctx, act, &x).unwrap();
        let want: Vec<f64> = x.iter().map(|&v| act.forward_f64(v as f64)).collect();
        assert_close(&format!("{name} forward"), &x, &got, &want, ATOL, RTOL);
    }
}

#[test]
fn gpu_backward_matches_cpu_f64_for_every_activation() {
    let ctx = gpu();
    let z = random_inputs(2);
    let mut rng = Rng::new(3);
    let dy: Vec<f32> = z
        .iter()
        .map(|_| rng.uniform_range(-2.0, 2.0) as f32)
        .collect();
    for (name, act) in Activation::all() {
        let got = elementwise::backward(ctx, act, &z, &dy).unwrap();
        let want: Vec<f64> = z
            .iter()
            .zip(&dy)
            .map(|(&z, &d)| d as f64 * act.grad_f64(z as f64))
            .collect();
        // dy is at most 2 in magnitude, so the absolute part scales by 2.
        assert_close(
            &format!("{name} backward"),
            &z,
            &got,
            &want,
            2.0 * ATOL,
            RTOL,
        );
    }
}

#[test]
fn gpu_and_cpu_f32_agree_with_parameters_other_than_the_defaults() {
    let ctx = gpu();
    let x = random_inputs(4);
    for spec in [
        "prelu:0.1",
        "swish:2",
        "swish:0.5",
        "leaky_relu:0.2",
        "elu:0.5",
    ] {
        let act: Activation = spec.parse().unwrap();
        let got = elementwise::forward(ctx, act, &x).unwrap();
        let want: Vec<f64> = x.iter().map(|&v| act.forward_f64(v as f64)).collect();
        assert_close(spec, &x, &got, &want, ATOL, RTOL);
        let cpu32: Vec<f32> = x.iter().map(|&v| act.forward_f32(v)).collect();
        assert_close(&format!("{spec} cpu f32"), &x, &cpu32, &want, ATOL, RTOL);
    }
}

#[test]
fn stable_limits_on_the_gpu() {
    let ctx = gpu();
    let cases: &[(&str, f32, f32)] = &[
        ("sigmoid", -1000.0, 0.0),
        ("sigmoid", 1000.0, 1.0),
        ("sigmoid", f32::NEG_INFINITY, 0.0),
        ("sigmoid", f32::INFINITY, 1.0),
        ("tanh", 50.0, 1.0),
        ("tanh", -50.0, -1.0),
        ("tanh", f32::INFINITY, 1.0),
        ("swish", -1000.0, 0.0),
        ("swish", f32::NEG_INFINITY, 0.0),
        ("swish", f32::INFINITY, f32::INFINITY),
        ("softplus", 1000.0, 1000.0),
        ("softplus", -1000.0, 0.0),
        ("softplus", f32::INFINITY, f32::INFINITY),
        ("gelu", f32::NEG_INFINITY, 0.0),
        ("gelu", f32::INFINITY, f32::INFINITY),
        ("gelu_tanh", f32::NEG_INFINITY, 0.0),
        ("elu", f32::NEG_INFINITY, -1.0),
        ("relu", f32::NEG_INFINITY, 0.0),
    ];
    for &(name, x, want) in cases {
        let act: Activation = name.parse().unwrap();
        let y = elementwise::forward(ctx, act, &[x]).unwrap()[0];
        assert!(
            y == want || (y - want).abs() <= 1e-6 * want.abs(),
            "{name}({x}) = {y}, want {want}"
        );
        let g = elementwise::backward(ctx, act, &[x], &[1.0]).unwrap()[0];
        assert!(g.is_finite(), "{name}'({x}) = {g}, want a finite value");
    }
    for (name, act) in Activation::all() {
        let y = elementwise::forward(ctx, act, &[f32::NAN]).unwrap()[0];
        let g = elementwise::backward(ctx, act, &[f32::NAN], &[1.0]).unwrap()[0];
        assert!(
            y.is_nan() && g.is_nan(),
            "{name}(NaN) = {y}, {name}'(NaN) = {g}"
        );
    }
}

#[test]
fn relu_derivative_at_zero_is_zero_and_prelu_derivative_at_zero_is_alpha() {
    let ctx = gpu();
    let ones = [1.0f32; 2];
    let relu = elementwise::backward(ctx, Activation::Relu, &[0.0, -0.0], &ones).unwrap();
    assert_eq!(relu, vec![0.0, 0.0]);
    assert_eq!(Activation::Relu.grad_f64(0.0), 0.0);
    let prelu = Activation::Prelu { alpha: 0.25 };
    let g = elementwise::backward(ctx, prelu, &[0.0], &[1.0]).unwrap();
    assert_eq!(g, vec![0.25]);
    assert_eq!(prelu.grad_f64(0.0), 0.25);
    // d pReLU / d alpha = min(0, x)
    assert_eq!(prelu.grad_param(-3.0f64), -3.0);
    assert_eq!(prelu.grad_param(2.0f64), 0.0);
}

#[test]
fn cpu_derivatives_match_central_finite_differences() {
    let mut rng = Rng::new(5);
    let xs: Vec<f64> = (0..2000).map(|_| rng.uniform_range(-8.0, 8.0)).collect();
    for (name, act) in Activation::all() {
        for &x in &xs {
            // The piecewise activations have a kink at 0; the difference quotient straddling
            // it is meaningless there.
            if x.abs() < 1e-3 {
                continue;
            }
            let h = 1e-5 * x.abs().max(1.0);
            let fd = (act.forward_f64(x + h) - act.forward_f64(x - h)) / (2.0 * h);
            let an = act.grad_f64(x);
            // Central differences err by h²·f'''/6 (≤ ~1e-10 here) plus cancellation
            // eps·|f|/h (≤ ~2e-10·|f|): 1e-7 + 1e-7·|f| covers both.
            let tol = 1e-7 + 1e-7 * act.forward_f64(x).abs().max(1.0);
            assert!(
                (fd - an).abs() <= tol,
                "{name}'({x}): analytic {an}, finite difference {fd}"
            );
        }
    }
}

#[test]
fn textbook_identities_hold_on_cpu_and_gpu() {
    let ctx = gpu();
    let x: Vec<f32> = (0..161).map(|i| (-8.0 + 0.1 * i as f64) as f32).collect();
    let x2: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
    // tanh(x) + 1 = 2 sigmoid(2x)
    let t = elementwise::forward(ctx, Activation::Tanh, &x).unwrap();
    let s = elementwise::forward(ctx, Activation::Sigmoid, &x2).unwrap();
    for i in 0..x.len() {
        assert!((t[i] + 1.0 - 2.0 * s[i]).abs() < 2e-6, "x = {}", x[i]);
        let xd = x[i] as f64;
        let lhs = Activation::Tanh.forward_f64(xd) + 1.0;
        let rhs = 2.0 * Activation::Sigmoid.forward_f64(2.0 * xd);
        assert!((lhs - rhs).abs() < 1e-14, "x = {xd}");
    }
    // sigmoid' peaks at 0 with 0.25, tanh' at 0 with 1.
    let ones = vec![1.0f32; x.len()];
    for (act, peak) in [(Activation::Sigmoid, 0.25f32), (Activation::Tanh, 1.0)] {
        let g = elementwise::backward(ctx, act, &x, &ones).unwrap();
        let (imax, gmax) = g
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |m, (i, &v)| if v > m.1 { (i, v) } else { m });
        assert!(x[imax].abs() < 1e-6, "{act} peak at x = {}", x[imax]);
        assert!((gmax - peak).abs() < 1e-6, "{act} peak {gmax}");
        assert_eq!(act.grad_f64(0.0), peak as f64);
    }
}

/// The lengths the issue names, including one past a full vec4 and one large buffer; each
/// result is compared element by element.
#[test]
fn odd_and_large_lengths() {
    let ctx = gpu();
    let mut rng = Rng::new(9);
    for len in [0usize, 1, 3, 4, 5, 1023, 65536 * 64 + 5] {
        let x: Vec<f32> = (0..len)
            .map(|_| rng.uniform_range(-4.0, 4.0) as f32)
            .collect();
        let y = elementwise::forward(ctx, Activation::SILU, &x).unwrap();
        let want: Vec<f64> = x
            .iter()
            .map(|&v| Activation::SILU.forward_f64(v as f64))
            .collect();
        assert_close(&format!("silu len {len}"), &x, &y, &want, ATOL, RTOL);
        let dx = elementwise::backward(ctx, Activation::Relu, &x, &x).unwrap();
        let want: Vec<f64> = x
            .iter()
            .map(|&v| v as f64 * Activation::Relu.grad_f64(v as f64))
            .collect();
        assert_close(
            &format!("relu backward len {len}"),
            &x,
            &dx,
            &want,
            0.0,
            0.0,
        );
        assert_eq!(elementwise::copy(ctx, &x).unwrap(), x);
    }
}

/// More workgroups than one grid row holds. A real row holds 65535 workgroups of 1024 floats
/// (256 MiB, past the 128 MiB storage binding limit of lavapipe), so the per-dimension limit is
/// lowered to 7 here: the same 2-D grid code runs with rows of 7 workgroups.
#[test]
fn grid_with_many_rows_covers_every_element() {
    let mut ctx = GpuContext::new().expect("adapter");
    ctx.get_mut().unwrap().max_workgroups_per_dim = 7;
    let len = 1024 * 7 * 5 + 3; // 5 full rows and one more workgroup
    let x: Vec<f32> = (0..len).map(|i| i as f32 - 1000.0).collect();
    let y = elementwise::forward(&ctx, Activation::Relu, &x).unwrap();
    let want: Vec<f64> = x.iter().map(|&v| (v as f64).max(0.0)).collect();
    assert_close("relu on a 2-D grid", &x, &y, &want, 0.0, 0.0);
}

#[test]
fn every_name_parses_and_mismatched_lengths_are_an_error() {
    assert_eq!(ACTIVATION_NAMES.len(), Activation::all().len());
    let err = elementwise::backward(gpu(), Activation::Relu, &[1.0, 2.0], &[1.0]).unwrap_err();
    assert!(err.to_string().contains("shape mismatch"), "{err}");
}

/// An adapter request nothing matches is a typed error that says what to do, not a panic.
#[test]
fn no_matching_adapter_is_an_error_with_a_hint() {
    let req = wgmlp::AdapterRequest {
        name_contains: Some("no adapter has this name".into()),
        ..wgmlp::AdapterRequest::default()
    };
    let err = GpuContext::open(&req, Default::default()).unwrap_err();
    assert!(matches!(err, wgmlp::Error::NoAdapter { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("no adapter has this name") && text.contains("WGPU_ADAPTER_NAME"),
        "{text}"
    );
}
