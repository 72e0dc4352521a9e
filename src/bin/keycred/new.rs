//! `keycred new`: generate an RSA key and a self-signed certificate, write the files, print the
//! credential.

use super::output::{print_pairs, with_spinner};
use super::Ctx;
use keycred::cert::{generate, KeySize, NewCertificate, Validity};
use keycred::secret::{self, SecretString};
use keycred::{dates, fsio, Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Arguments of `keycred new` (also used by `rotate`).
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Base name of the files: NAME.key, NAME.cer, NAME.pem (and NAME.pfx)
    #[arg(long)]
    pub name: String,
    /// Directory for the files
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
    /// Subject DN (default CN=NAME), e.g. 'CN=MyCompanyName MyAppName Cert, O=Contoso, C=FR'
    #[arg(long)]
    pub subject: Option<String>,
    /// RSA key size: 2048, 3072 or 4096
    #[arg(long, default_value_t = 2048)]
    pub key_size: u32,
    /// Validity in days, from --not-before or from now [default: 365]
    #[arg(long, conflicts_with = "not_after")]
    pub days: Option<u32>,
    /// Start of validity (YYYY-MM-DD or RFC 3339) [default: now]
    #[arg(long)]
    pub not_before: Option<String>,
    /// End of validity (YYYY-MM-DD or RFC 3339) [default: start + --days]
    #[arg(long)]
    pub not_after: Option<String>,
    /// Also write NAME.pfx (PKCS#12, AES-256), protected by the --password-env password
    #[arg(long, requires = "password_env")]
    pub pfx: bool,
    /// Environment variable holding the passphrase for the key (and PFX)
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Replace existing files
    #[arg(long)]
    pub force: bool,
}

/// Paths written by `new`.
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
pub struct FilePaths {
    key: PathBuf,
    cert: PathBuf,
    bundle: PathBuf,
    pfx: Option<PathBuf>,
}

impl FilePaths {
    /// `DIR/NAME.key`, `.cer`, `.pem`, and `.pfx` when asked for.
    pub fn new(dir: &Path, name: &str, pfx: bool) -> Self {
        let path = |ext: &str| dir.join(format!("{name}.{ext}"));
        FilePaths { key: path("key"), cert: path("cer"), bundle: path("pem"), pfx: pfx.then(|| path("pfx")) }
    }
    /// Every path, in writing order.
    pub fn all(&self) -> impl Iterator<Item = &Path> {
        [&self.key, &self.cert, &self.bundle].into_iter().chain(self.pfx.as_ref()).map(PathBuf::as_path)
    }
}

/// Writes the key (0600, encrypted with `password` when given), the certificate, the key+cert
/// bundle (0600) and, when `paths` has one, the PFX (which needs `password`), all or nothing.
pub fn write_files(
    paths: &FilePaths,
    cert: &keycred::cert::Certificate,
    key: &keycred::cert::PrivateKey,
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
            Error::input("a PFX needs a password").with_hint("name the variable holding it with --password-env VAR")
        })?;
        planned.push(fsio::PlannedFile {
            path: pfx.clone(),
            data: keycred::cert::pfx::export(cert, key, pw, alias)?,
            mode: fsio::SECRET_MODE,
        });
    }
    fsio::write_set(&planned, force)?;
    let s = |p: &PathBuf| p.display().to_string();
    Ok(Files { key: s(&paths.key), cert: s(&paths.cert), bundle: s(&paths.bundle), pfx: paths.pfx.as_ref().map(s) })
}

/// A validated `new` request: every argument checked, nothing generated or written yet. Lets
/// `rotate` check everything else before it writes any file.
pub struct Plan {
    req: NewCertificate,
    paths: FilePaths,
    password: Option<SecretString>,
    name: String,
    force: bool,
}

impl Plan {
    /// Every path the plan writes.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.paths.all().map(Path::to_path_buf).collect()
    }
    /// Generates the key and certificate (in memory only).
    pub fn generate(&self, ctx: &Ctx) -> Result<(keycred::cert::Certificate, keycred::cert::PrivateKey)> {
        let size = self.req.key_size;
        if size == KeySize::Rsa2048 {
            generate(&self.req)
        } else {
            with_spinner(ctx, &format!("generating an RSA-{} key", size.bits()), || generate(&self.req))
        }
    }
    /// Writes the files for `cert` and `key`.
    pub fn write(&self, cert: &keycred::cert::Certificate, key: &keycred::cert::PrivateKey) -> Result<Files> {
        write_files(&self.paths, cert, key, self.password.as_ref(), &self.name, self.force)
    }
}

/// Validates the arguments; generates and writes nothing.
pub fn plan(a: &Args) -> Result<Plan> {
    if a.name.is_empty() || a.name.contains(['/', '\\']) {
        return Err(Error::input(format!("--name '{}': must be a plain file name", a.name))
            .with_hint("use --out-dir for the directory"));
    }
    let key_size = KeySize::from_bits(a.key_size)?;
    let days = a.days.unwrap_or(365);
    let validity = match (&a.not_before, &a.not_after) {
        (Some(b), Some(e)) => Validity::Range(dates::parse(b, "--not-before")?, dates::parse(e, "--not-after")?),
        (Some(b), None) => Validity::StartDays(dates::parse(b, "--not-before")?, days),
        (None, Some(e)) => Validity::Until(dates::parse(e, "--not-after")?),
        (None, None) => Validity::Days(days),
    };
    let subject = a.subject.clone().unwrap_or_else(|| format!("CN={}", a.name));
    keycred::cert::dn::parse(&subject)?;
    keycred::cert::generate::resolve_validity(validity, dates::now())?;
    let password: Option<SecretString> = a.password_env.as_deref().map(secret::from_env).transpose()?;
    if !a.out_dir.is_dir() {
        return Err(Error::input(format!("--out-dir {}: not a directory", a.out_dir.display()))
            .with_hint("create the directory first"));
    }
    let paths = FilePaths::new(&a.out_dir, &a.name, a.pfx);
    if !a.force {
        fsio::ensure_absent(paths.all())?;
    }
    Ok(Plan {
        req: NewCertificate { subject, key_size, validity },
        paths,
        password,
        name: a.name.clone(),
        force: a.force,
    })
}

/// Runs `keycred new`: validates the arguments, generates, writes; nothing is written when
/// anything is wrong.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    let plan = plan(a)?;
    let (cert, key) = plan.generate(ctx)?;
    let files = plan.write(&cert, &key)?;
    let cred = cert.credential(dates::now());
    if ctx.json() {
        let mut v = serde_json::to_value(&cred).map_err(|e| Error::internal(e.to_string()))?;
        v["files"] = serde_json::to_value(&files).map_err(|e| Error::internal(e.to_string()))?;
        ctx.print_json(&v);
    } else {
        let mut pairs = cred.text_lines();
        pairs.push(("key file", files.key.clone()));
        pairs.push(("cert file", files.cert.clone()));
        pairs.push(("bundle file", files.bundle.clone()));
        if let Some(p) = &files.pfx {
            pairs.push(("pfx file", p.clone()));
        }
        print_pairs(&pairs);
    }
    Ok(keycred::error::exit::OK)
}
