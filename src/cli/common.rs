//! What several subcommands share: loading data from the command-line flags, and the
//! adapter description in JSON.

use std::path::{Path, PathBuf};

use wgmlp::data::{self, Dataset};
use wgmlp::infer::Device;
use wgmlp::{Error, Result};

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

    /// Loads (train, test).
    pub fn load(&self, seed: u64) -> Result<(Dataset, Option<Dataset>)> {
        match self {
            Source::Builtin(name) => {
                let (tr, te) = data::synthetic::builtin(name, seed)?;
                Ok((tr, Some(te)))
            }
            Source::Idx(dir) => {
                let (tr, te) = data::idx::read_dir(dir)?;
                Ok((tr, Some(te)))
            }
            Source::Csv(train, test) => {
                let mut tr = data::csv::read_labeled(train, None)?;
                let mut te = test.map(|t| data::csv::read_labeled(t, None)).transpose()?;
                if let Some(te) = &mut te {
                    if te.n_features != tr.n_features {
                        return Err(Error::data(
                            test.unwrap_or(train),
                            "row 1",
                            format!(
                                "has {} feature columns but {} has {}; both files need the same columns",
                                te.n_features,
                                train.display(),
                                tr.n_features
                            ),
                        ));
                    }
                    let classes = tr.n_classes.max(te.n_classes);
                    tr.n_classes = classes;
                    te.n_classes = classes;
                }
                tr.n_classes = tr.n_classes.max(2);
                if let Some(te) = &mut te {
                    te.n_classes = tr.n_classes;
                }
                Ok((tr, te))
            }
        }
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

/// The device as JSON (`name`, `backend`, `device_type`, `driver`).
pub fn adapter_json(device: Device) -> serde_json::Value {
    match device {
        Device::Gpu(ctx) => serde_json::json!({
            "name": ctx.info.name,
            "backend": format!("{:?}", ctx.info.backend),
            "device_type": format!("{:?}", ctx.info.device_type),
            "driver": format!("{} {}", ctx.info.driver, ctx.info.driver_info).trim().to_string(),
        }),
        Device::Cpu => serde_json::json!({
            "name": "CPU reference (f32)",
            "backend": "cpu",
            "device_type": "Cpu",
            "driver": "",
        }),
    }
}

/// Writes pretty JSON atomically.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::io(path, "serialise", std::io::Error::other(e)))?;
    text.push('\n');
    wgmlp::fsutil::write_atomic(path, text.as_bytes())
}
