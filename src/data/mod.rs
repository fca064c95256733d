//! Datasets: the in-memory [`Dataset`], feature standardisation, and the readers for IDX
//! (MNIST), CSV and the built-in synthetic datasets.

pub mod csv;
pub mod idx;
pub mod idx_dir;
pub mod synthetic;

use std::path::Path;

use crate::error::{Error, Result};
use crate::rng::Rng;

/// The largest class index a data file may hold: wgmlp accepts at most 65,536 classes (the
/// output layer has one unit per class), so a label like 4000000000 is a broken file, not a
/// request for a model with four billion outputs.
pub const MAX_LABEL: u32 = 65_535;

/// A dataset held in memory: row-major features and integer labels (classification) or
/// float targets (regression: `n_targets > 0`, every label 0 and one class).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// A human-readable name (file stem, directory name or built-in name).
    pub name: String,
    /// `n_samples × n_features` values, row-major.
    pub features: Vec<f32>,
    /// `n_samples` labels, each `< n_classes`.
    pub labels: Vec<u32>,
    /// Number of features per sample (> 0).
    pub n_features: usize,
    /// Number of classes (>= 1).
    pub n_classes: usize,
    /// `n_samples × n_targets` regression targets, row-major (empty for classification).
    pub targets: Vec<f32>,
    /// Target columns per sample (0 for classification).
    pub n_targets: usize,
    /// Names of the classes (index = class), when the labels were strings; else empty.
    pub class_names: Vec<String>,
}

fn invalid(name: &str, message: impl ToString) -> Error {
    Error::InvalidData {
        what: format!("dataset {name:?}"),
        message: message.to_string(),
    }
}

