//! The `r1flow` binary: the CLI edge over the library (see `cli`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
