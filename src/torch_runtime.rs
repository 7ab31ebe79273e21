//! The libtorch the process actually loaded: its folder and version, and making CUDA visible.
//!
//! With as-needed linking the binary depends on libtorch_cpu.so only, so libtorch_cuda.so (which
//! registers the CUDA backend when loaded) is opened here, from the same folder, when a GPU is wanted.
//! On a machine without CUDA the open fails and medxfer runs on CPU.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The folder holding the loaded libtorch_cpu.so, read from /proc/self/maps.
pub fn libtorch_lib_dir() -> Option<PathBuf> {
    // Touch libtorch so it is mapped even before any tensor was made.
    let _ = tch::get_num_threads();
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .map(|p| PathBuf::from(p).parent().map(PathBuf::from).unwrap_or_default())
}

/// libtorch's version, from the package's version.py (pip) or build-version (libtorch zip).
pub fn libtorch_version() -> Option<String> {
    let root = libtorch_lib_dir()?.parent()?.to_path_buf();
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("__version__") {
                return Some(
                    v.trim_start_matches([' ', '=', ':', 's', 't', 'r']).trim().trim_matches(['\'', '"']).to_string(),
                );
            }
        }
    }
    std::fs::read_to_string(root.join("build-version")).ok().map(|s| s.trim().to_string())
}

/// Opens libtorch_cuda.so once; Ok(path) when loaded, Err(reason) when CUDA is not usable.
pub fn load_cuda() -> Result<PathBuf, String> {
    static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    LOADED.get_or_init(open_cuda_library).clone()
}

fn open_cuda_library() -> Result<PathBuf, String> {
    let dir = libtorch_lib_dir().ok_or("libtorch_cpu.so is not mapped")?;
    let path = dir.join("libtorch_cuda.so");
    if !path.exists() {
        return Err(format!("{} does not exist (a CPU-only libtorch)", path.display()));
    }
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: dlopen with a valid NUL-terminated path; the handle is deliberately never closed.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a thread-local C string or null.
        let reason = unsafe {
            let e = libc::dlerror();
            if e.is_null() {
                "unknown dlopen error".into()
            } else {
                std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        };
        return Err(reason);
    }
    Ok(path)
}

/// What this libtorch offers, for `doctor` (printed by the sibling's hidden `torch-probe`).
pub fn probe() -> crate::doctor::LibtorchReport {
    let (cuda_available, cuda_note) = match load_cuda() {
        Ok(_) if tch::Cuda::is_available() => (true, None),
        Ok(_) => (false, Some("libtorch_cuda.so loaded but no CUDA device is visible".to_string())),
        Err(reason) => (false, Some(reason)),
    };
    crate::doctor::LibtorchReport {
        libtorch_version: libtorch_version(),
        libtorch_lib_dir: libtorch_lib_dir().map(|p| p.display().to_string()),
        cpu_threads: tch::get_num_threads(),
        cuda_available,
        cuda_note,
        cudnn_available: cuda_available && tch::Cuda::cudnn_is_available(),
    }
}

/// Parses a device name: "cpu", "cuda" or "cuda:N". Loads CUDA when a GPU is named.
pub fn device(name: &str) -> anyhow::Result<tch::Device> {
    let name = name.trim();
    if name == "cpu" {
        return Ok(tch::Device::Cpu);
    }
    let asked = match crate::gpu::Wanted::parse(name).map_err(anyhow::Error::msg)? {
        crate::gpu::Wanted::Gpu(n) => n as usize,
        _ => 0,
    };
    if let Err(reason) = load_cuda() {
        anyhow::bail!("device {name} was asked for but CUDA cannot be loaded: {reason}");
    }
    let count = tch::Cuda::device_count() as usize;
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    match crate::gpu::cuda_index(asked, count, visible.as_deref()) {
        Some(index) => Ok(tch::Device::Cuda(index)),
        None => anyhow::bail!(
            "device {name} was asked for but {count} GPU(s) are visible (CUDA_VISIBLE_DEVICES={:?})",
            visible.unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_loaded_libtorch_and_its_version() {
        let dir = libtorch_lib_dir().expect("libtorch_cpu.so mapped");
        assert!(dir.join("libtorch_cpu.so").exists());
        let v = libtorch_version().expect("a version");
        assert!(v.starts_with("2.11."), "{v}");
    }

    #[test]
    fn device_names() {
        assert_eq!(device("cpu").unwrap(), tch::Device::Cpu);
        assert!(device("gpu").unwrap_err().to_string().contains("\"gpu\""));
        assert!(device("cuda:x").is_err());
    }
}
