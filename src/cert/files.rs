//! A credential's files on disk: `NAME.key`, `NAME.cer`, `NAME.pem` (key then certificate) and,
//! when asked for, `NAME.pfx`, written all or nothing.
//!
//! [`Plan`] checks a whole request (name, directory, subject, dates, existing files) before a key
//! is generated, so a rotation can check everything else too before it writes anything. A
//! missing directory is created (0700, as the key inside is secret) only when the files are
//! written.

use super::pfx::Protection;
use super::{generate, load::LoadedCredential, Certificate, NewCertificate, PrivateKey};
use crate::secret::SecretString;
use crate::{dates, fsio, Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Paths written for one credential, as printed in `-o json` (`files`).
#[derive(Serialize, Debug, Clone)]
pub struct Files {
    /// Private key (PKCS#8 PEM).
    pub key: String,
    /// Certificate (PEM).
    pub cert: String,
    /// Key then certificate (PEM).
    pub bundle: String,
    /// PKCS#12, when asked for.
    pub pfx: Option<String>,
}

/// Where the files of credential NAME go in a directory.
#[derive(Debug, Clone)]
pub struct FilePaths {
    dir: PathBuf,
    key: PathBuf,
    cert: PathBuf,
    bundle: PathBuf,
    pfx: Option<PathBuf>,
    pfx_protection: Protection,
}

impl FilePaths {
    /// `DIR/NAME.key`, `.cer`, `.pem`, and `.pfx` when asked for (modern protection).
    pub fn new(dir: &Path, name: &str, pfx: bool) -> Self {
        Self::with_pfx(dir, name, pfx.then_some(Protection::Modern))
    }
    /// `DIR/NAME.key`, `.cer`, `.pem`, and `.pfx` protected as `pfx` says when given.
    pub fn with_pfx(dir: &Path, name: &str, pfx: Option<Protection>) -> Self {
        let path = |ext: &str| dir.join(format!("{name}.{ext}"));
        FilePaths {
            dir: dir.to_path_buf(),
            key: path("key"),
            cert: path("cer"),
            bundle: path("pem"),
            pfx: pfx.map(|_| path("pfx")),
            pfx_protection: pfx.unwrap_or(Protection::Modern),
        }
    }
    /// Every path, in writing order.
    pub fn all(&self) -> impl Iterator<Item = &Path> {
        [&self.key, &self.cert, &self.bundle].into_iter().chain(self.pfx.as_ref()).map(PathBuf::as_path)
    }
    /// The key+certificate bundle: what a credential loaded back from these files names.
    pub fn bundle(&self) -> &Path {
        &self.bundle
    }
}

/// Writes the key (0600, encrypted with `password` when given), the certificate, the key+cert
/// bundle (0600) and, when `paths` has one, the PFX (which needs `password`; `alias` is its
/// friendly name), all or nothing. Existing files are replaced only with `force`.
pub fn write_files(
    paths: &FilePaths,
    cert: &Certificate,
    key: &PrivateKey,
    password: Option<&SecretString>,
    alias: &str,
    force: bool,
) -> Result<Files> {
    let key_pem = key.to_pem(password)?;
    let cert_pem = cert.to_pem();
    let mut planned = vec![
        fsio::PlannedFile { path: paths.key.clone(), data: key_pem.clone().into_bytes(), mode: fsio::SECRET_MODE },
        fsio::PlannedFile { path: paths.cert.clone(), data: cert_pem.clone().into_bytes(), mode: fsio::PUBLIC_MODE },
        fsio::PlannedFile {
            path: paths.bundle.clone(),
            data: format!("{key_pem}{cert_pem}").into_bytes(),
            mode: fsio::SECRET_MODE,
        },
    ];
    if let Some(pfx) = &paths.pfx {
        let pw = password.ok_or_else(|| {
            Error::input("a PFX needs a password").with_hint("give the password that protects the key and the PFX")
        })?;
        planned.push(fsio::PlannedFile {
            path: pfx.clone(),
            data: super::pfx::export(cert, key, pw, alias, paths.pfx_protection)?,
            mode: fsio::SECRET_MODE,
        });
    }
    if !paths.dir.exists() {
        fsio::create_private_dir(&paths.dir)?;
    }
    fsio::write_set(&planned, force)?;
    let s = |p: &PathBuf| p.display().to_string();
    Ok(Files { key: s(&paths.key), cert: s(&paths.cert), bundle: s(&paths.bundle), pfx: paths.pfx.as_ref().map(s) })
}

/// Checks, before anything is written, that `dir` can be an output directory: it, or the
/// nearest of its parents that exists, is a directory (the rest is created by
/// [`fsio::create_private_dir`]). `flag` names the option in the message.
pub fn check_out_dir(dir: &Path, flag: &str) -> Result<()> {
    match dir.ancestors().find(|d| d.exists()).filter(|d| !d.is_dir()) {
        Some(existing) => {
            Err(Error::input(format!("{flag} {}: {} is not a directory", dir.display(), existing.display()))
                .with_hint("give a directory (it is created when missing), not a file"))
        }
        None => Ok(()),
    }
}

/// Where and how a new credential's files are written.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// Base name of the files (a plain file name).
    pub name: String,
    /// Directory for the files; created (0700) when missing.
    pub dir: PathBuf,
    /// Also write `NAME.pfx` (needs `password`), protected this way.
    pub pfx: Option<Protection>,
    /// Encrypts the key (and protects the PFX).
    pub password: Option<SecretString>,
    /// Replace existing files.
    pub force: bool,
}

