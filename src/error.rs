//! The crate's error type: every failure is a value with the fields a user needs to act.

use std::path::PathBuf;

/// Shorthand for `std::result::Result<T, wgmlp::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in wgmlp. Each variant names what was wrong and, where
/// there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter matched the request (or none exists on this machine).
    #[error("no GPU adapter found{detail}; {hint}")]
    NoAdapter {
        /// What was asked for (backend, name filter), already formatted with a leading ": ".
        detail: String,
        /// What to do about it.
        hint: String,
    },

    /// The adapter exists but cannot run wgmlp's kernels.
    #[error("adapter {adapter:?} is not usable: {reason}")]
    AdapterUnsuitable {
        /// Adapter name.
        adapter: String,
        /// Which limit or feature is missing.
        reason: String,
    },

    /// `request_device` failed.
    #[error("could not open a device on adapter {adapter:?}: {message}")]
    Device {
        /// Adapter name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },

    /// A WGSL shader failed to parse, validate or compile; `message` is the annotated source.
    #[error("shader {shader} failed to {stage}:\n{message}")]
    Shader {
        /// Shader (kernel) name.
        shader: String,
        /// "parse", "validate" or "compile".
        stage: &'static str,
        /// The diagnostic, with the offending source lines where naga provides them.
        message: String,
    },

    /// A GPU operation failed at run time (mapping a buffer, a lost device, an out-of-memory).
    #[error("GPU error during {op}: {message}")]
    Gpu {
        /// What was being done.
        op: String,
        /// wgpu's message.
        message: String,
    },

    /// Two shapes that must agree do not.
    #[error("shape mismatch in {op}: expected {expected}, got {got}")]
    Shape {
        /// The operation that checked.
        op: String,
        /// What was expected.
        expected: String,
        /// What was given.
        got: String,
    },

    /// A configuration value is invalid.
    #[error("invalid {field}: {message}")]
    Config {
        /// The field or option (e.g. `--hidden`, `batch_size`).
        field: String,
        /// What is wrong and what is accepted.
        message: String,
    },

    /// An activation name on the command line or in a checkpoint is unknown or malformed.
    #[error("unknown activation {given:?}: {message}")]
    Activation {
        /// The text given.
        given: String,
        /// What is accepted.
        message: String,
    },

    /// Input data is malformed: which file, where in it, what is wrong and what to do.
    #[error("{}: {position}: {message}", file.display())]
    Data {
        /// The file being read.
        file: PathBuf,
        /// Where: `row 12`, `byte 16`, `tensor 0.weight`, `header`.
        position: String,
        /// What is wrong, and what to do.
        message: String,
    },

    /// Values in the data (or in a batch) are not finite or are out of range.
    #[error("invalid data in {what}: {message}")]
    InvalidData {
        /// What was being checked (e.g. `training features`, `labels`).
        what: String,
        /// What is wrong.
        message: String,
    },

    /// The loss became NaN or infinite; parameters from before `step` were kept.
    #[error(
        "training diverged: loss is {loss} at epoch {epoch}, step {step}; parameters from before that step were kept. Lower the learning rate (--lr) or normalise the inputs (--normalize standard)"
    )]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Global optimizer step (1-based) whose result was not finite.
        step: u64,
        /// The offending loss value.
        loss: f32,
    },

    /// A file could not be read or written.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// `read`, `write`, `create`, `rename`, ...
        op: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Convenience constructor for [`Error::Shape`].
    pub fn shape(op: &str, expected: impl ToString, got: impl ToString) -> Self {
        Error::Shape {
            op: op.to_string(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    /// Convenience constructor for [`Error::Config`].
    pub fn config(field: &str, message: impl ToString) -> Self {
        Error::Config {
            field: field.to_string(),
            message: message.to_string(),
        }
    }

    /// Convenience constructor for [`Error::Data`].
    pub fn data(file: impl Into<PathBuf>, position: impl ToString, message: impl ToString) -> Self {
        Error::Data {
            file: file.into(),
            position: position.to_string(),
            message: message.to_string(),
        }
    }

    /// Convenience constructor for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// Convenience constructor for [`Error::Gpu`].
    pub fn gpu(op: &str, message: impl ToString) -> Self {
        Error::Gpu {
            op: op.to_string(),
            message: message.to_string(),
        }
    }
}
