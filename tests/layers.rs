//! One layer on the GPU (fused forward, backward) vs the CPU f64 reference, for every
//! activation and for shapes that do and do not fit the 32×32 tiles.

mod common;

use common::gpu;
use wgmlp::gpu::MatmulVariant;
use wgmlp::gpu::layer::{self, Shape};
use wgmlp::rng::Rng;
use wgmlp::{Activation, GpuContext};

/// Unit roundoff of f32.
const U: f64 = 1.0 / (1u64 << 24) as f64;

/// Tolerance of an f32 dot product of length K against the exact value, per output:
/// sequential summation errs by at most γ_K·Σ|a_k b_k| with γ_K = K·u/(1 − K·u) (Higham,
/// Accuracy and Stability of Numerical Algorithms, §3.1), so the bound grows with K and with
/// the magnitudes summed, not with the (possibly cancelling) result. We allow 2·γ_K·S plus
/// the activation's own error (1e-6 + 1e-5·|y|), times 1.2 for the activation's slope
/// (|f'| ≤ 1.13 for every activation here).
fn dot_tol(k: usize, s: f64) -> f64 {
    let gamma = k as f64 * U / (1.0 - k as f64 * U);
    1.2 * 2.0 * gamma * s
}

fn random(rng: &mut Rng, n: usize, scale: f64) -> Vec<f32> {
    (0..n).map(|_| (rng.normal() * scale) as f32).collect()
}

struct Case {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    shape: Shape,
}

fn case(seed: u64, m: usize, k: usize, n: usize) -> Case {
    let mut rng = Rng::new(seed);
    Case {
        x: random(&mut rng, m * k, 1.0),
        w: random(&mut rng, k * n, (1.0 / k as f64).sqrt() * 2.0),
        b: random(&mut rng, n, 0.5),
        shape: Shape {
            batch: m,
            fan_in: k,
            fan_out: n,
        },
    }
}

/// The scalar, tiled and (where the shape allows vec4 columns) vec4 cores. (The wide core,
/// whose pipelines take ~1 s each to compile on lavapipe, has its own test below.)
fn variants(c: &Case) -> Vec<MatmulVariant> {
    if c.shape.fan_out % 4 == 0 {
        vec![
            MatmulVariant::Scalar,
            MatmulVariant::Vec4,
            MatmulVariant::Tiled,
        ]
    } else {
        vec![MatmulVariant::Scalar, MatmulVariant::Tiled]
    }
}

fn check_forward(ctx: &GpuContext, act: Activation, c: &Case, what: &str) {
    for v in variants(c) {
        check_forward_with(ctx, v, act, c, &format!("{what} ({v:?})"));
    }
}

fn check_backward(ctx: &GpuContext, act: Activation, c: &Case, what: &str) {
    for v in variants(c) {
        check_backward_with(ctx, v, act, c, &format!("{what} ({v:?})"));
    }
}

fn check_forward_with(
    ctx: &GpuContext,
    variant: MatmulVariant,
    act: Activation,
    c: &Case,
    what: &str,
) {
    let Shape {
        batch: m,
        fan_in: k,
        fan_out: n,
    } = c.shape;
    let (z, y) = layer::forward_with(ctx, variant, act, c.shape, &c.x, &c.w, &c.b).unwrap();
    let mut want_z = vec![0.0f64; m * n];
    let mut tol = vec![0.0f64; m * n];
    for r in 0..m {
        for j in 0..n {
            let (mut s, mut abs) = (c.b[j] as f64, (c.b[j] as f64).abs());
            for i in 0..k {
                let p = c.x[r * k + i] as f64 * c.w[i * n + j] as f64;
                s += p;
                abs += p.abs();
            }
            want_z[r * n + j] = s;
            tol[r * n + j] = dot_tol(k + 1, abs);
        }
    }
    let want_y: Vec<f64> = want_z.iter().map(|&v| act.forward_f64(v)).collect();
    for (name, got, want) in [("Z", &z, &want_z), ("Y", &y, &want_y)] {
        let bad: Vec<String> = (0..got.len())
            .filter(|&i| {
                let t = tol[i] + 1e-6 + 1e-5 * want[i].abs();
                (got[i] as f64 - want[i]).abs() > t
            })
            .take(10)
            .map(|i| format!("[{i}] got {} want {} tol {:e}", got[i], want[i], tol[i]))
            .collect();
        assert!(
            bad.is_empty(),
            "{what} {act} forward {name}:\n{}",
            bad.join("\n")
        );
    }
}

