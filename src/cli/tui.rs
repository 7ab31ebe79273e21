//! `medxfer tui` (and `medxfer` with no subcommand): the terminal UI.

use crate::home::Ctx;
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> Result<i32> {
    crate::tui::run(&Ctx::load()?)
}
