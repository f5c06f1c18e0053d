//! Errors, sorted by who must act (DataFusion style), each with its cause kept (`#[source]`) and
//! what to do about it as a separate [`Error::hint`] the CLI prints as `hint:` (uv style).
//!
//! A *bad sample* is not an error: it becomes a [`crate::shards::manifest::RejectRecord`] and the run goes
//! on. The variants here stop a run.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A cause of any type, kept for `Caused by:` lines.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that stops an mplug command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path, flag or value the user gave is wrong (exit code 2).
    #[error("{message}")]
    Input {
        /// What is wrong, naming the object.
        message: String,
        /// What to do about it.
        hint: Option<String>,
        /// The underlying failure (the OS error of a missing file, a parser's error), when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A config, pipeline or vocab file that does not parse (exit code 2).
    #[error("invalid {kind} `{}`{}", path.display(), position.as_ref().map(|p| format!(" at {p}")).unwrap_or_default())]
    Config {
        /// `pipeline file`, `model config`, `training config`, `BERT config`, ...
        kind: &'static str,
        /// The file (or the built-in's name).
        path: PathBuf,
        /// `line L, column C` when the parser knows it.
        position: Option<String>,
        /// The parser's error.
        #[source]
        source: BoxError,
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
    /// A statement that writes or registers files, in a read-only SQL session (exit code 2).
    #[error("`{statement}` is not allowed: mplug sql is read-only")]
    ReadOnlySql {
        /// The kind of statement (`CREATE EXTERNAL TABLE`, `INSERT`, `COPY`, ...).
        statement: String,
    },
    /// A query that does not plan: unknown table or column, syntax, types (exit code 2).
    #[error("{message}")]
    Query {
        /// What failed: DataFusion's message, or a summary when the cause says the rest.
        message: String,
        /// The DataFusion (or SQL parser) error.
        #[source]
        source: BoxError,
        /// What to do about it.
        hint: Option<String>,
    },
    /// A shard or manifest we cannot read, an unknown version, a checksum mismatch.
    #[error("{message}")]
    Format {
        /// What is wrong, naming the shard or manifest.
        message: String,
        /// The underlying failure, when there is one.
        #[source]
        source: Option<BoxError>,
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
    #[error("internal error (please report it): {message}")]
    Internal {
        /// What failed.
        message: String,
        /// The underlying failure, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The process group failed: rendezvous, or a collective whose peer died, hung past the
    /// timeout or could not be reached (exit code 1; the last checkpoint is intact).
    #[error("{op} failed on rank {rank} of {world}: {message}")]
    Collective {
        /// The collective or `rendezvous`.
        op: &'static str,
        /// This process's rank.
        rank: usize,
        /// World size.
        world: usize,
        /// libtorch's (c10d / Gloo) message.
        message: String,
    },
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
            source: None,
        }
    }

    /// A user-input error with a hint.
    pub fn input_with_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Input {
            message: message.into(),
            hint: Some(hint.into()),
            source: None,
        }
    }

    /// A user-input error caused by `source` (add a hint with [`Error::with_hint`]).
    pub fn input_caused(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Input {
            message: message.into(),
            hint: None,
            source: Some(source.into()),
        }
    }

    /// A config file that does not parse.
    pub fn config(
        kind: &'static str,
        path: impl Into<PathBuf>,
        position: Option<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Config {
            kind,
            path: path.into(),
            position,
            source: source.into(),
            hint: None,
        }
    }

    /// A format error.
    pub fn format(message: impl Into<String>) -> Self {
        Error::Format {
            message: message.into(),
            source: None,
        }
    }

    /// A format error caused by `source`.
    pub fn format_caused(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Format {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A bug.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
            source: None,
        }
    }

    /// A bug surfacing as `source`.
    pub fn internal_caused(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Internal {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Adds (or replaces) the hint of an error that carries one; other errors are returned as
    /// they are.
    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        match &mut self {
            Error::Input { hint, .. } | Error::Config { hint, .. } | Error::Query { hint, .. } => {
                *hint = Some(text.into())
            }
            _ => {}
        }
        self
    }

    /// The process exit code the CLI should use for this error: 2 when the user must change what
    /// they gave, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. }
            | Error::Config { .. }
            | Error::Annotation { .. }
            | Error::ReadOnlySql { .. }
            | Error::Query { .. } => 2,
            _ => 1,
        }
    }

    /// What to do about it, printed after the error as `hint: ...`.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Input { hint, .. } | Error::Config { hint, .. } | Error::Query { hint, .. } => {
                hint.as_deref()
            }
            Error::ReadOnlySql { .. } => {
                Some("pass --allow-write to run statements that write or register files")
            }
            Error::Strict { .. } => {
                Some("drop --strict to record rejects in the manifest and go on")
            }
            Error::Collective { op: "launch", .. } => Some(
                "the failed rank's own output above says why; fix it and rerun with --resume: the \
                 last checkpoint is intact",
            ),
            Error::Collective { .. } => Some(
                "another rank stopped or is unreachable (its own log says why); fix it and rerun \
                 with --resume: the last checkpoint is intact",
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn causes_are_kept_as_sources_not_flattened_into_the_message() {
        let cause = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let cause_text = cause.to_string();
        let err = Error::format_caused("`state.json` is not valid", cause);
        assert_eq!(err.to_string(), "`state.json` is not valid");
        assert_eq!(err.source().unwrap().to_string(), cause_text);
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn hints_are_a_field_and_decide_nothing_else() {
        let err = Error::input("no such split").with_hint("the splits are: train, val");
        assert_eq!(err.to_string(), "no such split");
        assert_eq!(err.hint(), Some("the splits are: train, val"));
        assert_eq!(err.exit_code(), 2);
        let err = Error::ReadOnlySql {
            statement: "COPY".into(),
        };
        assert!(err.hint().unwrap().contains("--allow-write"));
        // Errors that carry no hint field are unchanged by with_hint.
        assert!(Error::internal("x").with_hint("h").hint().is_none());
    }
}
