use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `canary log | head` should end quietly, as other Unix tools do, not panic on a closed pipe.
    // SAFETY: called first thing, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    canary::output::init_colour();
    let cli = canary::cli::Cli::parse();
    let result = canary::cli::run(cli);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprint!("{}", canary::report::render(&err));
            ExitCode::from(canary::error::exit_code(&err) as u8)
        }
    }
}
