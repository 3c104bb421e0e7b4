//! The workflows through a real SLURM: a one-node cluster on 127.0.0.1 (Debian's slurmctld,
//! slurmd and munge, started by tests/slurm/up.sh under a temporary folder and stopped by PID),
//! Snakemake with `--workflow-profile workflow/profiles/slurm` and Nextflow with `-profile test,slurm`.
//! Their outputs must equal the by-hand run's byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::pipelines::*;

/// A running test cluster; stopped when dropped, also when the test fails.
struct Slurm {
    dir: tempfile::TempDir,
}

impl Slurm {
    fn start() -> Option<Self> {
        for tool in ["slurmctld", "slurmd", "munged", "sbatch"] {
            engine(tool)?;
        }
        if !Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
        {
            skip("the SLURM test needs root (slurmd starts jobs as their user)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let slurm = Slurm { dir };
        run(Command::new(repo().join("tests/slurm/up.sh")).arg(slurm.dir.path()));
        Some(slurm)
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// The names of the jobs the cluster has seen (completed ones stay listed for MinJobAge).
    fn job_names(&self) -> Vec<String> {
        let out = run(Command::new("squeue").env("SLURM_CONF", self.conf()).args([
            "-h",
            "--states=all",
            "-o",
            "%j",
        ]));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("tests/slurm/down.sh"))
            .arg(self.dir.path())
            .status();
    }
}

fn with_slurm_env<'a>(cmd: &'a mut Command, slurm: &Slurm) -> &'a mut Command {
    let mut path = std::env::split_paths(&path_env()).collect::<Vec<_>>();
    path.insert(0, slurm.bin());
    cmd.env("PATH", std::env::join_paths(path).unwrap())
        .env("SLURM_CONF", slurm.conf())
        .env("DNABERT_TEST_SLURM_CONF", slurm.conf())
}

#[test]
fn snakemake_and_nextflow_run_through_slurm_and_match_the_by_hand_run() {
    let (Some(smk), Some(nf)) = (engine("snakemake"), engine("nextflow")) else {
        return;
    };
    let Some(slurm) = Slurm::start() else { return };
    by_hand();

    let dir = tempfile::tempdir().unwrap();
    let smk_out = dir.path().join("snakemake");
    run(with_slurm_env(
        &mut snakemake(
            &smk,
            &smk_out,
            &[
                "--workflow-profile",
                "workflow/profiles/slurm",
                "--slurm-no-account",
                "--slurm-init-seconds-before-status-checks",
                "1",
                "--seconds-between-status-checks",
                "2",
            ],
        ),
        &slurm,
    ));
    assert_same_as_by_hand("snakemake on SLURM", &smk_out, SAME_FILES);
    let after_snakemake = slurm.job_names().len();
    // split, 4 chunks, gather, splice sites, finetune, report, pretrain; the targets run locally.
    assert!(
        after_snakemake >= 10,
        "{after_snakemake} SLURM jobs: {:?}",
        slurm.job_names()
    );

    let nf_dir = dir.path().join("nextflow");
    std::fs::create_dir(&nf_dir).unwrap();
    run(with_slurm_env(
        &mut nextflow(&nf_dir, &nf, "embed", "test,slurm", &[]),
        &slurm,
    ));
    assert_same_as_by_hand("nextflow on SLURM", &nf_dir.join("out"), EMBED_FILES);
    let names = slurm.job_names();
    let embed_jobs = names.iter().filter(|n| n.contains("DNABERT_EMBED")).count();
    assert_eq!(embed_jobs, 4, "{names:?}");
    assert!(Path::new(&nf_dir.join(".nextflow.log")).exists());
}
