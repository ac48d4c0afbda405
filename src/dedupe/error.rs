//! Errors of the state store, and how damage to the database file is told apart
//! from a passing I/O error: redb's `Corrupted` reports, its assertion panics (caught
//! by [`quietly`]) and stored values that no longer decode are damage; I/O errors are
//! retried after the database is opened again (see [`super::store`]).

use std::cell::Cell;
use std::path::PathBuf;

use super::codec::CodecError;
use super::store::STATE_VERSION;

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state folder could not be created.
    #[error("cannot create state folder {path}: {source}")]
    Dir {
        /// Folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Another process holds the database.
    #[error("state {path} is in use by another wirewatch process; stop it or give this one another --state folder")]
    Locked {
        /// Database file.
        path: PathBuf,
    },
    /// The state was written by an incompatible version.
    #[error("state {path} has layout version {found}, written by another wirewatch release; this one reads layout {STATE_VERSION} and migrates layouts 1 to 3. Run the release that wrote it, or move the folder away to start afresh (the records already in the output are adopted, so none is emitted twice)")]
    Version {
        /// Database file.
        path: PathBuf,
        /// Version found.
        found: u32,
    },
    /// The database file is damaged (truncated, overwritten, bytes changed).
    #[error("state database {path} is damaged ({source}). Stop wirewatch, move the state folder aside (for example `mv {dir} {dir}.damaged`) and start again: a new state is built and the records already in the output are adopted into it, so none is emitted twice")]
    Damaged {
        /// Database file.
        path: PathBuf,
        /// The state folder (absolute), to move aside.
        dir: PathBuf,
        /// What gave the damage away.
        source: Damage,
    },
    /// The database could not be opened.
    #[error("cannot open state database {path}: {source}")]
    Open {
        /// Database file.
        path: PathBuf,
        /// Cause.
        source: redb::DatabaseError,
    },
    /// The database was closed after an I/O error and is not open again yet.
    #[error("state database {path} is closed after an I/O error; the next commit opens it again")]
    Closed {
        /// Database file.
        path: PathBuf,
    },
    /// A database operation failed (an I/O error, a full disk, …).
    #[error("state database error: {0}")]
    Db(#[source] Box<redb::Error>),
    /// A value could not be encoded for the state.
    #[error("cannot encode a state value: {0}")]
    Encode(#[source] CodecError),
    /// A stored value does not decode (the store turns this into [`StateError::Damaged`]).
    #[error("a stored state value does not decode: {0}")]
    Decode(#[source] CodecError),
}

/// What showed that the database file is damaged.
#[derive(Debug, thiserror::Error)]
pub enum Damage {
    /// redb found it (a bad checksum, header, or page).
    #[error("{0}")]
    Redb(#[source] Box<redb::Error>),
    /// A stored value is not what this program wrote.
    #[error("a stored value does not decode: {0}")]
    Value(#[source] CodecError),
    /// redb stopped on an internal consistency check (the message of its panic).
    #[error("the database code stopped on an inconsistency: {0}")]
    Panic(String),
}

macro_rules! redb_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StateError {
            fn from(e: $t) -> Self {
                StateError::Db(Box::new(redb::Error::from(e)))
            }
        }
    )*};
}
redb_err!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl StateError {
    /// True for an I/O error (or redb's refusal after one): a retry may succeed, after
    /// the database is closed and opened again.
    pub fn is_io(&self) -> bool {
        match self {
            StateError::Db(e) => matches!(**e, redb::Error::Io(_) | redb::Error::PreviousIo),
            StateError::Closed { .. } => true,
            _ => false,
        }
    }
}

/// True when redb's error means the file is not what redb wrote.
pub(super) fn is_damage(e: &redb::Error) -> bool {
    use redb::Error as E;
    match e {
        E::Corrupted(_)
        | E::TableTypeMismatch { .. }
        | E::TypeDefinitionChanged { .. }
        | E::TableIsMultimap(_)
        | E::LockPoisoned(_) => true,
        // Reading past the end: the file was cut short.
        E::Io(io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
        _ => false,
    }
}

thread_local! {
    /// Set while [`quietly`] runs: a panic on this thread is caught, not printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, catching a panic (redb's assertions on a damaged file) without printing
/// it; returns the panic's message instead.
pub(super) fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let outer = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(outer));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}
