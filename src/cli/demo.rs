//! `keycred demo` (not implemented yet).

use super::Ctx;
use crate::{Error, Result};

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: &Args, _ctx: &Ctx) -> Result<u8> {
    Err(Error::internal("not implemented yet"))
}
