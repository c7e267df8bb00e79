//! `telic` — run Telic scenes from the command line (the program is
//! [`telic_sim::cli`], shared with the `telic` command of the Python package).

fn main() -> std::process::ExitCode {
    let status = telic_sim::cli::main(std::env::args_os());
    std::process::ExitCode::from(u8::try_from(status).unwrap_or(1))
}
