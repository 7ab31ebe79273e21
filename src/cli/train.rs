//! `medxfer train --run DIR`: one fine-tuning run end to end (see crate::train::run).

use crate::home::Ctx;
use anyhow::Result;
use clap::Args as ClapArgs;
use std::path::PathBuf;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The run folder holding spec.toml; resumes from its last.ckpt when there is one.
    #[arg(long)]
    pub run: PathBuf,
}

pub fn run(args: Args) -> Result<i32> {
    let ctx = Ctx::load()?;
    crate::train::run::run(&args.run, &ctx.home)
}
