//! `medxfer doctor [--json]`.

use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<i32> {
    let ctx = crate::home::Ctx::load()?;
    let report = crate::doctor::gather(&ctx.home);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        crate::doctor::print_text(&report);
    }
    Ok(0)
}
