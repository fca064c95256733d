//! What several subcommands share: loading data from the command-line flags, and the
//! adapter description in JSON.

use std::path::{Path, PathBuf};

use wgmlp::data::csv::{LabelOptions, TargetColumns};
use wgmlp::data::{self, Dataset};
use wgmlp::{AdapterRequest, ContextOptions, Device, Error, GpuContext, Result};

/// How `--device` chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// A hardware GPU, else a software adapter, else the CPU reference.
    Auto,
    /// A GPU adapter (hardware or software); an error if there is none.
    Gpu,
    /// The CPU reference path.
    Cpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "gpu" => Ok(DeviceChoice::Gpu),
            "cpu" => Ok(DeviceChoice::Cpu),
            _ => Err(Error::config(
                "--device",
                format!("unknown device {s:?}; choose auto, gpu or cpu"),
            )),
        }
    }
}

/// The command-line tool's GPU context: the adapter from the environment, the matmul policy
/// from `WGMLP_MATMUL`, and the choice caches kept in the cache directory.
pub fn open_context() -> Result<GpuContext> {
    GpuContext::open(&AdapterRequest::from_env(), ContextOptions::from_env())
}

/// Where the data comes from.
pub enum Source<'a> {
    /// A built-in synthetic dataset.
    Builtin(&'a str),
    /// An MNIST-layout IDX directory.
    Idx(&'a Path),
    /// CSV files (label first), the test file optional.
    Csv(&'a Path, Option<&'a Path>),
}

impl Source<'_> {
    /// Picks the source from the flags; `--data` and `--train` exclude each other and `--dataset`.
    pub fn from_flags<'a>(
        dataset: Option<&'a str>,
        data: Option<&'a PathBuf>,
        train: Option<&'a PathBuf>,
        test: Option<&'a PathBuf>,
    ) -> Result<Source<'a>> {
        let given = [dataset.is_some(), data.is_some(), train.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if given > 1 {
            return Err(Error::config(
                "--dataset/--data/--train",
                "give only one data source: a built-in --dataset, an IDX --data DIR, or --train FILE.csv [--test FILE.csv]",
            ));
        }
        if test.is_some() && train.is_none() {
            return Err(Error::config("--test", "--test needs --train FILE.csv too"));
        }
        Ok(match (dataset, data, train) {
            (_, Some(dir), _) => Source::Idx(dir),
            (_, _, Some(t)) => Source::Csv(t, test.map(|p| p.as_path())),
            (Some(name), _, _) => Source::Builtin(name),
            (None, None, None) => Source::Builtin("spirals"),
        })
    }

    /// True for the textbook-sized sources (files), false for the built-in toy sets.
    pub fn is_file_data(&self) -> bool {
        !matches!(self, Source::Builtin(_))
    }

    /// Loads (train, test) for training, with a note for each choice the user should know
    /// of (which of two copies of an IDX file is read). The classes are the training
    /// labels' (at least 2); a test label outside them is an error naming file and row.
    ///
    /// With `targets`, CSV files are read as regression data (float targets
    /// in those columns). A built-in dataset decides by itself (`wave` is regression); IDX
    /// data is always classification.
    ///
    /// `labels` says where a CSV's class label is and how string labels are numbered (its
    /// `classes`, when given, fix the names: a resumed model's).
    pub fn load(
        &self,
        seed: u64,
        targets: Option<&TargetColumns>,
        labels: &LabelOptions,
    ) -> Result<Loaded> {
        if let (Some(spec), Source::Csv(train, test)) = (targets, self) {
            let tr = data::csv::read_regression(train, spec)?;
            let te = test
                .map(|t| data::csv::read_regression(t, spec))
                .transpose()?;
            if let (Some(te), Some(path)) = (&te, test) {
                if (te.n_features, te.n_targets) != (tr.n_features, tr.n_targets) {
                    return Err(Error::data(
                        path,
                        "row 1",
                        format!(
                            "has {} feature and {} target columns but {} has {} and {}; both files need the same columns",
                            te.n_features,
                            te.n_targets,
                            train.display(),
                            tr.n_features,
                            tr.n_targets
                        ),
                    ));
                }
            }
            return Ok(Loaded::new(tr, te, Vec::new()));
        }
        if let (Some(_), Source::Idx(_)) = (targets, self) {
            return Err(Error::config(
                "--task",
                "IDX data holds class labels; regression reads CSV files (--train FILE.csv with float targets)",
            ));
        }
        match self {
            Source::Builtin(name) => {
                let (train, test) = data::synthetic::builtin(name, seed)?;
                Ok(Loaded::new(train, Some(test), Vec::new()))
            }
            Source::Idx(dir) => {
                let files = data::idx::find_files(dir, true)?;
                let (train, test) = data::idx_dir::read_files(&files)?;
                let mut loaded = Loaded::new(train, Some(test), files.notes);
                if data::idx::holds_u8(&files.test_images)? {
                    loaded.input_divisor = Some(255.0);
                }
                Ok(loaded)
            }
            Source::Csv(train, test) => {
                let mut tr = data::csv::read_classification(train, labels)?;
                tr.n_classes = tr.n_classes.max(2);
                let why = format!("of the training labels in {}", train.display());
                let te = match test {
                    None => None,
                    Some(t) if tr.class_names.is_empty() && labels.column.is_none() => {
                        Some(data::csv::read_labeled_within(t, tr.n_classes, &why)?)
                    }
                    Some(t) => {
                        let opts = LabelOptions {
                            classes: (!tr.class_names.is_empty()).then(|| tr.class_names.clone()),
                            ..labels.clone()
                        };
                        let mut te = data::csv::read_classification(t, &opts)?;
                        if let Some(i) = te.labels.iter().position(|&l| l as usize >= tr.n_classes)
                        {
                            return Err(Error::data(
                                t,
                                format!("sample {}", i + 1),
                                format!(
                                    "label {} is not one of the {} classes {why}",
                                    te.labels[i], tr.n_classes
                                ),
                            ));
                        }
                        te.n_classes = tr.n_classes;
                        Some(te)
                    }
                };
                if let (Some(te), Some(path)) = (&te, test) {
                    if te.n_features != tr.n_features {
                        return Err(Error::data(
                            path,
                            "row 1",
                            format!(
                                "has {} feature columns but {} has {}; both files need the same columns",
                                te.n_features,
                                train.display(),
                                tr.n_features
                            ),
                        ));
                    }
                }
                Ok(Loaded::new(tr, te, Vec::new()))
            }
        }
    }

    /// Loads the evaluation data for a model with `inputs` features and `classes` outputs:
    /// the test split of a built-in dataset, the test files of an IDX directory (the
    /// training files need not be there), or a labelled CSV. A feature count or a label
    /// the model cannot take is an error naming the data (file, row or sample), not the model.
    ///
    /// With `targets`, for a regression model with `classes` outputs (the CSV's target
    /// columns).
    pub fn load_for_model(
        &self,
        seed: u64,
        inputs: usize,
        classes: usize,
        model: &Path,
        targets: Option<&TargetColumns>,
        labels: &LabelOptions,
    ) -> Result<Loaded> {
        if let Some(spec) = targets {
            let data = match self {
                Source::Csv(path, _) => data::csv::read_regression(path, spec)?,
                Source::Builtin(name) => data::synthetic::builtin(name, seed)?.1,
                Source::Idx(_) => {
                    return Err(Error::config(
                        "--data",
                        format!(
                            "{} is a regression model; evaluate it on a CSV with its {classes} target column(s) (--test FILE.csv)",
                            model.display()
                        ),
                    ));
                }
            };
            if (data.n_features, data.n_targets) != (inputs, classes) {
                return Err(Error::config(
                    "--test/--dataset",
                    format!(
                        "{} has {} features and {} targets but the regression model {} expects {inputs} and {classes}",
                        self.describe(),
                        data.n_features,
                        data.n_targets,
                        model.display()
                    ),
                ));
            }
            return Ok(Loaded::new(data, None, Vec::new()));
        }
        let mismatch = |got: usize| {
            format!(
                "has {got} features but the model {} expects {inputs}; evaluate the model on data like the data it was trained on",
                model.display()
            )
        };
        let (data, notes) = match self {
            Source::Builtin(name) => {
                let (_, test) = data::synthetic::builtin(name, seed)?;
                if test.n_features != inputs {
                    let msg = format!("built-in {name} {}", mismatch(test.n_features));
                    return Err(Error::config("--dataset", msg));
                }
                if test.n_classes > classes {
                    let msg = format!(
                        "built-in {name} has {} classes but the model {} has {classes} outputs",
                        test.n_classes,
                        model.display()
                    );
                    return Err(Error::config("--dataset", msg));
                }
                (test, Vec::new())
            }
            Source::Idx(dir) => {
                let (test, files) = data::idx::read_test_dir(dir, classes)?;
                if test.n_features != inputs {
                    let msg = mismatch(test.n_features).replace("features", "features per sample");
                    return Err(Error::data(&files.test_images, "header", msg));
                }
                (test, files.notes)
            }
            Source::Csv(path, _) if labels.classes.is_some() || labels.column.is_some() => {
                let test = data::csv::read_classification(path, labels)?;
                if test.n_features != inputs {
                    return Err(Error::data(path, "row 1", mismatch(test.n_features)));
                }
                if let Some(i) = test.labels.iter().position(|&l| l as usize >= classes) {
                    return Err(Error::data(
                        path,
                        format!("sample {}", i + 1),
                        format!(
                            "label {} is not one of the model {}'s {classes} outputs",
                            test.labels[i],
                            model.display()
                        ),
                    ));
                }
                (test, Vec::new())
            }
            Source::Csv(path, _) => {
                let why = format!("of the model {}'s outputs", model.display());
                let test = data::csv::read_labeled_within(path, classes, &why)?;
                if test.n_features != inputs {
                    return Err(Error::data(path, "row 1", mismatch(test.n_features)));
                }
                (test, Vec::new())
            }
        };
        let mut data = data;
        data.n_classes = classes;
        Ok(Loaded::new(data, None, notes))
    }

    /// A name for logs and metrics.
    pub fn describe(&self) -> String {
        match self {
            Source::Builtin(n) => format!("built-in {n}"),
            Source::Idx(d) => format!("IDX {}", d.display()),
            Source::Csv(t, Some(e)) => format!("CSV {} / {}", t.display(), e.display()),
            Source::Csv(t, None) => format!("CSV {}", t.display()),
        }
    }
}

