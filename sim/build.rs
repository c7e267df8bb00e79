//! The shipped scenarios and models are found through `CARGO_MANIFEST_DIR`,
//! baked in at compile time. Cargo does not rebuild a package when only its
//! folder changed (two checkouts sharing one `CARGO_TARGET_DIR`), so a stale
//! binary would read the other checkout's files; this makes the move a reason
//! to rebuild.

fn main() {
    println!("cargo:rerun-if-env-changed=CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=build.rs");
}
