//! Errors, sorted by who must act (DataFusion style).
//!
//! A *bad sample* is not an error: it becomes a [`crate::shards::manifest::RejectRecord`] and the run goes
//! on. The variants here stop a run.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that stops an mplug command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path, flag or config the user gave is wrong (exit code 2).
    #[error("{message}")]
    Input {
        /// What is wrong, naming the object.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// An annotation file cannot be parsed: names the file and position (exit code 2).
    #[error("Failed to parse `{}` at {position}: {message}", path.display())]
    Annotation {
        /// The annotation file.
        path: PathBuf,
        /// `line L, column C` for syntax errors, a JSON path (`$.images[3]`) for structure errors.
        position: String,
        /// The parser's message.
        message: String,
    },
    /// A shard or manifest we cannot read, an unknown version, a checksum mismatch.
    #[error("{message}")]
    Format {
        /// What is wrong, naming the shard or manifest.
        message: String,
    },
    /// `--strict` was given and an input was rejected.
    #[error("{count} input(s) rejected and --strict is set; first: {first}")]
    Strict {
        /// Number of rejects.
        count: usize,
        /// The first reject, formatted.
        first: String,
    },
    /// A bug: please report it.
    #[error("internal error (please report it): {0}")]
    Internal(String),
    /// File-system failure (from `fs_err`, so the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Arrow failure.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// Parquet failure.
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    /// libtorch failure.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

impl Error {
    /// A user-input error with no hint.
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input {
            message: message.into(),
            hint: None,
        }
    }

    /// A user-input error with a hint.
    pub fn input_with_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Input {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A format error.
    pub fn format(message: impl Into<String>) -> Self {
        Error::Format {
            message: message.into(),
        }
    }

    /// The process exit code the CLI should use for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } | Error::Annotation { .. } => 2,
            _ => 1,
        }
    }

    /// A hint to print after the error, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Input { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}
