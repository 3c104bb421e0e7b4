//! Data-parallel training: several processes (ranks), usually one per GPU, each holding the
//! whole model. Every step, rank `r` of `W` computes micro-batches `r, r + W, …` of the step's
//! `grad_accumulation`, the ranks add their gradient sums (an all-reduce), and each takes the
//! same optimizer step. The micro-batches are the ones a single process would draw, so a run
//! trains the same model for any world size that divides `grad_accumulation`.
//!
//! Placing the processes is the launcher's job (`srun`, a workflow engine); this file reads
//! where a process stands from the launcher's environment and holds the [`Group`] trait, with
//! the one-process group and an in-process group of threads (how the data-parallel step is
//! checked on a CPU). NCCL's group for GPUs is `cuda::nccl`.

use std::sync::{Arc, Barrier, Mutex};

use anyhow::{bail, Context, Result};

use super::backend::Backend;

/// A lock is poisoned only when another rank's thread panicked while holding it.
fn poisoned() -> anyhow::Error {
    anyhow::anyhow!("another rank failed during the all-reduce")
}

/// The ranks of a data-parallel run, as seen from one of them.
pub trait Group<B: Backend> {
    fn rank(&self) -> usize;
    fn world(&self) -> usize;
    /// Replaces `buf` on every rank by the sum of every rank's `buf`.
    fn all_reduce_sum(&self, be: &B, buf: &mut B::Buf) -> Result<()>;
}

/// A run of one process.
pub struct Solo;

impl<B: Backend> Group<B> for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn world(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _be: &B, _buf: &mut B::Buf) -> Result<()> {
        Ok(())
    }
}

/// Ranks as threads of one process. Every rank sums the deposited buffers in rank order, so
/// all of them hold bit-identical results, as NCCL's all-reduce gives.
pub struct Threads {
    rank: usize,
    world: usize,
    shared: Arc<(Barrier, Mutex<Vec<Vec<f32>>>)>,
}

impl Threads {
    /// One handle per rank, to move into that rank's thread.
    pub fn group(world: usize) -> Vec<Threads> {
        let shared = Arc::new((Barrier::new(world), Mutex::new(vec![vec![]; world])));
        (0..world)
            .map(|rank| Threads {
                rank,
                world,
                shared: shared.clone(),
            })
            .collect()
    }
}

impl<B: Backend> Group<B> for Threads {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world(&self) -> usize {
        self.world
    }
    fn all_reduce_sum(&self, be: &B, buf: &mut B::Buf) -> Result<()> {
        let (barrier, slots) = &*self.shared;
        slots.lock().map_err(|_| poisoned())?[self.rank] = be.download(buf);
        // Every rank has deposited; then every rank has read before any deposits again.
        barrier.wait();
        let sum = {
            let slots = slots.lock().map_err(|_| poisoned())?;
            let mut sum = slots[0].clone();
            for other in &slots[1..] {
                sum.iter_mut().zip(other).for_each(|(s, x)| *s += x);
            }
            sum
        };
        barrier.wait();
        *buf = be.upload(&sum);
        Ok(())
    }
}

/// Where this process stands in a launch: its rank, the world size, and its rank on its node
/// (which GPU of the node it takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    pub rank: usize,
    pub world: usize,
    pub local_rank: usize,
}

impl Launch {
    /// From `srun` (`SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`) or, outside SLURM, from
    /// `torchrun`'s names (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`), looked up through `var`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let schemes = [
            ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
            ("RANK", "WORLD_SIZE", "LOCAL_RANK"),
        ];
        let Some((r, w, l)) = schemes.into_iter().find(|(r, _, _)| var(r).is_some()) else {
            bail!(
                "--distributed: no rank in the environment; launch one process per GPU with \
                 srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID) or set RANK, WORLD_SIZE \
                 and LOCAL_RANK"
            );
        };
        let number = |name: &str| -> Result<usize> {
            let text = var(name)
                .with_context(|| format!("--distributed: {r} is set but {name} is not"))?;
            text.trim()
                .parse()
                .with_context(|| format!("--distributed: {name}={text:?} is not a number"))
        };
        let p = Launch {
            rank: number(r)?,
            world: number(w)?,
            local_rank: number(l)?,
        };
        if p.world == 0 || p.rank >= p.world {
            bail!(
                "--distributed: rank {} is outside a world of {}",
                p.rank,
                p.world
            );
        }
        Ok(p)
    }
}

/// The micro-batches (of a step's `grad_accumulation`) that `rank` computes.
pub fn micro_batches(grad_accumulation: usize, rank: usize, world: usize) -> Vec<usize> {
    (rank..grad_accumulation).step_by(world).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::cpu::Cpu;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn placement_comes_from_slurm_then_torchrun_names() {
        let slurm = env(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_NTASKS", "8"),
            ("SLURM_LOCALID", "1"),
            ("RANK", "0"),
        ]);
        let p = Launch::from_env(slurm).unwrap();
        assert_eq!((p.rank, p.world, p.local_rank), (5, 8, 1));
        let torchrun = env(&[("RANK", "2"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "2")]);
        assert_eq!(Launch::from_env(torchrun).unwrap().world, 4);

        let err =
            |pairs: &[(&str, &str)]| format!("{:#}", Launch::from_env(env(pairs)).unwrap_err());
        assert!(err(&[]).contains("no rank in the environment"));
        assert!(err(&[("RANK", "1")]).contains("RANK is set but WORLD_SIZE is not"));
        assert!(
            err(&[("RANK", "x"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")])
                .contains("RANK=\"x\" is not a number")
        );
        assert!(
            err(&[("RANK", "2"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")])
                .contains("outside a world of 2")
        );
    }

    #[test]
    fn every_micro_batch_goes_to_exactly_one_rank() {
        for (ga, world) in [(4, 1), (4, 2), (6, 3), (8, 4)] {
            let mut all: Vec<usize> = (0..world)
                .flat_map(|r| micro_batches(ga, r, world))
                .collect();
            all.sort();
            assert_eq!(all, (0..ga).collect::<Vec<_>>(), "ga {ga}, world {world}");
        }
    }

    #[test]
    fn threads_all_reduce_gives_every_rank_the_sum() {
        let be = Cpu::new(1);
        let handles: Vec<_> = Threads::group(3)
            .into_iter()
            .map(|g| {
                let be = be.share(1);
                std::thread::spawn(move || {
                    let mut out = vec![];
                    // Twice, so a second round cannot read the first round's deposits.
                    for round in 0..2 {
                        let r = Group::<Cpu>::rank(&g) as f32;
                        let mut buf = vec![r + round as f32, 10.0 * r];
                        g.all_reduce_sum(&be, &mut buf).unwrap();
                        out.push(buf);
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), vec![vec![3.0, 30.0], vec![6.0, 30.0]]);
        }
    }
}
