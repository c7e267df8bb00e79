//! `telic` — run Telic scenes from the command line.

mod cli;

fn main() -> anyhow::Result<()> {
    cli::main()
}
