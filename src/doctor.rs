//! `medxfer doctor`: what this machine offers medxfer, and how to fix what is missing. Runs in the front
//! binary without libtorch; the libtorch facts come from the sibling (`crate::torch_bin::probe`).

use crate::home::Home;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct Report {
    pub medxfer_version: String,
    pub git_commit: String,
    #[serde(flatten)]
    pub libtorch: LibtorchReport,
    pub gpus: Vec<crate::gpu::Gpu>,
    pub home: Home,
    pub free_disk_bytes: Option<u64>,
    /// Each missing piece with the command that fixes it.
    pub problems: Vec<Problem>,
}

/// What the loaded libtorch offers (`medxfer-torch torch-probe` prints it as JSON).
#[derive(Debug, Serialize, Deserialize)]
pub struct LibtorchReport {
    pub libtorch_version: Option<String>,
    pub libtorch_lib_dir: Option<String>,
    pub cpu_threads: i32,
    pub cuda_available: bool,
    /// Why CUDA is not available, when it is not.
    pub cuda_note: Option<String>,
    pub cudnn_available: bool,
}

impl LibtorchReport {
    /// The report when libtorch cannot be started: `reason` says why.
    pub fn absent(reason: String) -> LibtorchReport {
        LibtorchReport {
            libtorch_version: None,
            libtorch_lib_dir: None,
            cpu_threads: std::thread::available_parallelism().map_or(1, |n| n.get() as i32),
            cuda_available: false,
            cuda_note: Some(reason),
            cudnn_available: false,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Problem {
    pub what: String,
    pub fix: String,
}

pub fn gather(home: &Home) -> Report {
    let mut problems = Vec::new();
    let libtorch = crate::torch_bin::probe().unwrap_or_else(LibtorchReport::absent);
    match &libtorch.libtorch_version {
        Some(v) if v.starts_with("2.11.") => {}
        other => problems.push(Problem {
            what: format!("libtorch 2.11 expected, found {}", other.as_deref().unwrap_or("none")),
            fix: "scripts/setup-libtorch && make build".into(),
        }),
    }
    let gpus = crate::gpu::nvml_gpus();
    if !gpus.is_empty() && !libtorch.cuda_available {
        problems.push(Problem {
            what: format!(
                "{} GPU(s) present but libtorch cannot use them: {}",
                gpus.len(),
                libtorch.cuda_note.clone().unwrap_or_default()
            ),
            fix: "MEDXFER_PYTHON=<python with a CUDA torch 2.11> scripts/setup-libtorch && make build".into(),
        });
    }
    let free_disk_bytes = free_bytes(&home.root);
    if let Some(free) = free_disk_bytes
        && free < 5 << 30
    {
        problems.push(Problem {
            what: format!("only {} MiB free under {}", free >> 20, home.root.display()),
            fix: "free space or set MEDXFER_HOME to a larger disk".into(),
        });
    }
    Report {
        medxfer_version: crate::VERSION.into(),
        git_commit: crate::GIT_COMMIT.into(),
        libtorch,
        gpus,
        home: home.clone(),
        free_disk_bytes,
        problems,
    }
}

/// Free bytes on the filesystem holding `path` (or its nearest existing ancestor).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and a zeroed out-struct of the right type.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

pub fn print_text(r: &Report) {
    println!("medxfer {} ({})", r.medxfer_version, r.git_commit);
    let t = &r.libtorch;
    println!(
        "libtorch      {} ({})",
        t.libtorch_version.as_deref().unwrap_or("not found"),
        t.libtorch_lib_dir.as_deref().unwrap_or("-")
    );
    println!("cpu threads   {}", t.cpu_threads);
    match (&t.cuda_available, &t.cuda_note) {
        (true, _) => println!("cuda          yes (cuDNN {})", if t.cudnn_available { "yes" } else { "no" }),
        (false, Some(note)) => println!("cuda          no: {note}"),
        (false, None) => println!("cuda          no"),
    }
    if r.gpus.is_empty() {
        println!("gpus          none (NVML reports no NVIDIA GPU)");
    }
    for g in &r.gpus {
        println!("gpu {}         {} {}/{} MiB free", g.index, g.name, g.memory_free_mib, g.memory_total_mib);
    }
    println!("home          {}", r.home.root.display());
    println!("config        {}", r.home.config_file.display());
    println!("cache         {}", r.home.cache.display());
    println!("runs          {}", r.home.runs.display());
    println!("logs          {}", r.home.logs.display());
    if let Some(b) = r.free_disk_bytes {
        println!("free disk     {:.1} GiB", b as f64 / (1u64 << 30) as f64);
    }
    if r.problems.is_empty() {
        println!("no problems found");
    }
    for p in &r.problems {
        println!("problem: {}\n  fix: {}", p.what, p.fix);
    }
}
