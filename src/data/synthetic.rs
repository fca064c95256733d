//! Deterministic synthetic datasets generated from [`crate::rng::Rng`].
//!
//! The same arguments and seed give bit-identical data on every platform (the generator and
//! its transcendental functions are portable).

use super::Dataset;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The names accepted by [`builtin`].
pub const BUILTIN: &[&str] = &["spirals", "xor", "circles", "teacher", "wave", "wave3"];

/// XORed into the seed to generate a built-in dataset's test set.
const TEST_SEED_XOR: u64 = 0x5EED_7E57;

/// XORed into the seed that draws the teacher network, so its weights differ from its inputs.
const TEACHER_NET_XOR: u64 = 0x7EAC_4E72_0000_0001;

fn dataset(
    name: &str,
    features: Vec<f32>,
    labels: Vec<u32>,
    n_features: usize,
    n_classes: usize,
) -> Dataset {
    Dataset {
        name: name.to_string(),
        features,
        labels,
        n_features,
        n_classes: n_classes.max(1),
        targets: Vec::new(),
        n_targets: 0,
        class_names: Vec::new(),
    }
}

/// A smooth regression problem: x₁, x₂ uniform in [−1, 1], target 0 is
/// `sin(3·x₁)·x₂ + 0.05·ε` (ε standard normal); with `n_targets` = 3 the other targets are
/// `cos(2·x₁) + x₂²` and `x₁·x₂` (each with the same noise). `n_targets` is 1 to 3.
pub fn wave(n: usize, n_targets: usize, seed: u64) -> Dataset {
    let k = n_targets.clamp(1, 3);
    let mut rng = Rng::new(seed);
    let mut features = Vec::with_capacity(2 * n);
    let mut targets = Vec::with_capacity(k * n);
    for _ in 0..n {
        let x1 = rng.uniform_range(-1.0, 1.0);
        let x2 = rng.uniform_range(-1.0, 1.0);
        features.extend([x1 as f32, x2 as f32]);
        let ys = [(3.0 * x1).sin() * x2, (2.0 * x1).cos() + x2 * x2, x1 * x2];
        for y in &ys[..k] {
            targets.push((y + 0.05 * rng.normal()) as f32);
        }
    }
    Dataset::regression("wave", features, targets, 2, k).expect("finite synthetic regression data")
}

/// The classic spiral: `n_per_class` points per arm, radius `i/(n-1)`, angle `4j + 4r + noise·N(0,1)`.
///
/// Two features, `n_classes` classes (at least 1), points ordered class by class.
pub fn spirals(n_per_class: usize, n_classes: usize, noise: f64, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let n = n_per_class * n_classes;
    let mut features = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    for j in 0..n_classes {
        for i in 0..n_per_class {
            let r = if n_per_class > 1 {
                i as f64 / (n_per_class - 1) as f64
            } else {
                0.0
            };
            let t = 4.0 * j as f64 + 4.0 * r + noise * rng.normal();
            features.push((r * libm::sin(t)) as f32);
            features.push((r * libm::cos(t)) as f32);
            labels.push(j as u32);
        }
    }
    dataset("spirals", features, labels, 2, n_classes)
}

/// XOR: points uniform in [-1, 1]², label `(x > 0) xor (y > 0)`, then `noise·N(0,1)` added to each coordinate.
pub fn xor(n: usize, noise: f64, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut features = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let x = rng.uniform_range(-1.0, 1.0);
        let y = rng.uniform_range(-1.0, 1.0);
        labels.push(u32::from((x > 0.0) != (y > 0.0)));
        features.push((x + noise * rng.normal()) as f32);
        features.push((y + noise * rng.normal()) as f32);
    }
    dataset("xor", features, labels, 2, 2)
}

/// Two concentric circles, radius 1 (class 0) and 0.5 (class 1), alternating, with `noise·N(0,1)` on each coordinate.
pub fn circles(n: usize, noise: f64, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut features = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = (i % 2) as u32;
        let radius = if class == 0 { 1.0 } else { 0.5 };
        let angle = rng.uniform_range(0.0, 2.0 * std::f64::consts::PI);
        features.push((radius * libm::cos(angle) + noise * rng.normal()) as f32);
        features.push((radius * libm::sin(angle) + noise * rng.normal()) as f32);
        labels.push(class);
    }
    dataset("circles", features, labels, 2, 2)
}

/// A random teacher: N(0,1) inputs labelled by the argmax of a fixed random one-hidden-layer tanh network.
///
/// Equivalent to [`teacher_with_seeds`] with the same seed for the network and the samples.
pub fn teacher(n: usize, n_features: usize, hidden: usize, n_classes: usize, seed: u64) -> Dataset {
    teacher_with_seeds(n, n_features, hidden, n_classes, seed, seed)
}