fn check_backward_with(
    ctx: &GpuContext,
    variant: MatmulVariant,
    act: Activation,
    c: &Case,
    what: &str,
) {
    let Shape {
        batch: m,
        fan_in: k,
        fan_out: n,
    } = c.shape;
    let mut rng = Rng::new(99);
    let dz = random(&mut rng, m * n, 0.1);
    let z_prev = random(&mut rng, m * k, 2.0);
    let g = layer::backward_with(ctx, variant, act, c.shape, &c.x, &c.w, &dz, &z_prev).unwrap();
    // dW = Xᵀ·dZ: a sum over the batch.
    let (mut want_dw, mut tol_dw) = (vec![0.0f64; k * n], vec![0.0f64; k * n]);
    let (mut want_db, mut tol_db) = (vec![0.0f64; n], vec![0.0f64; n]);
    for r in 0..m {
        for j in 0..n {
            let d = dz[r * n + j] as f64;
            want_db[j] += d;
            tol_db[j] += d.abs();
            for i in 0..k {
                let p = c.x[r * k + i] as f64 * d;
                want_dw[i * n + j] += p;
                tol_dw[i * n + j] += p.abs();
            }
        }
    }
    // dZ_prev = (dZ·Wᵀ) ⊙ act'(Z_prev): a sum over the outputs.
    let (mut want_dx, mut tol_dx) = (vec![0.0f64; m * k], vec![0.0f64; m * k]);
    for r in 0..m {
        for i in 0..k {
            let (mut s, mut abs) = (0.0, 0.0);
            for j in 0..n {
                let p = dz[r * n + j] as f64 * c.w[i * n + j] as f64;
                s += p;
                abs += p.abs();
            }
            let gprime = act.grad_f64(z_prev[r * k + i] as f64);
            want_dx[r * k + i] = s * gprime;
            tol_dx[r * k + i] = dot_tol(n, abs) * gprime.abs().max(1.0);
        }
    }
    for (name, got, want, tol) in [
        (
            "dW",
            &g.d_w,
            &want_dw,
            tol_dw.iter().map(|&s| dot_tol(m, s)).collect::<Vec<_>>(),
        ),
        (
            "db",
            &g.d_b,
            &want_db,
            tol_db.iter().map(|&s| dot_tol(m, s)).collect(),
        ),
        ("dZ_prev", &g.d_z_prev, &want_dx, tol_dx),
    ] {
        let bad: Vec<String> = (0..got.len())
            .filter(|&i| {
                let t = tol[i] + 1e-7 + 1e-5 * want[i].abs();
                (got[i] as f64 - want[i]).abs() > t
            })
            .take(10)
            .map(|i| format!("[{i}] got {} want {} tol {:e}", got[i], want[i], tol[i]))
            .collect();
        assert!(
            bad.is_empty(),
            "{what} {act} backward {name}:\n{}",
            bad.join("\n")
        );
    }
}

#[test]
fn layer_1x1_to_1_every_activation() {
    let ctx = gpu();
    let c = case(1, 1, 1, 1);
    for (_, act) in Activation::all() {
        check_forward(ctx, act, &c, "1x1->1");
        check_backward(ctx, act, &c, "1x1->1");
    }
}