/// A validated request for a new credential and its files: every argument checked, nothing
/// generated or written yet.
#[derive(Debug)]
pub struct Plan {
    req: NewCertificate,
    paths: FilePaths,
    password: Option<SecretString>,
    name: String,
    force: bool,
}

impl Plan {
    /// Checks the certificate request (subject, dates) and the files (a plain name, an existing
    /// directory, no file in the way unless `force`); generates and writes nothing.
    pub fn new(req: NewCertificate, files: FileOptions) -> Result<Plan> {
        let FileOptions { name, dir, pfx, password, force } = files;
        if name.is_empty() || name.contains(['/', '\\']) {
            return Err(Error::input(format!("credential name '{name}': must be a plain file name"))
                .with_hint("give the directory separately"));
        }
        super::dn::parse(&req.subject)?;
        super::generate::resolve_validity(req.validity, dates::now())?;
        if pfx.is_some() && password.is_none() {
            return Err(Error::input("a PFX needs a password").with_hint("give the password that protects the PFX"));
        }
        // The directory, or the nearest of its parents that exists, must be a directory: the
        // rest is created when the files are written.
        if let Some(existing) = dir.ancestors().find(|a| a.exists()) {
            if !existing.is_dir() {
                return Err(Error::input(format!("{}: not a directory", existing.display()))
                    .with_hint("give a directory (it is created when missing), not a file"));
            }
        }
        let paths = FilePaths::with_pfx(&dir, &name, pfx);
        if !force {
            fsio::ensure_absent(paths.all())?;
        }
        Ok(Plan { req, paths, password, name, force })
    }
    /// The certificate request.
    pub fn request(&self) -> &NewCertificate {
        &self.req
    }
    /// Every path the plan writes.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.paths.all().map(Path::to_path_buf).collect()
    }
    /// Generates the key and certificate (in memory only).
    pub fn generate(&self) -> Result<(Certificate, PrivateKey)> {
        generate(&self.req)
    }
    /// Writes the files for `cert` and `key`.
    pub fn write(&self, cert: &Certificate, key: &PrivateKey) -> Result<Files> {
        write_files(&self.paths, cert, key, self.password.as_ref(), &self.name, self.force)
    }
    /// Writes the files and returns them with the credential, named by its bundle file.
    pub fn write_credential(&self, cert: Certificate, key: PrivateKey) -> Result<(Files, LoadedCredential)> {
        let files = self.write(&cert, &key)?;
        let cred = LoadedCredential::new(cert, Vec::new(), key, self.paths.bundle())?;
        Ok((files, cred))
    }
}