/// [`teacher`] with separate seeds for the teacher network and the samples, so a test set can
/// come from the same network as the training set.
pub fn teacher_with_seeds(
    n: usize,
    n_features: usize,
    hidden: usize,
    n_classes: usize,
    net_seed: u64,
    sample_seed: u64,
) -> Dataset {
    let n_features = n_features.max(1);
    let hidden = hidden.max(1);
    let n_classes = n_classes.max(1);
    let mut net = Rng::new(net_seed ^ TEACHER_NET_XOR);
    let s1 = (1.0 / n_features as f64).sqrt();
    let w1: Vec<f64> = (0..hidden * n_features)
        .map(|_| s1 * net.normal())
        .collect();
    let s2 = (1.0 / hidden as f64).sqrt();
    let w2: Vec<f64> = (0..n_classes * hidden).map(|_| s2 * net.normal()).collect();

    let mut rng = Rng::new(sample_seed);
    let mut features = Vec::with_capacity(n * n_features);
    let mut labels = Vec::with_capacity(n);
    let mut x = vec![0f64; n_features];
    let mut h = vec![0f64; hidden];
    for _ in 0..n {
        for v in x.iter_mut() {
            *v = rng.normal();
        }
        for (hk, row) in h.iter_mut().zip(w1.chunks_exact(n_features)) {
            *hk = libm::tanh(row.iter().zip(&x).map(|(w, v)| w * v).sum());
        }
        let mut best = (0u32, f64::NEG_INFINITY);
        for (c, row) in w2.chunks_exact(hidden).enumerate() {
            let score: f64 = row.iter().zip(&h).map(|(w, v)| w * v).sum();
            if score > best.1 {
                best = (c as u32, score);
            }
        }
        labels.push(best.0);
        features.extend(x.iter().map(|&v| v as f32));
    }
    dataset("teacher", features, labels, n_features, n_classes)
}

