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
/// cuda_graph.cpp also needs the CUDA runtime's headers; without them it is built as stubs that say so.
fn build_shim(lib: &std::path::Path) {
    let torch = lib.parent().expect("libtorch's lib folder has a parent");
    let include = torch.join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    println!("cargo:rerun-if-changed=src/perf/shim.cpp");
    println!("cargo:rerun-if-changed=src/perf/cuda_graph.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("src/perf/shim.cpp")
        .file("src/perf/cuda_graph.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .warnings(false);
    if let Some(cuda) = cuda_headers(torch) {
        println!("cargo:rerun-if-changed={}", cuda.display());
        build.include(cuda).define("MEDXFER_CUDA_GRAPH", None);
    }
    build.compile("medxfer_shim");
}

/// A folder with the CUDA runtime's host headers: a toolkit's (CUDA_HOME, /usr/local/cuda) or pip's
/// (nvidia-cuda-runtime + nvidia-cuda-crt beside the torch package, e.g. nvidia/cu13/include).
fn cuda_headers(torch: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut candidates: Vec<std::path::PathBuf> =
        std::env::var_os("CUDA_HOME").map(|h| vec![h.into()]).unwrap_or_default();
    candidates.iter_mut().for_each(|h| h.push("include"));
    if let Some(nvidia) = torch.parent().map(|p| p.join("nvidia")) {
        let mut pip: Vec<_> =
            std::fs::read_dir(nvidia).into_iter().flatten().flatten().map(|e| e.path().join("include")).collect();
        pip.sort();
        candidates.extend(pip);
    }
    candidates.push("/usr/local/cuda/include".into());
    candidates.into_iter().find(|d| d.join("cuda_runtime_api.h").exists() && d.join("crt/host_defines.h").exists())
}
