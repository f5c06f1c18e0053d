//! The `--images` directory and the rule that no annotation may read outside it.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// A canonicalised image root directory.
#[derive(Debug, Clone)]
pub struct ImageRoot {
    root: PathBuf,
}

impl ImageRoot {
    /// Opens `dir`, which must exist and be a directory.
    pub fn open(dir: &Path) -> Result<Self> {
        let root = fs_err::canonicalize(dir).map_err(|e| {
            Error::input_caused(format!("image directory `{}` not found", dir.display()), e)
                .with_hint("pass --images DIR")
        })?;
        if !root.is_dir() {
            return Err(Error::input(format!(
                "`{}` is not a directory",
                dir.display()
            )));
        }
        Ok(Self { root })
    }

    /// The canonical root.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Resolves a relative image path, refusing symlinks that lead outside the root.
    /// `Err` is a reject reason.
    pub fn resolve(&self, rel: &str) -> std::result::Result<PathBuf, String> {
        let joined = self.root.join(rel);
        let canonical = match std::fs::canonicalize(&joined) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("missing image file".to_string());
            }
            Err(e) => return Err(format!("cannot open image file: {e}")),
        };
        if !canonical.starts_with(&self.root) {
            return Err(format!(
                "image path resolves outside the image root (to `{}`)",
                canonical.display()
            ));
        }
        // stat, not open: opening a FIFO would wait for a writer forever.
        match std::fs::metadata(&canonical).and_then(|m| super::files::check_regular(&m)) {
            Ok(()) => Ok(canonical),
            Err(e) => Err(format!("cannot open image file: {e}")),
        }
    }
}

/// Checks that an annotation's image path is relative and stays inside the root (no `..`, no absolute
/// path), and normalises it to '/'-separated form. `Err` is a reject reason.
pub fn check_relative_path(raw: &str) -> std::result::Result<String, String> {
    if raw.is_empty() {
        return Err("empty image path".to_string());
    }
    let path = Path::new(raw);
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => {
                parts.push(p.to_str().ok_or("image path is not UTF-8")?.to_string())
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("image path `{raw}` escapes the image root (`..`)"));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "image path `{raw}` is absolute; annotations must use paths relative to --images"
                ));
            }
        }
    }
    if parts.is_empty() {
        return Err(format!("image path `{raw}` names no file"));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_checked() {
        assert_eq!(
            check_relative_path("val2014/a.jpg"),
            Ok("val2014/a.jpg".into())
        );
        assert_eq!(
            check_relative_path("./val2014//a.jpg"),
            Ok("val2014/a.jpg".into())
        );
        assert!(
            check_relative_path("../secret.jpg")
                .unwrap_err()
                .contains("escapes")
        );
        assert!(
            check_relative_path("a/../../b.jpg")
                .unwrap_err()
                .contains("escapes")
        );
        assert!(
            check_relative_path("/etc/passwd")
                .unwrap_err()
                .contains("absolute")
        );
        assert!(check_relative_path("").is_err());
    }
}
