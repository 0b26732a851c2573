//! The `cargo xtask` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    xtask::main_with(std::env::args_os())
}
