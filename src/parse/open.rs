//! Opening an input file safely: once, beneath the watched folder, and judging the
//! opened descriptor rather than the name.
//!
//! A path named by an event or a scan is opened with `openat2(2)` relative to the
//! watched folder with `RESOLVE_BENEATH`: the kernel resolves every component,
//! symbolic links included, and refuses (`EXDEV`) any resolution that would leave
//! the folder. A symbolic link that stays inside is followed; one that leads
//! outside is refused at the moment of the open, so swapping a link into place
//! between a check and the open cannot lead the daemon out of the folder. Where
//! `openat2` is missing (Linux before 5.6, or a sandbox that forbids it) the file is
//! opened with `O_NOFOLLOW` instead, and every symbolic link is refused.
//!
//! Everything that follows (is it a regular file, its size and time, whether a
//! writer still holds it, its bytes) is asked of the descriptor.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Reject, RejectKind};

/// Why [`open_beneath`] did not give a descriptor.
#[derive(Debug)]
pub enum OpenError {
    /// The file cannot be an article for a reason that holds until it changes.
    Reject(Reject),
    /// A passing condition (descriptors or memory used up, an interrupted call):
    /// try again later; never a file's outcome.
    Transient(io::Error),
}

/// True for I/O errors that say nothing about the file and pass by themselves:
/// descriptors or memory used up, a full disk or quota, an interrupted or
/// would-block call, a network file system that timed out.
pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::OutOfMemory
    ) || e.raw_os_error().is_some_and(|c| {
        [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOMEM,
            libc::EAGAIN,
            libc::EINTR,
            libc::ENOBUFS,
            libc::ENOSPC,
            libc::EDQUOT,
            libc::ETIMEDOUT,
        ]
        .contains(&c)
    })
}

