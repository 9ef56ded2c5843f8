//! Build script: checks that libmujoco is there (in `.cache/lib`, filled by
//! `scripts/bootstrap.sh`) before anything links against it, and lets target/release/brainloop
//! find it at run time without `LD_LIBRARY_PATH`.

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let lib = std::path::Path::new(&manifest).join(".cache").join("lib");
    // Where mujoco-rs links from (.cargo/config.toml points it at .cache/lib).
    let link_dir = std::env::var_os("MUJOCO_DYNAMIC_LINK_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| lib.clone());
    let has_mujoco = std::fs::read_dir(&link_dir)
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libmujoco.so"))
        })
        .unwrap_or(false);
    if !has_mujoco {
        println!(
            "cargo::error=no libmujoco.so* in {}: the MuJoCo library is installed by the bootstrap, run `scripts/bootstrap.sh` (or `make bootstrap`) first",
            link_dir.display()
        );
    }
    // Absolute path of this checkout first, then relative to the binary (target/release/..).
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../../.cache/lib");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", link_dir.display());
    println!("cargo:rerun-if-env-changed=MUJOCO_DYNAMIC_LINK_DIR");
}
