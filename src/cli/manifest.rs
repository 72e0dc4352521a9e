//! `keycred manifest` (not implemented yet).

use super::Ctx;
use crate::{Error, Result};

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Not implemented yet
    List,
}

/// Runs the command.
pub fn run(_cmd: &Cmd, _ctx: &Ctx) -> Result<u8> {
    Err(Error::internal("not implemented yet"))
}