#[test]
fn layer_37x13_to_29_shapes_not_multiples_of_the_tile() {
    let ctx = gpu();
    let c = case(2, 37, 13, 29);
    for (_, act) in Activation::all() {
        check_forward(ctx, act, &c, "37x13->29");
        check_backward(ctx, act, &c, "37x13->29");
    }
}

#[test]
fn layer_256x784_to_256_the_textbook_hidden_layer() {
    let ctx = gpu();
    let c = case(3, 256, 784, 256);
    for (_, act) in Activation::all() {
        check_forward(ctx, act, &c, "256x784->256");
    }
    for act in [
        Activation::Relu,
        Activation::SILU,
        Activation::Gelu,
        Activation::Tanh,
    ] {
        check_backward(ctx, act, &c, "256x784->256");
    }
}

/// vec4 columns with edge tiles: 60 columns (a partial 64-wide tile), 4 columns (one vec4),
/// and 130 rows (a partial 64-row tile).
#[test]
fn layer_vec4_columns_with_partial_tiles() {
    let ctx = gpu();
    for (m, k, n) in [(1, 1, 4), (130, 7, 60), (65, 33, 68)] {
        let c = case(10 + n as u64, m, k, n);
        for act in [
            Activation::Relu,
            Activation::GeluTanh,
            Activation::Elu { alpha: 1.0 },
        ] {
            check_forward(ctx, act, &c, &format!("{m}x{k}->{n}"));
            check_backward(ctx, act, &c, &format!("{m}x{k}->{n}"));
        }
    }
    let c = case(9, 3, 3, 5);
    let err = layer::forward_with(
        ctx,
        MatmulVariant::Vec4,
        Activation::Relu,
        c.shape,
        &c.x,
        &c.w,
        &c.b,
    );
    assert!(err.is_err(), "vec4 needs fan_out % 4 == 0");
}

/// The wide core (16 rows × 32 columns per invocation, 32 × 256 per workgroup) on the
/// textbook shape, a single vec4, partial row tiles and more than one 256-column tile.
#[test]
fn layer_wide_core_every_tile_edge() {
    let ctx = gpu();
    let wide = |c: &Case, act: Activation, what: &str| {
        check_forward_with(ctx, MatmulVariant::Wide, act, c, what);
        check_backward_with(ctx, MatmulVariant::Wide, act, c, what);
    };
    let textbook = case(20, 256, 784, 256);
    for act in [
        Activation::Relu,
        Activation::Gelu,
        Activation::Prelu { alpha: 0.25 },
    ] {
        wide(&textbook, act, "wide 256x784->256");
    }
    for (m, k, n) in [(1, 1, 4), (45, 17, 300), (33, 5, 8)] {
        wide(
            &case(21 + n as u64, m, k, n),
            Activation::Relu,
            &format!("wide {m}x{k}->{n}"),
        );
    }
}

/// The tiled core (64 × 64 outputs per workgroup, reduction tiles of 16 staged in workgroup
/// memory) at every tile edge: one element, partial row, column and reduction tiles, more than
/// one block each way, and an odd width no vec4 core can run.
#[test]
fn layer_tiled_core_every_tile_edge() {
    let ctx = gpu();
    for (m, k, n) in [
        (1, 1, 1),
        (65, 17, 63),
        (64, 16, 64),
        (130, 33, 129),
        (3, 40, 7),
    ] {
        let c = case(31 + n as u64, m, k, n);
        let what = format!("tiled {m}x{k}->{n}");
        for act in [Activation::Relu, Activation::Sigmoid] {
            check_forward_with(ctx, MatmulVariant::Tiled, act, &c, &what);
            check_backward_with(ctx, MatmulVariant::Tiled, act, &c, &what);
        }
    }
}