impl Dataset {
    /// Builds a dataset after checking shapes, label range and that every feature is finite.
    pub fn new(
        name: impl Into<String>,
        features: Vec<f32>,
        labels: Vec<u32>,
        n_features: usize,
        n_classes: usize,
    ) -> Result<Dataset> {
        let name = name.into();
        if n_features == 0 {
            return Err(invalid(
                &name,
                "n_features is 0; every sample needs at least one feature",
            ));
        }
        if n_classes == 0 {
            return Err(invalid(
                &name,
                "n_classes is 0; a classification dataset needs at least one class",
            ));
        }
        let expected = labels.len().checked_mul(n_features);
        if expected != Some(features.len()) {
            return Err(invalid(
                &name,
                format!(
                    "features has {} values but {} labels × {} features would need {}",
                    features.len(),
                    labels.len(),
                    n_features,
                    expected.map_or_else(|| "more than usize::MAX".to_string(), |e| e.to_string())
                ),
            ));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= n_classes)
        {
            return Err(invalid(
                &name,
                format!(
                    "label {l} of sample {i} is out of range; n_classes is {n_classes} (labels 0..={})",
                    n_classes - 1
                ),
            ));
        }
        if let Some((k, x)) = features.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(invalid(
                &name,
                format!(
                    "feature {} of sample {} is {x}; every feature must be finite",
                    k % n_features,
                    k / n_features
                ),
            ));
        }
        Ok(Dataset {
            name,
            features,
            labels,
            n_features,
            n_classes,
            targets: Vec::new(),
            n_targets: 0,
            class_names: Vec::new(),
        })
    }

    /// Builds a regression dataset: `n_targets` float targets per sample, each finite.
    pub fn regression(
        name: impl Into<String>,
        features: Vec<f32>,
        targets: Vec<f32>,
        n_features: usize,
        n_targets: usize,
    ) -> Result<Dataset> {
        let name = name.into();
        if n_targets == 0 {
            return Err(invalid(
                &name,
                "n_targets is 0; a regression dataset needs at least one target column",
            ));
        }
        if targets.len() % n_targets != 0 {
            return Err(invalid(
                &name,
                format!(
                    "{} target values is not a multiple of {n_targets} targets per sample",
                    targets.len()
                ),
            ));
        }
        let n = targets.len() / n_targets;
        if let Some((k, y)) = targets.iter().enumerate().find(|(_, y)| !y.is_finite()) {
            return Err(invalid(
                &name,
                format!(
                    "target {} of sample {} is {y}; every target must be finite",
                    k % n_targets,
                    k / n_targets
                ),
            ));
        }
        let mut data = Dataset::new(name, features, vec![0; n], n_features, 1)?;
        data.targets = targets;
        data.n_targets = n_targets;
        Ok(data)
    }

    /// True for a regression dataset (float targets).
    pub fn is_regression(&self) -> bool {
        self.n_targets > 0
    }

    /// The targets of sample `i` (empty for classification).
    pub fn target_row(&self, i: usize) -> &[f32] {
        &self.targets[i * self.n_targets..(i + 1) * self.n_targets]
    }

    /// Σ over samples and target columns of (y − column mean)², in f64: the denominator of
    /// a (variance-weighted) R². Each column is multiplied by `scale[j]` first when given,
    /// so standardised targets give the total in the original units.
    pub fn target_sum_of_squares(&self, scale: Option<&[f32]>) -> f64 {
        let k = self.n_targets;
        let n = self.len();
        if k == 0 || n == 0 {
            return 0.0;
        }
        let mut total = 0.0;
        for j in 0..k {
            let s = scale.and_then(|s| s.get(j)).map_or(1.0, |&s| f64::from(s));
            let col = || {
                self.targets
                    .iter()
                    .skip(j)
                    .step_by(k)
                    .map(|&y| f64::from(y))
            };
            let mean = col().sum::<f64>() / n as f64;
            total += col().map(|y| (y - mean) * (y - mean)).sum::<f64>() * s * s;
        }
        total
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The features of sample `i` (panics if `i >= len()`, like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.n_features..(i + 1) * self.n_features]
    }

    /// How many samples each class has (length `n_classes`).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.n_classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Deterministic shuffled split into (train, test) with the given test fraction (0 < f < 1), by seed.
    ///
    /// The test set has `round(len · f)` samples, kept between 1 and `len - 1` when `len >= 2`;
    /// a fraction outside (0, 1) is clamped (NaN counts as 0). Both halves keep the name and
    /// `n_classes` of `self`.
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let n = self.len();
        let f = if test_fraction.is_nan() {
            0.0
        } else {
            test_fraction.clamp(0.0, 1.0)
        };
        let mut n_test = ((n as f64) * f).round() as usize;
        if n >= 2 && f > 0.0 && f < 1.0 {
            n_test = n_test.clamp(1, n - 1);
        }
        let n_test = n_test.min(n);
        let mut order: Vec<usize> = (0..n).collect();
        Rng::new(seed).shuffle(&mut order);
        let (test_idx, train_idx) = order.split_at(n_test);
        (self.subset(train_idx), self.subset(test_idx))
    }

    /// A seeded validation split: `(train, validation)` with `round(n · fraction)`
    /// validation samples, stratified for classification (each class contributes
    /// `round(n_c · fraction)` of its samples, so the class proportions are kept), a plain
    /// shuffled split for regression. Both keep the sample order of `self`. An error when
    /// `fraction` is not in (0, 1) or either side would be empty.
    pub fn validation_split(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::config(
                "--val-split",
                format!("{fraction} is not a fraction between 0 and 1 (e.g. 0.1)"),
            ));
        }
        let mut rng = Rng::new(seed ^ 0x7A11_D5E7);
        let mut val = Vec::new();
        if self.is_regression() {
            let mut order: Vec<usize> = (0..self.len()).collect();
            rng.shuffle(&mut order);
            let k = (self.len() as f64 * fraction).round() as usize;
            val.extend_from_slice(&order[..k.min(self.len())]);
        } else {
            let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); self.n_classes];
            for (i, &l) in self.labels.iter().enumerate() {
                by_class[l as usize].push(i);
            }
            for members in &mut by_class {
                rng.shuffle(members);
                let k = (members.len() as f64 * fraction).round() as usize;
                val.extend_from_slice(&members[..k]);
            }
        }
        let mut in_val = vec![false; self.len()];
        for &i in &val {
            in_val[i] = true;
        }
        let train: Vec<usize> = (0..self.len()).filter(|&i| !in_val[i]).collect();
        let val: Vec<usize> = (0..self.len()).filter(|&i| in_val[i]).collect();
        if val.is_empty() || train.is_empty() {
            return Err(Error::config(
                "--val-split",
                format!(
                    "{fraction} of {} samples leaves {} for validation and {} for training; both need at least one",
                    self.len(),
                    val.len(),
                    train.len()
                ),
            ));
        }
        Ok((self.subset(&train), self.subset(&val)))
    }

    /// The subset of the given sample indices (in that order); panics if an index is `>= len()`.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut features = Vec::with_capacity(indices.len() * self.n_features);
        let mut labels = Vec::with_capacity(indices.len());
        let mut targets = Vec::with_capacity(indices.len() * self.n_targets);
        for &i in indices {
            features.extend_from_slice(self.row(i));
            labels.push(self.labels[i]);
            if self.n_targets > 0 {
                targets.extend_from_slice(self.target_row(i));
            }
        }
        Dataset {
            name: self.name.clone(),
            features,
            labels,
            n_features: self.n_features,
            n_classes: self.n_classes,
            targets,
            n_targets: self.n_targets,
            class_names: self.class_names.clone(),
        }
    }
}

