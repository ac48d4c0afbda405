//! The `wirewatch` binary: everything lives in the library; see `wirewatch::cli`.

fn main() -> std::process::ExitCode {
    wirewatch::cli::main()
}
