//! NCCL's all-reduce as the data-parallel [`Group`] of GPU ranks (`pretrain --distributed`): one
//! process per GPU, placed by `srun` or a workflow engine, never by us.
//!
//! The ranks meet through a file: rank 0 makes NCCL's unique id and writes it, atomically, into
//! the run folder (which every rank sees: a shared filesystem, as the checkpoints need anyway);
//! the others wait for it. The file's name carries the launch's job and step ids, so a file left
//! by an earlier launch is never read. `ncclCommInitRank` returns once every rank has joined,
//! after which rank 0 removes the file.
//!
//! **Written without a GPU and never run**; `plugin/tests/it/data_parallel.rs` runs a world of one on GPU
//! 0 where NCCL and a GPU exist. The rendezvous itself is plain file handling, tested in CI.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cudarc::driver::{CudaContext, CudaSlice};
use cudarc::nccl::{Comm, Id, ReduceOp};

use super::backend::Gpu;
use crate::device::Precision;
use crate::train::ranks::{Group, Launch};

/// NCCL's unique id is 128 bytes.
pub const ID_BYTES: usize = 128;

/// Whether libnccl can be loaded (cudarc panics on its first call otherwise).
pub fn present() -> bool {
    // SAFETY: only tries to dlopen the library under its known names.
    unsafe { cudarc::nccl::sys::is_culib_present() }
}

/// The GPU a rank takes: its rank on the node, modulo the GPUs it sees (one when the launcher
/// gives each task its own GPU, all of the node's otherwise), in `precision`.
pub fn gpu_for(launch: &Launch, precision: Precision) -> Result<Gpu> {
    let mut missing = super::missing_libraries();
    if !present() {
        missing.push("NCCL (libnccl.so.2)");
    }
    if !missing.is_empty() {
        bail!(
            "--distributed: this machine cannot load {}; data-parallel training runs on GPUs \
             with NCCL",
            missing.join(", ")
        );
    }
    let count = CudaContext::device_count().context("counting GPUs")? as usize;
    if count == 0 {
        bail!("--distributed: no GPU is visible to this process");
    }
    Ok(Gpu::new(launch.local_rank % count)?.with_precision(precision))
}

/// The rendezvous file of one launch, in the run folder: `.nccl-id.<job>.<step>` from SLURM's
/// ids, or `DNABERT_JOB_ID` outside SLURM. A world of one needs no agreement, so its process id
/// serves.
pub fn rendezvous_path(
    run: &Path,
    launch: &Launch,
    var: impl Fn(&str) -> Option<String>,
) -> Result<PathBuf> {
    let key = match (var("SLURM_JOB_ID"), var("DNABERT_JOB_ID")) {
        (Some(job), _) => format!("{job}.{}", var("SLURM_STEP_ID").unwrap_or_default()),
        (None, Some(job)) => job,
        (None, None) if launch.world == 1 => format!("pid{}", std::process::id()),
        (None, None) => bail!(
            "--distributed outside SLURM: set DNABERT_JOB_ID to one value, new for each launch, \
             in every rank's environment (it names the file through which the ranks meet)"
        ),
    };
    Ok(run.join(format!(".nccl-id.{key}")))
}

/// Rank 0's side of the rendezvous: the id, written atomically.
pub fn publish(path: &Path, id: &[u8; ID_BYTES]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    crate::io_util::write_atomic(path, id)
}

/// The other ranks' side: waits up to `timeout` for rank 0's file.
pub fn wait_for(path: &Path, timeout: Duration) -> Result<[u8; ID_BYTES]> {
    let start = Instant::now();
    loop {
        match std::fs::read(path) {
            Ok(bytes) => {
                return bytes.as_slice().try_into().map_err(|_| {
                    anyhow::anyhow!(
                        "{}: {} bytes, not an NCCL id of {ID_BYTES}",
                        path.display(),
                        bytes.len()
                    )
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
        }
        if start.elapsed() > timeout {
            bail!(
                "{}: rank 0 has not published the NCCL id after {} s; is it running, and is \
                 the run folder on a filesystem every rank sees?",
                path.display(),
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One rank's NCCL communicator, on its GPU's stream.
pub struct Nccl {
    comm: Comm,
}

impl Nccl {
    /// Joins the launch's ranks through the rendezvous file `path`.
    pub fn join(gpu: &Gpu, launch: &Launch, path: &Path) -> Result<Self> {
        let id = if launch.rank == 0 {
            let id = Id::new().map_err(|e| anyhow::anyhow!("ncclGetUniqueId: {e:?}"))?;
            let bytes: [u8; ID_BYTES] = id.internal().map(|c| c as u8);
            publish(path, &bytes)?;
            id
        } else {
            let bytes = wait_for(path, Duration::from_secs(600))?;
            Id::uninit(bytes.map(|b| b as std::ffi::c_char))
        };
        let comm = Comm::from_rank(gpu.stream(), launch.rank, launch.world, id)
            .map_err(|e| anyhow::anyhow!("ncclCommInitRank (rank {}): {e:?}", launch.rank))?;
        if launch.rank == 0 {
            // Every rank has joined, so none still needs the file.
            let _ = std::fs::remove_file(path);
        }
        Ok(Self { comm })
    }
}

impl Group<Gpu> for Nccl {
    fn rank(&self) -> usize {
        self.comm.rank()
    }
    fn world(&self) -> usize {
        self.comm.world_size()
    }
    fn all_reduce_sum(&self, _be: &Gpu, buf: &mut CudaSlice<f32>) -> Result<()> {
        self.comm
            .all_reduce_in_place(buf, &ReduceOp::Sum)
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("ncclAllReduce: {e:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(world: usize) -> Launch {
        Launch {
            rank: 0,
            world,
            local_rank: 0,
        }
    }

    #[test]
    fn the_rendezvous_file_is_named_for_the_launch() {
        let run = Path::new("/runs/a");
        let slurm = |k: &str| match k {
            "SLURM_JOB_ID" => Some("812".to_owned()),
            "SLURM_STEP_ID" => Some("3".to_owned()),
            _ => None,
        };
        let p = rendezvous_path(run, &launch(4), slurm).unwrap();
        assert_eq!(p, run.join(".nccl-id.812.3"));
        let own = |k: &str| (k == "DNABERT_JOB_ID").then(|| "x1".to_owned());
        assert_eq!(
            rendezvous_path(run, &launch(2), own).unwrap(),
            run.join(".nccl-id.x1")
        );
        assert!(rendezvous_path(run, &launch(1), |_| None).is_ok());
        let err = rendezvous_path(run, &launch(2), |_| None).unwrap_err();
        assert!(err.to_string().contains("set DNABERT_JOB_ID"), "{err}");
    }

    #[test]
    fn a_published_id_is_read_whole_by_a_waiting_rank() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/.nccl-id.7.0");
        let id: [u8; ID_BYTES] = std::array::from_fn(|i| (i * 7) as u8);
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || wait_for(&path, Duration::from_secs(20)))
        };
        std::thread::sleep(Duration::from_millis(300));
        publish(&path, &id).unwrap();
        assert_eq!(waiter.join().unwrap().unwrap(), id);

        std::fs::write(&path, [1u8; 5]).unwrap();
        let err = wait_for(&path, Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("5 bytes, not an NCCL id"), "{err}");
        let err = wait_for(&dir.path().join("none"), Duration::from_millis(300)).unwrap_err();
        assert!(err.to_string().contains("has not published"), "{err}");
    }
}