/// Per-feature standardisation statistics (fit on the training set, stored in checkpoints).
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    /// Mean of each feature.
    pub mean: Vec<f32>,
    /// Population standard deviation of each feature (1.0 for constant features).
    pub std: Vec<f32>,
}

impl Normalization {
    /// Mean and population standard deviation of each feature, computed in f64; a std below
    /// 1e-12 (constant feature) is stored as 1.0. An empty dataset gives mean 0 and std 1.
    pub fn fit(data: &Dataset) -> Normalization {
        Self::fit_columns(&data.features, data.n_features)
    }

    /// The same statistics for a regression dataset's targets (one per target column).
    pub fn fit_targets(data: &Dataset) -> Normalization {
        Self::fit_columns(&data.targets, data.n_targets)
    }

    /// Mean and std of each of the `k` columns of a row-major matrix.
    fn fit_columns(values: &[f32], k: usize) -> Normalization {
        let n = values.len().checked_div(k).unwrap_or(0);
        if n == 0 || k == 0 {
            return Normalization {
                mean: vec![0.0; k],
                std: vec![1.0; k],
            };
        }
        let mut sum = vec![0f64; k];
        for row in values.chunks_exact(k) {
            for (s, &x) in sum.iter_mut().zip(row) {
                *s += f64::from(x);
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
        let mut sq = vec![0f64; k];
        for row in values.chunks_exact(k) {
            for ((s, &x), m) in sq.iter_mut().zip(row).zip(&mean) {
                let d = f64::from(x) - m;
                *s += d * d;
            }
        }
        let std = sq
            .iter()
            .map(|s| {
                let sd = (s / n as f64).sqrt();
                if sd.is_finite() && sd >= 1e-12 {
                    sd as f32
                } else {
                    1.0
                }
            })
            .collect();
        Normalization {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// Builds statistics read back from a checkpoint, checking equal lengths, finite means and positive stds.
    pub fn from_parts(mean: Vec<f32>, std: Vec<f32>) -> Result<Normalization> {
        let bad = |message: String| Error::InvalidData {
            what: "normalization statistics".to_string(),
            message,
        };
        if mean.len() != std.len() {
            return Err(bad(format!(
                "{} means but {} standard deviations",
                mean.len(),
                std.len()
            )));
        }
        if let Some((j, m)) = mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(bad(format!(
                "mean of feature {j} is {m}; it must be finite"
            )));
        }
        if let Some((j, s)) = std
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0))
        {
            return Err(bad(format!(
                "std of feature {j} is {s}; it must be finite and > 0"
            )));
        }
        Ok(Normalization { mean, std })
    }

    /// Number of features these statistics describe.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Applies `(x - mean) / std` to each row of a row-major matrix with `mean.len()` columns.
    pub fn apply(&self, features: &mut [f32]) -> Result<()> {
        let k = self.mean.len();
        if k == 0 || self.std.len() != k {
            return Err(Error::shape(
                "normalization",
                "equal, non-zero numbers of means and standard deviations",
                format!("{} means and {} standard deviations", k, self.std.len()),
            ));
        }
        if features.len() % k != 0 {
            return Err(Error::shape(
                "normalization",
                format!("a multiple of {k} values ({k} features per row)"),
                format!("{} values", features.len()),
            ));
        }
        for row in features.chunks_exact_mut(k) {
            for ((x, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *x = (*x - m) / s;
            }
        }
        Ok(())
    }

    /// Applies the statistics to a dataset in place, checking that its feature count matches.
    pub fn apply_to(&self, data: &mut Dataset) -> Result<()> {
        if data.n_features != self.mean.len() {
            return Err(Error::shape(
                "normalization",
                format!("{} features", self.mean.len()),
                format!("{} features in dataset {:?}", data.n_features, data.name),
            ));
        }
        self.apply(&mut data.features)
    }

    /// Standardises a regression dataset's targets in place (`(y − mean) / std`).
    pub fn apply_to_targets(&self, data: &mut Dataset) -> Result<()> {
        if data.n_targets != self.mean.len() {
            return Err(Error::shape(
                "target normalization",
                format!("{} targets", self.mean.len()),
                format!("{} targets in dataset {:?}", data.n_targets, data.name),
            ));
        }
        self.apply(&mut data.targets)
    }

    /// Undoes [`Self::apply`] on a row-major matrix: `x · std + mean`.
    pub fn invert(&self, values: &mut [f32]) {
        let k = self.mean.len();
        if k == 0 {
            return;
        }
        for row in values.chunks_exact_mut(k) {
            for ((x, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *x = *x * s + m;
            }
        }
    }
}

/// Reads a whole file, mapping failures to [`Error::Io`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, "read", e))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::fsutil::write_atomic(path, bytes)
}

/// Test helpers shared by the data module's tests.
#[cfg(test)]
pub(crate) mod testutil {
    use std::path::{Path, PathBuf};

    /// A fresh directory under the system temp dir, removed on drop.
    pub struct TestDir(PathBuf);

    impl TestDir {
        pub fn new(name: &str) -> TestDir {
            let p = std::env::temp_dir().join(format!("wgmlp-data-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TestDir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
        pub fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    /// Asserts that `r` failed with a message containing every one of `parts`; returns the message.
    pub fn assert_err<T: std::fmt::Debug>(r: crate::error::Result<T>, parts: &[&str]) -> String {
        let e = r.unwrap_err().to_string();
        for part in parts {
            assert!(e.contains(part), "{part:?} not in error: {e}");
        }
        e
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Dataset {
        let features = (0..20).map(|x| x as f32).collect();
        Dataset::new("small", features, vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 0], 2, 3).unwrap()
    }

    #[test]
    fn new_accepts_valid_data_and_rows_index_correctly() {
        let d = small();
        assert_eq!(d.len(), 10);
        assert!(!d.is_empty());
        assert_eq!(d.row(3), &[6.0, 7.0]);
        assert_eq!(d.class_counts(), vec![4, 3, 3]);
    }

    #[test]
    fn new_rejects_nan_naming_sample_and_feature() {
        let mut f = vec![0.0f32; 6];
        f[5] = f32::NAN;
        let e = Dataset::new("d", f, vec![0, 0, 1], 2, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("feature 1 of sample 2"), "{e}");
        assert!(e.contains("NaN"), "{e}");
        let mut f = vec![0.0f32; 6];
        f[2] = f32::INFINITY;
        let e = Dataset::new("d", f, vec![0, 0, 1], 2, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("feature 0 of sample 1"), "{e}");
    }

    #[test]
    fn new_rejects_out_of_range_label_and_bad_shapes() {
        let e = Dataset::new("d", vec![0.0; 4], vec![0, 2], 2, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 2 of sample 1"), "{e}");
        assert!(Dataset::new("d", vec![0.0; 5], vec![0, 1], 2, 2).is_err());
        assert!(Dataset::new("d", vec![], vec![], 0, 2).is_err());
        assert!(Dataset::new("d", vec![], vec![], 1, 0).is_err());
        assert!(Dataset::new("d", vec![], vec![], 1, 1).unwrap().is_empty());
    }

    #[test]
    fn split_is_deterministic_disjoint_and_sized() {
        let d = small();
        let (tr, te) = d.split(0.3, 7);
        assert_eq!((tr.len(), te.len()), (7, 3));
        assert_eq!(d.split(0.3, 7), (tr.clone(), te.clone()));
        assert_ne!(d.split(0.3, 8), (tr.clone(), te.clone()));
        // Every row appears exactly once across the two halves (rows are unique here).
        let mut firsts: Vec<f32> = tr
            .features
            .iter()
            .chain(&te.features)
            .step_by(2)
            .copied()
            .collect();
        firsts.sort_by(f32::total_cmp);
        assert_eq!(firsts, (0..10).map(|i| (2 * i) as f32).collect::<Vec<_>>());
        assert_eq!(d.split(0.01, 1).1.len(), 1);
        assert_eq!(d.split(0.99, 1).0.len(), 1);
    }

    #[test]
    fn validation_split_is_stratified_seeded_and_refuses_empty_sides() {
        let labels: Vec<u32> = (0..100).map(|i| u32::from(i % 10 == 0)).collect();
        let d = Dataset::new("v", (0..100).map(|x| x as f32).collect(), labels, 1, 2).unwrap();
        let (tr, va) = d.validation_split(0.2, 3).unwrap();
        // 90 of class 0 and 10 of class 1: 18 and 2 go to validation.
        assert_eq!((tr.len(), va.len()), (80, 20));
        assert_eq!(va.class_counts(), vec![18, 2]);
        assert_eq!(
            d.validation_split(0.2, 3).unwrap(),
            (tr.clone(), va.clone())
        );
        assert_ne!(d.validation_split(0.2, 4).unwrap().1, va);
        let mut all: Vec<f32> = tr.features.iter().chain(&va.features).copied().collect();
        all.sort_by(f32::total_cmp);
        assert_eq!(all, d.features);
        for f in [0.0, 1.0, -0.5, f64::NAN, 0.001] {
            let e = d.validation_split(f, 1).unwrap_err().to_string();
            assert!(e.contains("--val-split"), "{f}: {e}");
        }
        let r = Dataset::regression("r", vec![0.0; 10], vec![1.0; 10], 1, 1).unwrap();
        let (tr, va) = r.validation_split(0.3, 1).unwrap();
        assert_eq!((tr.len(), va.len(), va.n_targets), (7, 3, 1));
    }

    #[test]
    fn subset_keeps_order() {
        let d = small();
        let s = d.subset(&[4, 1]);
        assert_eq!(s.features, vec![8.0, 9.0, 2.0, 3.0]);
        assert_eq!(s.labels, vec![1, 1]);
        assert_eq!(s.n_classes, 3);
    }

    #[test]
    fn normalization_gives_zero_mean_unit_std_and_handles_constant_column() {
        let mut f = Vec::new();
        for i in 0..100 {
            f.extend_from_slice(&[i as f32 * 3.0 + 10.0, 5.0, (i % 7) as f32]);
        }
        let mut d = Dataset::new("n", f, vec![0; 100], 3, 1).unwrap();
        let norm = Normalization::fit(&d);
        assert_eq!(norm.std[1], 1.0);
        assert_eq!(norm.mean[1], 5.0);
        norm.apply_to(&mut d).unwrap();
        for j in 0..3 {
            let col: Vec<f64> = (0..100).map(|i| f64::from(d.row(i)[j])).collect();
            let m = col.iter().sum::<f64>() / 100.0;
            let v = col.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 100.0;
            assert!(m.abs() < 1e-5, "mean {m}");
            if j == 1 {
                assert!(col.iter().all(|&x| x == 0.0));
            } else {
                assert!((v.sqrt() - 1.0).abs() < 1e-4, "std {}", v.sqrt());
            }
        }
    }

    #[test]
    fn normalization_apply_rejects_wrong_length() {
        let norm = Normalization::from_parts(vec![0.0, 0.0], vec![1.0, 1.0]).unwrap();
        assert!(norm.apply(&mut [1.0, 2.0, 3.0]).is_err());
        assert!(norm.apply(&mut [1.0, 2.0, 3.0, 4.0]).is_ok());
        assert!(Normalization::from_parts(vec![0.0], vec![0.0]).is_err());
        assert!(Normalization::from_parts(vec![0.0], vec![1.0, 1.0]).is_err());
    }

    #[test]
    fn write_atomic_replaces_file_and_leaves_no_temp() {
        let dir = testutil::TestDir::new("atomic");
        let p = dir.join("out.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
