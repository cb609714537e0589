//! `mqtls`: the harness's command line.

fn main() {
    std::process::exit(mqtls_harness::cli::main());
}
