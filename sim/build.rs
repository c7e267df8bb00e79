//! The checkout's scenarios, assets and models are found at run time
//! (`scenario::sim_dir`); `CARGO_MANIFEST_DIR`, baked in at compile time, is
//! only the last resort. Asking cargo to rerun this script when that
//! variable changes makes a moved checkout rebuild in most cases, but cargo
//! can still reuse a binary built from an identical checkout elsewhere in a
//! shared `CARGO_TARGET_DIR`, which is why the run-time lookup comes first.

fn main() {
    println!("cargo:rerun-if-env-changed=CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=build.rs");
}
