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

    /// A GPU operation failed at run time: out of memory, a lost device, a validation or
    /// internal error, or a wait that timed out.
    #[error("GPU error ({kind}) during {op}{}: {message}; {}", adapter_suffix(adapter), kind.hint())]
    Gpu {
        /// What was being done.
        op: String,
        /// What kind of failure.
        kind: GpuFault,
        /// The adapter's name (empty where unknown).
        adapter: String,
        /// wgpu's (or the driver's) message.
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
        "training diverged: loss is {loss} at epoch {epoch}, step {step}; parameters from before that step were kept. Lower the learning rate or standardise the inputs"
    )]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Global optimizer step (1-based) whose result was not finite.
        step: u64,
        /// The offending loss value.
        loss: f32,
    },

    /// A model, a batch or a dataset needs more memory than the host or the adapter allows;
    /// found from the configuration before anything is allocated.
    #[error("{what} needs {} but {limit_name} is {}; {hint}", human_bytes(*.needed), human_bytes(*.limit))]
    TooLarge {
        /// What needs the memory, and what causes it (a layer, a flag).
        what: String,
        /// Bytes needed.
        needed: u64,
        /// Bytes allowed.
        limit: u64,
        /// Which limit (`host memory available`, `the adapter's storage binding limit`, ...).
        limit_name: String,
        /// What to do about it.
        hint: String,
    },

    /// Training was stopped by a signal (Ctrl-C, SIGTERM) after the work already submitted.
    #[error(
        "interrupted during epoch {epoch}, after {step} of its steps ({completed} epochs complete)"
    )]
    Interrupted {
        /// The epoch that was running (1-based).
        epoch: usize,
        /// Steps of that epoch that had finished.
        step: u64,
        /// Epochs completed before the one that was interrupted.
        completed: usize,
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

/// `1.5 GiB (1600560012 bytes)`: a size for error messages, with the exact bytes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, f64); 4] = [
        ("TiB", 1099511627776.0),
        ("GiB", 1073741824.0),
        ("MiB", 1048576.0),
        ("KiB", 1024.0),
    ];
    for (unit, size) in UNITS {
        if bytes as f64 >= size {
            return format!("{:.1} {unit} ({bytes} bytes)", bytes as f64 / size);
        }
    }
    format!("{bytes} bytes")
}

impl Error {
    /// The exit code of the command line for this error: 130 for [`Error::Interrupted`] (as a
    /// shell reports a process ended by Ctrl-C), 2 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Interrupted { .. } => 130,
            _ => 2,
        }
    }

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

    /// Convenience constructor for [`Error::Gpu`] of kind [`GpuFault::Other`] with no adapter
    /// named; [`crate::GpuContext::fault`] names the adapter.
    pub fn gpu(op: &str, message: impl ToString) -> Self {
        Error::Gpu {
            op: op.to_string(),
            kind: GpuFault::Other,
            adapter: String::new(),
            message: message.to_string(),
        }
    }
}

/// The kind of a GPU failure ([`Error::Gpu`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuFault {
    /// A buffer or other resource could not be allocated.
    OutOfMemory,
    /// The device was lost (driver reset, GPU removed, destroyed).
    DeviceLost,
    /// wgpu rejected an operation (a bug in wgmlp or an adapter limit it did not check).
    Validation,
    /// The driver failed internally (e.g. a shader that does not link).
    Internal,
    /// The GPU did not finish the submitted work in time.
    Timeout,
    /// Anything else (a failed buffer mapping, ...).
    Other,
}

impl GpuFault {
    /// What to do about it.
    pub fn hint(self) -> &'static str {
        match self {
            GpuFault::OutOfMemory => {
                "use a smaller batch or narrower layers, close other programs using the GPU, or train on the CPU reference path"
            }
            GpuFault::DeviceLost => {
                "the GPU driver reset or the device went away; run again, and check the driver (dmesg, nvidia-smi) if it repeats"
            }
            GpuFault::Validation | GpuFault::Internal => {
                "this is a wgmlp or driver bug; please report it with the adapter's name and driver, and use the CPU reference path meanwhile"
            }
            GpuFault::Timeout => {
                "the GPU is hung or far too slow for this job; try a smaller batch, another adapter, or the CPU reference path"
            }
            GpuFault::Other => "check the adapter and its driver, or use the CPU reference path",
        }
    }
}

impl std::fmt::Display for GpuFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GpuFault::OutOfMemory => "out of memory",
            GpuFault::DeviceLost => "device lost",
            GpuFault::Validation => "validation",
            GpuFault::Internal => "internal",
            GpuFault::Timeout => "timeout",
            GpuFault::Other => "failure",
        })
    }
}

fn adapter_suffix(adapter: &str) -> String {
    if adapter.is_empty() {
        String::new()
    } else {
        format!(" on {adapter}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_keeps_the_exact_count() {
        assert_eq!(human_bytes(0), "0 bytes");
        assert_eq!(human_bytes(1023), "1023 bytes");
        assert_eq!(human_bytes(134217728), "128.0 MiB (134217728 bytes)");
        assert_eq!(human_bytes(1600560012), "1.5 GiB (1600560012 bytes)");
    }

    #[test]
    fn interrupted_exits_130_and_everything_else_2() {
        let i = Error::Interrupted {
            epoch: 3,
            step: 40,
            completed: 2,
        };
        assert_eq!(i.exit_code(), 130);
        assert_eq!(Error::config("x", "y").exit_code(), 2);
    }
}
