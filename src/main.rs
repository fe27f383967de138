//! The `apim-deploy` binary: parse arguments, run, map the outcome to an exit code.
//! Everything else lives in the library (`apim_deploy::cli` dispatches to the ops).

fn main() -> std::process::ExitCode {
    apim_deploy::cli::main()
}
