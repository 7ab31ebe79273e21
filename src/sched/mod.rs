//! Scheduling: sweeps expand into queued run folders; a background agent owns the queue (run folders with
//! status "queued", ordered by id), launches one `medxfer train --run DIR` process per run in CPU/GPU slots,
//! re-adopts live runs after a restart and requeues those that died. Control is over a 0600 Unix socket.

pub mod agent;
pub mod control;
pub mod estimate;
pub mod proc;
pub mod report;
pub mod slots;
pub mod slurm;
pub mod socket;
pub mod sweep;
