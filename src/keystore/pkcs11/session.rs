//! Reaching a token: the module loaded once per process, the token found by the URI's
//! attributes, one session per token, logged in once.
//!
//! PKCS#11 allows one `C_Initialize` per module and process, and a login applies to every session
//! of the process: so modules and sessions are kept in process-wide tables, and every key on a
//! token shares its session behind a mutex (a cryptoki `Session` is `Send`, not `Sync`).

use super::{token_error, Needs};
use crate::keystore::uri::Pkcs11Uri;
use crate::secret::SecretString;
use crate::{Error, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// An open, logged-in session on one token.
pub struct Token {
    /// The token's label, for messages.
    pub label: String,
    /// The module's path, for messages.
    pub module: PathBuf,
    pub(super) mechanisms: Vec<MechanismType>,
    session: Mutex<Session>,
}

impl Token {
    /// Runs `f` with the token's session (one caller at a time).
    pub(super) fn with_session<T>(&self, f: impl FnOnce(&Session) -> T) -> Result<T> {
        let s = self.session.lock().map_err(|_| Error::internal("a PKCS#11 session lock was poisoned"))?;
        Ok(f(&s))
    }
    /// Whether the token offers `m`.
    pub(super) fn has(&self, m: MechanismType) -> bool {
        self.mechanisms.contains(&m)
    }
}

/// How to reach a token: the module (when the URI has no `module-path`) and the PIN (when the
/// URI has no `pin-source`).
#[derive(Default, Debug, Clone)]
pub struct Access {
    /// The PKCS#11 module, used when the URI names none.
    pub module: Option<PathBuf>,
    /// The user PIN, used when the URI has no `pin-source`.
    pub pin: Option<SecretString>,
}

type Sessions = HashMap<(PathBuf, u64), Arc<Token>>;

fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static M: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

fn sessions() -> &'static Mutex<Sessions> {
    static S: OnceLock<Mutex<Sessions>> = OnceLock::new();
    S.get_or_init(Default::default)
}

/// The token `uri` names, opened and logged in (once per process).
pub fn open_token(uri: &Pkcs11Uri, access: &Access) -> Result<Arc<Token>> {
    let module = module_path(uri, access)?;
    let ctx = load_module(&module)?;
    let (slot, label) = find_slot(&ctx, uri, &module)?;
    let mut table = sessions().lock().map_err(|_| Error::internal("the PKCS#11 session table lock was poisoned"))?;
    if let Some(t) = table.get(&(module.clone(), slot.id())) {
        return Ok(t.clone());
    }
    let info = ctx.get_token_info(slot).map_err(|e| token_error(e, &label, "reading the token's information"))?;
    let session = ctx
        .open_rw_session(slot)
        .or_else(|_| ctx.open_ro_session(slot))
        .map_err(|e| token_error(e, &label, "opening a session"))?;
    if info.login_required() {
        let pin = pin(uri, access, &label)?;
        let pin = cryptoki::types::AuthPin::new(pin.expose().into());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(token_error(e, &label, "logging in")),
        }
    }
    let mechanisms = ctx.get_mechanism_list(slot).map_err(|e| token_error(e, &label, "listing its mechanisms"))?;
    let token = Arc::new(Token { label, module: module.clone(), mechanisms, session: Mutex::new(session) });
    table.insert((module, slot.id()), token.clone());
    Ok(token)
}

/// The module: the URI's `module-path`, else the one given by the caller.
fn module_path(uri: &Pkcs11Uri, access: &Access) -> Result<PathBuf> {
    match (&uri.module_path, &access.module) {
        (Some(p), _) | (None, Some(p)) => Ok(p.clone()),
        (None, None) => Err(Error::input(format!("{uri}: no PKCS#11 module named"))
            .with_hint("name the token's module (the shared library its vendor ships), e.g. module-path=/usr/lib/softhsm/libsofthsm2.so in the URI's query")
            .with_source(Needs::Module)),
    }
}

fn load_module(path: &Path) -> Result<Pkcs11> {
    let mut table = modules().lock().map_err(|_| Error::internal("the PKCS#11 module table lock was poisoned"))?;
    if let Some(m) = table.get(path) {
        return Ok(m.clone());
    }
    if !path.is_file() {
        return Err(Error::input(format!("PKCS#11 module {}: no such file", path.display()))
            .with_hint("give the path of the token's module (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so; OpenSC: /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so)"));
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        Error::input(format!("{}: cannot load it as a PKCS#11 module", path.display()))
            .caused_by(e)
            .with_hint("give the token vendor's PKCS#11 shared library")
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(Error::input(format!("{}: the PKCS#11 module failed to start", path.display()))
                .caused_by(e)
                .with_hint("check the module's own configuration (SoftHSM2: SOFTHSM2_CONF and its tokendir)"))
        }
    }
    table.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// The one slot whose token matches the URI's token and slot attributes.
fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri, module: &Path) -> Result<(Slot, String)> {
    let slots = ctx.get_slots_with_token().map_err(|e| token_error(e, "?", "listing the slots"))?;
    let mut found = Vec::new();
    let mut labels = Vec::new();
    for slot in slots {
        let Ok(t) = ctx.get_token_info(slot) else { continue };
        let label = t.label().trim_end().to_string();
        labels.push(label.clone());
        let eq = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w.trim_end() == have.trim_end());
        let mut ok = eq(&uri.token, &label)
            && eq(&uri.manufacturer, t.manufacturer_id())
            && eq(&uri.serial, t.serial_number())
            && eq(&uri.model, t.model())
            && uri.slot_id.is_none_or(|id| id == slot.id());
        if ok && (uri.slot_description.is_some() || uri.slot_manufacturer.is_some()) {
            ok = ctx.get_slot_info(slot).is_ok_and(|s| {
                eq(&uri.slot_description, s.slot_description()) && eq(&uri.slot_manufacturer, s.manufacturer_id())
            });
        }
        if ok {
            found.push((slot, label));
        }
    }
    let listed = if labels.is_empty() { "none".to_string() } else { labels.join(", ") };
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::input(format!("{uri}: no such token in {} (tokens there: {listed})", module.display()))
            .with_hint("check token= against the token's label (pkcs11-tool --module MODULE --list-tokens)")),
        _ => Err(Error::input(format!("{uri}: {} tokens match (tokens: {listed})", found.len()))
            .with_hint("name the token: pkcs11:token=LABEL;object=...")),
    }
}

/// The PIN: from the URI's `pin-source` file, else the caller's.
fn pin(uri: &Pkcs11Uri, access: &Access, label: &str) -> Result<SecretString> {
    if let Some(file) = &uri.pin_source {
        let bytes = crate::fsio::read_limited(file, 4096)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::input(format!("{}: the PIN file is not text", file.display())))?;
        let pin = text.trim_end_matches(['\n', '\r']);
        if pin.is_empty() {
            return Err(Error::input(format!("{}: the PIN file is empty", file.display())));
        }
        return Ok(SecretString::new(pin));
    }
    access.pin.clone().ok_or_else(|| {
        Error::input(format!("token '{label}' needs its user PIN, and none was given"))
            .with_hint("give the PIN in a file named by pin-source=file:/path in the URI's query")
            .with_source(Needs::Pin)
    })
}