/// The built-in datasets by name, as (train, test); the test set (a quarter the size) uses seed `seed ^ 0x5EED_7E57`.
pub fn builtin(name: &str, seed: u64) -> Result<(Dataset, Dataset)> {
    let test_seed = seed ^ TEST_SEED_XOR;
    Ok(match name {
        "spirals" => (spirals(200, 3, 0.2, seed), spirals(50, 3, 0.2, test_seed)),
        "xor" => (xor(1000, 0.05, seed), xor(250, 0.05, test_seed)),
        "circles" => (circles(1000, 0.05, seed), circles(250, 0.05, test_seed)),
        "teacher" => (
            teacher_with_seeds(4000, 32, 64, 4, seed, seed),
            teacher_with_seeds(1000, 32, 64, 4, seed, test_seed),
        ),
        "wave" => (wave(1000, 1, seed), wave(250, 1, test_seed)),
        "wave3" => (wave(1000, 3, seed), wave(250, 3, test_seed)),
        other => {
            return Err(Error::config(
                "--dataset",
                format!(
                    "unknown dataset \"{other}\"; choose one of {}",
                    BUILTIN.join(", ")
                ),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rebuilds through `Dataset::new`, which checks shapes, label range and finiteness.
    fn valid(d: &Dataset) {
        Dataset::new(
            d.name.clone(),
            d.features.clone(),
            d.labels.clone(),
            d.n_features,
            d.n_classes,
        )
        .unwrap();
    }

    #[test]
    fn spirals_shape_labels_and_radius() {
        let d = spirals(200, 3, 0.2, 1);
        valid(&d);
        assert_eq!((d.len(), d.n_features, d.n_classes), (600, 2, 3));
        assert_eq!(d.class_counts(), vec![200, 200, 200]);
        // Radius is i/(n-1) exactly; noise only moves the angle.
        let r = |i: usize| f64::from(d.row(i)[0]).hypot(f64::from(d.row(i)[1]));
        assert!(r(200) < 1e-6);
        assert!((r(399) - 1.0).abs() < 1e-6);
        assert!((r(300) - 100.0 / 199.0).abs() < 1e-6);
        assert_eq!(spirals(1, 2, 0.0, 0).len(), 2);
        assert!(spirals(0, 0, 0.1, 0).is_empty());
    }

    #[test]
    fn xor_labels_follow_quadrants_without_noise() {
        let d = xor(500, 0.0, 3);
        valid(&d);
        assert_eq!((d.len(), d.n_features, d.n_classes), (500, 2, 2));
        for i in 0..d.len() {
            let [x, y] = [d.row(i)[0], d.row(i)[1]];
            assert!(x.abs() <= 1.0 && y.abs() <= 1.0);
            assert_eq!(d.labels[i], u32::from((x > 0.0) != (y > 0.0)));
        }
        let c = d.class_counts();
        assert!(c[0] > 200 && c[1] > 200, "{c:?}");
    }

    #[test]
    fn circles_radii_match_classes() {
        let d = circles(400, 0.0, 5);
        valid(&d);
        assert_eq!(d.class_counts(), vec![200, 200]);
        for i in 0..d.len() {
            let r = f64::from(d.row(i)[0]).hypot(f64::from(d.row(i)[1]));
            let want = if d.labels[i] == 0 { 1.0 } else { 0.5 };
            assert!((r - want).abs() < 1e-6, "{r}");
        }
    }

    #[test]
    fn teacher_shape_and_all_classes_present() {
        let d = teacher(2000, 8, 16, 4, 9);
        valid(&d);
        assert_eq!((d.len(), d.n_features, d.n_classes), (2000, 8, 4));
        assert_eq!(d.features.len(), 2000 * 8);
        let c = d.class_counts();
        assert!(c.iter().all(|&k| k > 0), "{c:?}");
    }

    #[test]
    fn generators_are_deterministic_by_seed() {
        assert_eq!(spirals(50, 3, 0.2, 11), spirals(50, 3, 0.2, 11));
        assert_ne!(spirals(50, 3, 0.2, 11), spirals(50, 3, 0.2, 12));
        assert_eq!(xor(100, 0.1, 11), xor(100, 0.1, 11));
        assert_ne!(xor(100, 0.1, 11), xor(100, 0.1, 12));
        assert_eq!(circles(100, 0.1, 11), circles(100, 0.1, 11));
        assert_ne!(circles(100, 0.1, 11), circles(100, 0.1, 12));
        assert_eq!(teacher(100, 4, 8, 3, 11), teacher(100, 4, 8, 3, 11));
        assert_ne!(teacher(100, 4, 8, 3, 11), teacher(100, 4, 8, 3, 12));
    }

    #[test]
    fn teacher_test_set_shares_the_network() {
        // Same samples and network seed → same labels; a different sample seed changes the inputs only.
        let a = teacher_with_seeds(300, 4, 8, 3, 1, 2);
        let b = teacher_with_seeds(300, 4, 8, 3, 1, 2);
        let c = teacher_with_seeds(300, 4, 8, 3, 7, 2);
        assert_eq!(a, b);
        assert_eq!(a.features, c.features);
        assert_ne!(a.labels, c.labels);
    }

    #[test]
    fn builtin_sizes_and_distinct_test_sets() {
        let expect = [
            ("spirals", 600, 150, 2, 3),
            ("xor", 1000, 250, 2, 2),
            ("circles", 1000, 250, 2, 2),
            ("teacher", 4000, 1000, 32, 4),
            ("wave", 1000, 250, 2, 1),
            ("wave3", 1000, 250, 2, 1),
        ];
        for (name, n_train, n_test, k, c) in expect {
            let (train, test) = builtin(name, 42).unwrap();
            valid(&train);
            valid(&test);
            assert_eq!((train.len(), test.len()), (n_train, n_test), "{name}");
            assert_eq!((train.n_features, train.n_classes), (k, c), "{name}");
            assert_eq!((test.n_features, test.n_classes), (k, c), "{name}");
            assert_ne!(train.features[..2 * k], test.features[..2 * k], "{name}");
            assert_eq!(builtin(name, 42).unwrap(), (train, test), "{name}");
        }
        assert_eq!(BUILTIN.len(), expect.len());
    }

    #[test]
    fn wave_targets_follow_the_formula_within_the_noise() {
        let d = wave(2000, 3, 5);
        assert_eq!((d.n_features, d.n_targets, d.len()), (2, 3, 2000));
        let mut worst = 0.0f64;
        for i in 0..d.len() {
            let (x1, x2) = (f64::from(d.row(i)[0]), f64::from(d.row(i)[1]));
            assert!(x1.abs() <= 1.0 && x2.abs() <= 1.0);
            let want = [(3.0 * x1).sin() * x2, (2.0 * x1).cos() + x2 * x2, x1 * x2];
            for (y, w) in d.target_row(i).iter().zip(want) {
                worst = worst.max((f64::from(*y) - w).abs());
            }
        }
        // 0.05·ε with ε ~ N(0, 1): 6000 draws stay within 5σ = 0.25.
        assert!(worst > 0.05 && worst < 0.25, "{worst}");
    }

    #[test]
    fn builtin_teacher_classes_are_not_degenerate() {
        let (train, _) = builtin("teacher", 0).unwrap();
        let counts = train.class_counts();
        assert!(counts.iter().all(|&k| k >= 200), "{counts:?}");
    }

    #[test]
    fn builtin_rejects_unknown_name() {
        let e = builtin("mnist", 0).unwrap_err().to_string();
        assert!(e.contains("--dataset") && e.contains("\"mnist\""), "{e}");
        assert!(e.contains("spirals, xor, circles, teacher"), "{e}");
    }
}
