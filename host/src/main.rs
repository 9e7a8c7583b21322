//! The `mlhost` binary: the command line of the library ([`mlhost::run_cli`]).

fn main() -> std::process::ExitCode {
    mlhost::run_cli()
}
