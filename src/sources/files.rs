//! Reading input files without trusting what they are: only a regular file is read, and it is
//! opened without blocking, so a FIFO, socket or device named like an image, clip or annotation
//! file becomes a reject or an error instead of a run that hangs in `open`.

use std::fs::{File, FileType, Metadata};
use std::io::{self, Read};
use std::path::Path;

/// What a non-regular file is, for messages.
fn kind(t: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// `Ok` when `meta` is a regular file; else an `InvalidInput` error saying what it is. Errors
/// carry no path (callers add it where a message may name one: reject reasons hold no absolute
/// paths).
pub fn check_regular(meta: &Metadata) -> io::Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}, not a regular file", kind(meta.file_type())),
    ))
}

/// Opens `path` for reading if it is a regular file (following symlinks), never blocking.
pub fn open_regular_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. It has
        // no effect on reads of regular files.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    check_regular(&file.metadata()?)?;
    Ok(file)
}

/// Reads a whole regular file (see [`open_regular_file`]).
pub fn read_regular_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_regular_file(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and a mode.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("image.jpg");
        mkfifo(&fifo);
        // Before: std::fs::read(&fifo) blocks forever with no writer. Run it on a thread so a
        // regression fails the test instead of hanging the suite.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(read_regular_file(&fifo).map_err(|e| e.to_string())));
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a FIFO must not block");
        let err = got.unwrap_err();
        assert_eq!(err, "a FIFO, not a regular file");
    }

    #[test]
    fn devices_and_directories_are_refused_regular_files_read() {
        let err = read_regular_file(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "a device, not a regular file");
        let dir = tempfile::tempdir().unwrap();
        let err = read_regular_file(dir.path()).unwrap_err().to_string();
        assert_eq!(err, "a directory, not a regular file");
        let file = dir.path().join("a.txt");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(read_regular_file(&file).unwrap(), b"abc");
        let err = read_regular_file(&dir.path().join("missing")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