/// Opens `path` (absolute, inside `root`) for reading, never leaving `root`
/// whatever its components are or become; non-blocking, so a FIFO put in its place
/// cannot hang the reader.
pub fn open_beneath(root: &Path, path: &Path) -> Result<File, OpenError> {
    let io_reject = |e: &io::Error, what: &str| {
        if is_transient(e) {
            OpenError::Transient(io::Error::new(e.kind(), e.to_string()))
        } else {
            OpenError::Reject(Reject::from_io(e, what))
        }
    };
    let rel = path.strip_prefix(root).map_err(|_| {
        OpenError::Reject(Reject::new(
            RejectKind::Symlink,
            format!(
                "{} is outside the watched folder {}: not read",
                path.display(),
                root.display()
            ),
        ))
    })?;
    let dir = root_dir(root, false).map_err(|e| io_reject(&e, "open the watched folder"))?;
    let opened = openat2_beneath(&dir, rel)
        .or_else(|e| {
            // The folder this thread holds may have been replaced (deleted and made
            // again, or renamed away): open it afresh, once, before believing the
            // file is missing.
            if e.kind() == io::ErrorKind::NotFound {
                let fresh =
                    root_dir(root, true).map_err(|e| io_reject(&e, "open the watched folder"));
                match fresh {
                    Ok(fresh) => openat2_beneath(&fresh, rel),
                    Err(_) => Err(e),
                }
            } else {
                Err(e)
            }
        })
        .or_else(|e| {
            // An absolute link is refused by RESOLVE_BENEATH even when it points
            // inside; open where it points, confined the same way, so a link swapped
            // in meanwhile still cannot lead out.
            match std::fs::canonicalize(path) {
                Ok(target) if e.raw_os_error() == Some(libc::EXDEV) && target != path => {
                    // The handle this thread holds now: the fresh one if the
                    // folder was opened again above.
                    match (target.strip_prefix(root), root_dir(root, false)) {
                        (Ok(inside), Ok(dir)) => openat2_beneath(&dir, inside),
                        _ => Err(e),
                    }
                }
                _ => Err(e),
            }
        });
    match opened {
        Ok(f) => Ok(f),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => Err(OpenError::Reject(Reject::new(
            RejectKind::Symlink,
            "symbolic link leading outside the watched folder: not followed",
        ))),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(OpenError::Reject(Reject::new(
            RejectKind::Symlink,
            if openat2_missing() {
                "symbolic link: not followed (this kernel cannot confine links to the watched folder)"
            } else {
                "symbolic link loop: not followed"
            },
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound && is_symlink(path) => {
            Err(OpenError::Reject(Reject::new(
                RejectKind::Symlink,
                format!("dangling symbolic link: {e}"),
            )))
        }
        Err(e) => Err(io_reject(&e, "open the file")),
    }
}

/// Counts the times the watched folder was found replaced ([`root_replaced`]); a
/// reader thread's kept handle on the folder is good for one count only.
static ROOT_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Tells the reader threads that the watched folder was deleted and made again (or
/// another folder put at its path): each opens it afresh before its next file.
pub fn root_replaced() {
    ROOT_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Release);
}

/// A reader thread's handle on the watched folder: the path it was opened from, the
/// [`ROOT_GENERATION`] it was opened in, and the descriptor.
type KeptRoot = (std::path::PathBuf, u64, std::rc::Rc<OwnedFd>);

thread_local! {
    /// The watched folder's directory handle, kept by each reader thread between
    /// files: one `open` per thread, not one per file.
    static ROOT_DIR: std::cell::RefCell<Option<KeptRoot>> = const { std::cell::RefCell::new(None) };
}

/// This thread's handle on `root`: the kept one, unless it was opened from another
/// path, before the folder was last replaced, or `fresh` asks for a new one.
fn root_dir(root: &Path, fresh: bool) -> io::Result<std::rc::Rc<OwnedFd>> {
    let generation = ROOT_GENERATION.load(std::sync::atomic::Ordering::Acquire);
    ROOT_DIR.with(|cell| {
        let mut cell = cell.borrow_mut();
        match &*cell {
            Some((path, g, fd)) if !fresh && *g == generation && path == root => Ok(fd.clone()),
            _ => {
                let fd = std::rc::Rc::new(open_dir(root)?);
                *cell = Some((root.to_owned(), generation, fd.clone()));
                Ok(fd)
            }
        }
    })
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

fn open_dir(root: &Path) -> io::Result<OwnedFd> {
    let c = cstring(root.as_os_str().as_bytes())?;
    // SAFETY: `c` is a NUL-terminated path; the flags ask for a directory handle.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn cstring(bytes: &[u8]) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

const READ_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;

static OPENAT2_MISSING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn openat2_missing() -> bool {
    OPENAT2_MISSING.load(std::sync::atomic::Ordering::Relaxed)
}

fn openat2_beneath(dir: &OwnedFd, rel: &Path) -> io::Result<File> {
    let c = cstring(rel.as_os_str().as_bytes())?;
    if !openat2_missing() {
        // SAFETY: `open_how` is plain integers; all-zero is its "nothing asked" value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = READ_FLAGS as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: openat2 with a valid directory descriptor, a NUL-terminated path
        // and an `open_how` of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: a descriptor the kernel just gave us.
            return Ok(unsafe { File::from_raw_fd(fd as libc::c_int) });
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            // No openat2 here (old kernel, or a seccomp filter): fall back below.
            Some(libc::ENOSYS) | Some(libc::EPERM) => {
                OPENAT2_MISSING.store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!("openat2 is not available: symbolic links in the watched folder are not followed");
            }
            _ => return Err(e),
        }
    }
    // Without RESOLVE_BENEATH, no component may be a link: walk them one by one.
    let mut fd: Option<OwnedFd> = None;
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        let std::path::Component::Normal(name) = part else {
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        };
        let last = i + 1 == parts.len();
        let flags = if last {
            READ_FLAGS | libc::O_NOFOLLOW
        } else {
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC
        };
        let name = cstring(name.as_bytes())?;
        let at = fd.as_ref().map_or(dir.as_raw_fd(), |f| f.as_raw_fd());
        // SAFETY: openat on a directory descriptor we hold, with a NUL-terminated name.
        let next = unsafe { libc::openat(at, name.as_ptr(), flags) };
        if next < 0 {
            let e = io::Error::last_os_error();
            // O_PATH|O_DIRECTORY|O_NOFOLLOW on a link gives ENOTDIR: a link.
            if !last && e.raw_os_error() == Some(libc::ENOTDIR) && fd_is_link(at, &name) {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            return Err(e);
        }
        // SAFETY: a descriptor the kernel just gave us.
        fd = Some(unsafe { OwnedFd::from_raw_fd(next) });
    }
    fd.map(File::from)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty path"))
}

fn fd_is_link(at: libc::c_int, name: &std::ffi::CStr) -> bool {
    // SAFETY: fstatat into a zeroed stat buffer, not following the last link.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstatat(at, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) == 0
            && (st.st_mode & libc::S_IFMT) == libc::S_IFLNK
    }
}

/// True when another process has the opened file open for writing, told by asking
/// the kernel for a read lease (`F_SETLEASE`) on our descriptor, which it refuses
/// with `EAGAIN` while a writer holds the file. Unknown (false) when leases are not
/// allowed (another user's file without `CAP_LEASE`, or a file system without
/// leases): the settle time and the changed-while-read check still apply.
///
/// While the lease is held, a process opening the file for writing makes the kernel
/// signal us (`SIGIO`); [`ignore_lease_breaks`] must have run first, or that signal
/// ends the process.
pub fn open_for_writing_elsewhere(file: &File) -> bool {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; F_SETLEASE takes an int argument.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) };
    if rc == 0 {
        // SAFETY: as above; releases the lease we just took.
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        return false;
    }
    io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
}

/// Makes the process ignore `SIGIO`, the signal the kernel sends a lease holder when
/// another process opens the file for writing. Its default action ends the process;
/// the lease is released at once anyway, so the notice itself is not needed.
pub fn ignore_lease_breaks() {
    // SAFETY: installing SIG_IGN for SIGIO; no handler code runs.
    unsafe {
        libc::signal(libc::SIGIO, libc::SIG_IGN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of `root/name` through [`open_beneath`], or the kind of its reject.
    fn read_beneath(root: &Path, name: &str) -> Result<String, String> {
        match open_beneath(root, &root.join(name)) {
            Ok(f) => Ok(std::io::read_to_string(f).unwrap()),
            Err(OpenError::Reject(r)) => Err(r.kind.to_string()),
            Err(OpenError::Transient(e)) => Err(format!("transient {e}")),
        }
    }

    #[test]
    fn a_replaced_folder_is_opened_afresh() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("in");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a.txt"), b"first").unwrap();
        assert_eq!(read_beneath(&root, "a.txt").unwrap(), "first");
        // Deleted and made again: the kept handle finds nothing, a fresh one does.
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a.txt"), b"second").unwrap();
        assert_eq!(read_beneath(&root, "a.txt").unwrap(), "second");
        // Renamed away with a file of the same name left in it: once the watcher
        // says the folder was replaced, the new folder's file is read.
        std::fs::rename(&root, top.path().join("old")).unwrap();
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a.txt"), b"third").unwrap();
        root_replaced();
        assert_eq!(read_beneath(&root, "a.txt").unwrap(), "third");
        // Renamed away again, unannounced, and the new folder reached through an
        // absolute link: the file is read in the new folder, not the old one.
        std::fs::rename(&root, top.path().join("older")).unwrap();
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a.txt"), b"fourth").unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        std::os::unix::fs::symlink(root.join("a.txt"), root.join("abs")).unwrap();
        assert_eq!(read_beneath(&root, "abs").unwrap(), "fourth");
    }

    #[test]
    fn links_inside_are_followed_and_links_outside_refused() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("in");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(top.path().join("secret.txt"), b"secret").unwrap();
        std::fs::write(root.join("sub/a.txt"), b"a").unwrap();
        std::os::unix::fs::symlink("sub/a.txt", root.join("inside")).unwrap();
        std::os::unix::fs::symlink("../secret.txt", root.join("outside")).unwrap();
        std::os::unix::fs::symlink(top.path(), root.join("updir")).unwrap();
        std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/a.txt"), root.join("absolute")).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        let read = |name: &str| read_beneath(&root, name);
        assert_eq!(read("sub/a.txt").unwrap(), "a");
        assert_eq!(read("inside").unwrap(), "a");
        assert_eq!(read("absolute").unwrap(), "a");
        assert_eq!(read("outside").unwrap_err(), "symlink");
        assert_eq!(read("updir/secret.txt").unwrap_err(), "symlink");
        assert_eq!(read("dangling").unwrap_err(), "symlink");
        assert_eq!(read("missing").unwrap_err(), "not_found");
        let outside = open_beneath(&root, &top.path().join("secret.txt"));
        assert!(matches!(outside, Err(OpenError::Reject(r)) if r.kind == RejectKind::Symlink));
    }

    #[test]
    fn transient_errors_are_told_apart() {
        assert!(is_transient(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(is_transient(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(!is_transient(&io::Error::from_raw_os_error(libc::EACCES)));
        assert!(!is_transient(&io::Error::from_raw_os_error(libc::ENOENT)));
    }
}