/// The subgroup-broadcast forward core (X shared across 8-lane subgroups, 64 × 64 outputs per
/// workgroup), where the adapter has subgroups of 8: partial row and column blocks, one vec4
/// column, reductions split at multiples of 4. Elsewhere it must refuse to run.
#[test]
fn layer_bcast_core_every_tile_edge_or_a_clear_refusal() {
    let ctx = gpu();
    let runs = wgmlp::gpu::matmul::subgroups_of_8(ctx);
    for (m, k, n) in [(1, 4, 4), (70, 20, 68), (64, 784, 64), (9, 8, 132)] {
        let c = case(41 + n as u64, m, k, n);
        let what = format!("bcast {m}x{k}->{n}");
        if !runs {
            let err = layer::forward_with(
                ctx,
                MatmulVariant::Bcast,
                Activation::Relu,
                c.shape,
                &c.x,
                &c.w,
                &c.b,
            );
            assert!(err.is_err(), "{what}: bcast ran without subgroups of 8");
            continue;
        }
        for act in [Activation::Relu, Activation::Tanh] {
            check_forward_with(ctx, MatmulVariant::Bcast, act, &c, &what);
            check_backward_with(ctx, MatmulVariant::Bcast, act, &c, &what);
        }
    }
    if runs {
        let mut split = GpuContext::new().expect("adapter");
        split.get_mut().unwrap().max_loop_trip = 6; // parts of 4 k
        let c = case(47, 13, 22 * 4, 8);
        check_forward_with(
            &split,
            MatmulVariant::Bcast,
            Activation::Relu,
            &c,
            "bcast split",
        );
    }
}

#[test]
fn layer_256x256_to_10_the_textbook_output_layer() {
    let ctx = gpu();
    let c = case(4, 256, 256, 10);
    check_forward(ctx, Activation::Identity, &c, "256x256->10");
    check_backward(ctx, Activation::Relu, &c, "256x256->10");
}

/// Batches past one grid row: the per-dimension limit is lowered to 4 workgroups so the row
/// blocks spill from grid y into grid z (301 rows = 10 row blocks of 32, 5 of 64).
#[test]
fn layer_batch_past_one_workgroup_grid_row() {
    let mut ctx = GpuContext::new().expect("adapter");
    ctx.get_mut().unwrap().max_workgroups_per_dim = 4;
    let c = case(5, 301, 45, 64);
    for act in [
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Prelu { alpha: 0.25 },
    ] {
        check_forward(&ctx, act, &c, "301x45->64 on a 4-wide grid");
        check_backward(&ctx, act, &c, "301x45->64 on a 4-wide grid");
    }
    // Columns that would need more workgroups than a grid row allows are an error, not a wrong answer.
    let wide = case(6, 4, 3, 129);
    let err = layer::forward(
        &ctx,
        Activation::Relu,
        wide.shape,
        &wide.x,
        &wide.w,
        &wide.b,
    )
    .unwrap_err();
    assert!(err.to_string().contains("matmul grid"), "{err}");
}

#[test]
fn layer_large_inputs_saturate_without_nan() {
    let ctx = gpu();
    let mut c = case(7, 9, 5, 7);
    for v in c.x.iter_mut() {
        *v *= 1e4;
    }
    for act in [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::SILU,
        Activation::Softplus,
        Activation::Gelu,
    ] {
        let (z, y) = layer::forward(ctx, act, c.shape, &c.x, &c.w, &c.b).unwrap();
        assert!(z.iter().chain(&y).all(|v| v.is_finite()), "{act}");
        check_forward(ctx, act, &c, "large |x|");
    }
}

#[test]
fn layer_bad_shapes_are_errors() {
    let ctx = gpu();
    let c = case(8, 3, 4, 5);
    let mut bad = c.shape;
    bad.fan_in = 5;
    assert!(layer::forward(ctx, Activation::Relu, bad, &c.x, &c.w, &c.b).is_err());
    bad = c.shape;
    bad.batch = 0;
    assert!(layer::forward(ctx, Activation::Relu, bad, &c.x, &c.w, &c.b).is_err());
}
