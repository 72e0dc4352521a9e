//! The library's error type and the process exit codes it maps to.
//!
//! Every failure a user can cause or meet is one of a few kinds, and each kind has one exit code
//! (documented in the README and fixed for every command): scripts branch on the code, people
//! read the message and the hint.

use std::fmt;
use std::path::Path;

/// Exit codes shared by every command.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Unexpected failure (a bug, or an I/O error that is not the user's input).
    pub const FAILURE: u8 = 1;
    /// Bad usage or bad input; nothing was changed.
    pub const INPUT: u8 = 2;
    /// A remote service (token endpoint, Graph) refused or could not be reached.
    pub const REMOTE: u8 = 3;
    /// A check failed (expected role missing, a `check` step failed).
    pub const CHECK: u8 = 4;
}

/// What went wrong, by kind; the kind decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad usage or bad input (exit 2).
    Input,
    /// A remote service refused the request or could not be reached (exit 3).
    Remote,
    /// A verification the user asked for failed (exit 4).
    Check,
    /// Anything unexpected (exit 1).
    Internal,
}

/// A keycred error: a kind, a message that names the input, an optional hint saying how to fix
/// it, the code the remote service answered when it refused (so scripts branch on codes, not on
/// the message's text), and the underlying cause when there is one.
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    remote: RemoteCodes,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The codes a remote service gave with its refusal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RemoteCodes {
    /// Entra's AADSTS number (`700027`).
    aadsts: Option<u32>,
    /// Graph's `error.code` (`Authorization_RequestDenied`).
    graph: Option<String>,
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), hint: None, remote: RemoteCodes::default(), source: None }
    }
    /// Bad input or usage (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Input, message)
    }
    /// Bad input found in the file at `path` (exit 2).
    pub fn file(path: &Path, message: impl fmt::Display) -> Self {
        Self::input(format!("{}: {message}", path.display()))
    }
    /// A remote refusal or failure (exit 3).
    pub fn remote(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Remote, message)
    }
    /// A failed check (exit 4).
    pub fn check(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Check, message)
    }
    /// An unexpected failure (exit 1).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    /// An I/O error on `path`. Missing files and permission problems are the user's input to
    /// fix (exit 2); anything else is unexpected.
    pub fn io(path: &Path, action: &str, err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let (kind, hint) = match err.kind() {
            K::NotFound => (ErrorKind::Input, Some("check the path".to_string())),
            K::PermissionDenied | K::ReadOnlyFilesystem => {
                (ErrorKind::Input, Some("choose a location you can write to, or fix its permissions".to_string()))
            }
            K::AlreadyExists => (ErrorKind::Input, Some("remove it first, or choose another path".to_string())),
            // A directory given where a file is expected is the user's input, not our failure.
            K::IsADirectory | K::NotADirectory => (ErrorKind::Input, Some("give the path of a file".to_string())),
            // A symbolic link loop (ELOOP; its ErrorKind is not stable yet) is a broken path.
            #[cfg(unix)]
            _ if err.raw_os_error() == Some(libc::ELOOP) => {
                (ErrorKind::Input, Some("fix the symbolic links along the path, or give the file itself".to_string()))
            }
            _ => (ErrorKind::Internal, None),
        };
        Error {
            kind,
            message: format!("cannot {action} {}: {err}", path.display()),
            hint,
            remote: RemoteCodes::default(),
            source: Some(Box::new(err)),
        }
    }
    /// Adds a hint: what the user can do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    /// Records Entra's AADSTS code of the refusal this error reports.
    pub fn with_aadsts(mut self, code: u32) -> Self {
        self.remote.aadsts = Some(code);
        self
    }
    /// Records Graph's `error.code` of the refusal this error reports.
    pub fn with_graph_code(mut self, code: impl Into<String>) -> Self {
        self.remote.graph = Some(code.into());
        self
    }
    /// Entra's AADSTS code, when Entra refused.
    pub fn aadsts(&self) -> Option<u32> {
        self.remote.aadsts
    }
    /// Graph's `error.code`, when Graph refused.
    pub fn graph_code(&self) -> Option<&str> {
        self.remote.graph.as_deref()
    }
    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
    /// Attaches `cause` as the underlying cause and tells it after the message
    /// (`message: cause`): a reader sees why, and a program finds the cause itself through
    /// [`std::error::Error::source`] (or [`Error::find_source`]) instead of parsing text.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.message = format!("{}: {}", self.message, chain(&cause));
        self.source = Some(Box::new(cause));
        self
    }
    /// The first cause of type `T` in this error's chain of sources, if any.
    pub fn find_source<T: std::error::Error + 'static>(&self) -> Option<&T> {
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            if let Some(t) = e.downcast_ref::<T>() {
                return Some(t);
            }
            cur = e.source();
        }
        None
    }
    /// Prefixes the message with context (for instance the file it concerns).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
    /// Appends a note to the message (`message; note`), keeping the kind, the hint and the
    /// source: what a caller adds about its own state (files put back, an entry kept) must not
    /// hide the cause, such as the AADSTS code callers branch on.
    pub fn with_note(mut self, note: impl fmt::Display) -> Self {
        self.message = format!("{}; {note}", self.message);
        self
    }
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message, without the hint.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::Input => exit::INPUT,
            ErrorKind::Remote => exit::REMOTE,
            ErrorKind::Check => exit::CHECK,
            ErrorKind::Internal => exit::FAILURE,
        }
    }
}

