//! Compiles the C half of the shim (the `__wrap_` functions) into the
//! library, so that `libmqtls_shim.a` is the one archive a target links.

fn main() {
    println!("cargo:rerun-if-changed=c/wraps.c");
    cc::Build::new()
        .file("c/wraps.c")
        // The call-stack walk starts from the wrapper's own frame.
        .flag("-fno-omit-frame-pointer")
        .flag_if_supported("-Wall")
        .flag_if_supported("-Wextra")
        .compile("mqtls_shim_wraps");
}
