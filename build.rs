//! Build script: lets target/release/brainloop find libmujoco (in `.cache/lib`, filled by
//! `scripts/bootstrap.sh`) at run time without `LD_LIBRARY_PATH`.

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let lib = std::path::Path::new(&manifest).join(".cache").join("lib");
    // Absolute path of this checkout first, then relative to the binary (target/release/..).
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../../.cache/lib");
    println!("cargo:rerun-if-changed=build.rs");
}
