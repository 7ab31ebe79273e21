//! Slurm executor: queued runs whose spec says executor "slurm" are submitted with sbatch as one job array
//! per batch (argv only, never a shell string), followed with squeue and scontrol, stopped with scancel.
//! Each array task runs `PROGRAM train --run DIR` on the node and writes the same run folder.

use crate::config::Slurm;
use crate::runs::lifecycle;
use crate::runs::record::{State, Status};
use crate::sched::control::after_death;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const SLURM_RECORD_FILE: &str = "slurm.json";

/// The fixed job script: array task N runs the trainer on line N+1 of the list file (argument 1).
const JOB_SCRIPT: &str = r#"#!/bin/sh
# medxfer Slurm job: `job.sh LIST PROGRAM`; array task N trains the run folder on line N+1 of LIST.
set -eu
dir=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$1")
exec "$2" train --run "$dir" >> "$dir/train.log" 2>&1
"#;

/// What the agent knows about a run submitted to Slurm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlurmRecord {
    /// "ARRAYJOB_TASK", e.g. "123_4".
    pub job_id: String,
    pub attempts: u32,
    pub submitted: String,
}

impl SlurmRecord {
    pub fn load(dir: &Path) -> Option<SlurmRecord> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(SLURM_RECORD_FILE)).ok()?).ok()
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(SLURM_RECORD_FILE);
        crate::atomic::write(&path, &serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The sbatch argv (after "sbatch") for an array of `n` runs.
pub fn sbatch_args(cfg: &Slurm, n: usize, work: &Path, script: &Path, list: &Path, program: &Path) -> Vec<String> {
    let mut a = vec![
        "--parsable".to_string(),
        "--job-name=medxfer".into(),
        format!("--array=0-{}", n.saturating_sub(1)),
        format!("--chdir={}", work.display()),
        format!("--output={}", work.join("slurm-%A_%a.out").display()),
    ];
    if !cfg.partition.is_empty() {
        a.push(format!("--partition={}", cfg.partition));
    }
    if !cfg.account.is_empty() {
        a.push(format!("--account={}", cfg.account));
    }
    if !cfg.time_limit.is_empty() {
        a.push(format!("--time={}", cfg.time_limit));
    }
    if cfg.gpus_per_job > 0 {
        a.push(format!("--gres=gpu:{}", cfg.gpus_per_job));
    }
    a.extend(cfg.extra_args.iter().cloned());
    a.push(script.display().to_string());
    a.push(list.display().to_string());
    a.push(program.display().to_string());
    a
}

/// Submits `dirs` as one job array; returns each run's job id ("ARRAY_TASK") in order.
pub fn submit(cfg: &Slurm, agent_dir: &Path, dirs: &[PathBuf], program: &Path) -> Result<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    let work = agent_dir.join("slurm");
    crate::home::create_private_dir(&work)?;
    let script = work.join("job.sh");
    crate::atomic::write(&script, JOB_SCRIPT.as_bytes())
        .with_context(|| format!("cannot write {}", script.display()))?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700))?;
    let stamp = crate::runs::record::now_rfc3339().replace([':', '-'], "");
    let list = work.join(format!("array-{stamp}-{}.list", std::process::id()));
    let lines: String = dirs.iter().map(|d| format!("{}\n", d.display())).collect();
    crate::atomic::write(&list, lines.as_bytes()).with_context(|| format!("cannot write {}", list.display()))?;
    let args = sbatch_args(cfg, dirs.len(), &work, &script, &list, program);
    let out = Command::new("sbatch").args(&args).output().context("cannot run sbatch (is Slurm installed?)")?;
    if !out.status.success() {
        bail!("sbatch {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let job = text.trim().split(';').next().unwrap_or("").to_string();
    if job.is_empty() || !job.bytes().all(|b| b.is_ascii_digit()) {
        bail!("sbatch printed {:?}, not a job id", text.trim());
    }
    Ok((0..dirs.len()).map(|i| format!("{job}_{i}")).collect())
}

/// Job id → state (PENDING, RUNNING, ...) of every medxfer array task Slurm still lists.
pub fn queue_states() -> Result<BTreeMap<String, String>> {
    let out = Command::new("squeue")
        .args(["-h", "-r", "--name=medxfer", "-o", "%i|%T"])
        .output()
        .context("cannot run squeue")?;
    if !out.status.success() {
        bail!("squeue failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().split_once('|'))
        .map(|(id, state)| (id.to_string(), state.to_string()))
        .collect())
}

/// The final JobState of an ended job from scontrol ("COMPLETED", "CANCELLED", ...), when Slurm still knows it.
pub fn final_state(job_id: &str) -> Option<String> {
    let out = Command::new("scontrol").args(["show", "job", "-o", job_id]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().find_map(|f| f.strip_prefix("JobState=")).map(str::to_string)
}

pub fn cancel(job_id: &str) -> Result<()> {
    let out = Command::new("scancel").arg(job_id).output().context("cannot run scancel")?;
    if !out.status.success() {
        bail!("scancel {job_id} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The runs this agent follows in Slurm.
#[derive(Default)]
pub struct SlurmRuns {
    pub cfg: Slurm,
    active: BTreeMap<String, Followed>,
    last_poll: Option<std::time::Instant>,
}

struct Followed {
    dir: PathBuf,
    job_id: String,
    attempts: u32,
    stop_requested: bool,
}

/// squeue is asked at most this often.
const POLL: std::time::Duration = std::time::Duration::from_secs(1);

impl SlurmRuns {
    pub fn new(cfg: Slurm) -> SlurmRuns {
        SlurmRuns { cfg, ..SlurmRuns::default() }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.active.contains_key(id)
    }

    /// (run id, job id) of every followed run.
    pub fn jobs(&self) -> Vec<(String, String)> {
        self.active.iter().map(|(id, f)| (id.clone(), f.job_id.clone())).collect()
    }

    /// Follows a run a previous agent submitted.
    pub fn adopt(&mut self, id: &str, dir: PathBuf) -> bool {
        let Some(rec) = SlurmRecord::load(&dir) else { return false };
        let f = Followed { dir, job_id: rec.job_id, attempts: rec.attempts, stop_requested: false };
        self.active.insert(id.to_string(), f);
        true
    }

    /// Submits queued runs as one array and marks them running.
    pub fn submit_queued(&mut self, runs: &[(String, PathBuf)], agent_dir: &Path, program: &Path) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        for (_, dir) in runs {
            lifecycle::launch(dir)?;
        }
        let dirs: Vec<PathBuf> = runs.iter().map(|(_, d)| d.clone()).collect();
        let jobs = match submit(&self.cfg, agent_dir, &dirs, program) {
            Ok(jobs) => jobs,
            Err(e) => {
                for dir in &dirs {
                    lifecycle::fail(dir, crate::error::one_sentence(&e))?;
                }
                return Err(e);
            }
        };
        for ((id, dir), job_id) in runs.iter().zip(jobs) {
            let attempts = SlurmRecord::load(dir).map(|r| r.attempts).unwrap_or(0) + 1;
            let rec = SlurmRecord { job_id: job_id.clone(), attempts, submitted: crate::runs::record::now_rfc3339() };
            rec.save(dir)?;
            tracing::info!(run = %id, job = %job_id, "submitted to Slurm");
            self.active.insert(id.clone(), Followed { dir: dir.clone(), job_id, attempts, stop_requested: false });
        }
        self.last_poll = None;
        Ok(())
    }

    pub fn stop(&mut self, id: &str) -> Result<bool> {
        let Some(f) = self.active.get_mut(id) else { return Ok(false) };
        cancel(&f.job_id)?;
        f.stop_requested = true;
        Ok(true)
    }

    /// Notices jobs Slurm no longer lists and settles their runs: their own end state, stopped when cancelled,
    /// otherwise requeued (or failed after the attempt limit).
    pub fn follow(&mut self) {
        if self.active.is_empty() || self.last_poll.is_some_and(|t| t.elapsed() < POLL) {
            return;
        }
        self.last_poll = Some(std::time::Instant::now());
        let listed = match queue_states() {
            Ok(l) => l,
            Err(e) => return tracing::warn!("{}", crate::error::one_sentence(&e)),
        };
        let ended: Vec<String> =
            self.active.iter().filter(|(_, f)| !listed.contains_key(&f.job_id)).map(|(id, _)| id.clone()).collect();
        for id in ended {
            let Some(f) = self.active.remove(&id) else { continue };
            let outcome = settle(&f);
            match outcome {
                Ok(state) => tracing::info!(run = %id, job = %f.job_id, state = state.as_str(), "Slurm job ended"),
                Err(e) => tracing::error!(run = %id, "{}", crate::error::one_sentence(&e)),
            }
        }
    }
}

fn settle(f: &Followed) -> Result<State> {
    if let Ok(s) = Status::load(&f.dir)
        && (s.state.is_terminal() || s.state == State::Stopped)
    {
        return Ok(s.state);
    }
    let slurm_state = final_state(&f.job_id).unwrap_or_else(|| "unknown".into());
    if f.stop_requested || slurm_state.starts_with("CANCELLED") {
        let why = if f.stop_requested { "cancelled by user" } else { "cancelled in Slurm" };
        lifecycle::stop(&f.dir, why)?;
        return Ok(State::Stopped);
    }
    after_death(&f.dir, &format!("ran as Slurm job {} that ended {slurm_state}", f.job_id), f.attempts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_script_passes_a_hostile_run_path_as_one_argument_and_runs_nothing_from_it() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let hostile = tmp.path().join("runs $(touch pwned); `touch pwned2` 'x\" && touch pwned3");
        std::fs::create_dir_all(&hostile).unwrap();
        let list = tmp.path().join("list");
        std::fs::write(&list, format!("{}\n", hostile.display())).unwrap();
        let script = tmp.path().join("job.sh");
        std::fs::write(&script, JOB_SCRIPT).unwrap();
        let program = tmp.path().join("program");
        std::fs::write(&program, "#!/bin/sh\nprintf '%s\\n' \"$#\" \"$@\" > \"$(dirname \"$0\")/argv\"\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let status = Command::new("sh")
            .arg(&script)
            .arg(&list)
            .arg(&program)
            .current_dir(tmp.path())
            .env("SLURM_ARRAY_TASK_ID", "0")
            .status()
            .unwrap();
        assert!(status.success());
        let argv = std::fs::read_to_string(tmp.path().join("argv")).unwrap();
        assert_eq!(argv, format!("3\ntrain\n--run\n{}\n", hostile.display()));
        for name in ["pwned", "pwned2", "pwned3"] {
            assert!(!tmp.path().join(name).exists() && !hostile.join(name).exists(), "{name} was created");
        }
        assert!(hostile.join("train.log").exists(), "the log goes into the run folder");
    }

    #[test]
    fn sbatch_argv_carries_config_and_array_size() {
        let cfg = Slurm {
            partition: "gpu".into(),
            account: "lab".into(),
            time_limit: "24:00:00".into(),
            gpus_per_job: 1,
            extra_args: vec!["--qos=high".into()],
        };
        let a = sbatch_args(&cfg, 3, Path::new("/w"), Path::new("/w/job.sh"), Path::new("/w/l"), Path::new("/bin/m"));
        for want in ["--array=0-2", "--partition=gpu", "--account=lab", "--time=24:00:00", "--gres=gpu:1", "--qos=high"]
        {
            assert!(a.contains(&want.to_string()), "{want} in {a:?}");
        }
        assert_eq!(&a[a.len() - 3..], ["/w/job.sh", "/w/l", "/bin/m"]);
    }
}
