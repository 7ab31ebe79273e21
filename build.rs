//! Bakes libtorch's library folder into the binaries' rpath, so medxfer-torch runs from any directory with no
//! LD_LIBRARY_PATH (the front `medxfer` links no libtorch, see below), compiles the C++ shim of src/perf
//! against libtorch's headers, and records the git commit for `medxfer doctor`.
use std::process::Command;

fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        // The front links the same rlibs, so torch-sys's C++ objects are pulled in by dead code; their inline
        // template functions are also referenced by libtorch_cpu.so, which would export them, keep them alive
        // through --gc-sections and so make libtorch NEEDED. Hidden archive symbols stay dead.
        println!("cargo:rustc-link-arg-bin=medxfer=-Wl,--exclude-libs=ALL");
        println!("cargo:rustc-env=MEDXFER_LIBTORCH_LIB={lib}");
        build_shim(std::path::Path::new(&lib));
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=MEDXFER_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}

/// The shim uses only ATen's public C++ API, compiled the way torch-sys compiles its own wrapper.
fn build_shim(lib: &std::path::Path) {
    let include = lib.parent().expect("libtorch's lib folder has a parent").join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    println!("cargo:rerun-if-changed=src/perf/shim.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    cc::Build::new()
        .cpp(true)
        .file("src/perf/shim.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .warnings(false)
        .compile("medxfer_shim");
}