/// An error and its causes on one line, each cause once (reqwest's own message, for one, hides
/// the root cause).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = s.source();
    }
    parts.join(": ")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("hint", &self.hint)
            .field("aadsts", &self.remote.aadsts)
            .field("graph_code", &self.remote.graph)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_documented_exit_codes() {
        assert_eq!(Error::input("x").exit_code(), 2);
        assert_eq!(Error::remote("x").exit_code(), 3);
        assert_eq!(Error::check("x").exit_code(), 4);
        assert_eq!(Error::internal("x").exit_code(), 1);
        let nf = Error::io(Path::new("/nope"), "read", std::io::ErrorKind::NotFound.into());
        assert_eq!(nf.exit_code(), 2);
        assert!(nf.to_string().contains("/nope"));
    }

    #[test]
    fn notes_and_context_keep_kind_hint_and_source() {
        let cause = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = Error::remote("refused").with_hint("retry later").with_source(cause);
        let e = e.with_aadsts(700027).with_graph_code("Authorization_RequestDenied");
        let e = e.context("verification failed").with_note("the entry was taken out again");
        assert_eq!(e.message(), "verification failed: refused; the entry was taken out again");
        assert_eq!((e.kind(), e.exit_code(), e.hint()), (ErrorKind::Remote, 3, Some("retry later")));
        assert_eq!((e.aadsts(), e.graph_code()), (Some(700027), Some("Authorization_RequestDenied")));
        let source = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(source.map(|s| s.kind()), Some(std::io::ErrorKind::ConnectionRefused));
    }

    #[test]
    fn a_cause_is_told_in_the_message_and_kept_as_the_source() {
        let cause: std::result::Result<u8, _> = "x".parse::<u8>();
        let e = Error::input("--days 'x': not a number").caused_by(cause.unwrap_err());
        assert_eq!(e.message(), "--days 'x': not a number: invalid digit found in string");
        assert_eq!(e.exit_code(), 2);
        assert!(e.find_source::<std::num::ParseIntError>().is_some());
        assert!(e.find_source::<std::io::Error>().is_none());
        // Found however deep: a cause of a cause.
        let outer = Error::remote("outer").caused_by(Error::input("inner").caused_by(std::io::Error::other("root")));
        assert_eq!(outer.find_source::<std::io::Error>().map(|e| e.to_string()), Some("root".to_string()));
    }
}