/// Datasets as loaded, with notes to print.
pub struct Loaded {
    /// The training set (or the evaluation data).
    pub train: Dataset,
    /// The test set, if there is one.
    pub test: Option<Dataset>,
    /// Things the user should know about what was read, one line each.
    pub notes: Vec<String>,
    /// What the reader divided the raw inputs by (255 for u8 IDX images), if anything.
    pub input_divisor: Option<f32>,
}

impl Loaded {
    fn new(train: Dataset, test: Option<Dataset>, notes: Vec<String>) -> Self {
        Loaded {
            train,
            test,
            notes,
            input_divisor: None,
        }
    }

    /// Prints the notes on stderr.
    pub fn print_notes(&self) {
        for n in &self.notes {
            eprintln!("note: {n}");
        }
    }
}

/// Opens the device `choice` asks for. With `auto` and no adapter, falls back to the CPU
/// reference path and says why, once.
pub fn open_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Gpu => open_context().map(Device::Gpu),
        DeviceChoice::Auto => match open_context() {
            Ok(ctx) => Ok(Device::Gpu(ctx)),
            Err(e) => {
                eprintln!("note: {e}; using the CPU reference path");
                Ok(Device::Cpu)
            }
        },
    }
}

/// A `--seed` value: a whole number from 0 to 2^64 − 1 (parsed here, so that `-1` gets an
/// answer from wgmlp rather than "unexpected argument").
pub fn parse_seed(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    t.parse().map_err(|_| {
        let what = if t.starts_with('-') {
            "is negative"
        } else {
            "is not a whole number"
        };
        format!(
            "{t:?} {what}; a seed is a whole number from 0 to {}",
            u64::MAX
        )
    })
}

/// A count (`--epochs`, `--batch-size`, ...): a whole number ≥ 0; whether 0 makes sense is
/// checked later, with a message about that option.
pub fn parse_count(text: &str) -> std::result::Result<usize, String> {
    let t = text.trim();
    t.parse().map_err(|_| {
        let what = if t.starts_with('-') {
            "is negative"
        } else {
            "is not a whole number"
        };
        format!("{t:?} {what}; give a whole number of 1 or more")
    })
}

/// Writes pretty JSON atomically (through [`super::json::tree`]: keys in alphabetical order).
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(&super::json::tree(path, value)?)
        .map_err(|e| Error::io(path, "serialise", std::io::Error::other(e)))?;
    text.push('\n');
    wgmlp::fsutil::write_atomic(path, text.as_bytes())
}
