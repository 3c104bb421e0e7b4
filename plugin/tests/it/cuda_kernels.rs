//! Every CUDA kernel source compiles through NVRTC for sm_80 and sm_90, and the PTX holds every
//! kernel the source defines. Needs only the NVRTC library (CI: PyPI's nvidia-cuda-nvrtc, put on
//! LD_LIBRARY_PATH by tests/engines/install.sh), not a GPU. Without NVRTC the test says so and
//! passes, unless DNABERT_REQUIRE_ENGINES=1 (CI), where it fails.
//!
//! The kernels' execution is tested against the CPU in gpu_parity.rs, on a machine with a GPU.

use dnabert::cuda;

#[test]
fn every_kernel_compiles_through_nvrtc_for_sm80_and_sm90() {
    if !cuda::libraries().nvrtc {
        let msg = "NVRTC (libnvrtc.so.13) cannot be loaded: run tests/engines/install.sh and \
                   `. .engines/env` (it sets LD_LIBRARY_PATH)";
        assert!(
            std::env::var("DNABERT_REQUIRE_ENGINES").as_deref() != Ok("1"),
            "{msg}"
        );
        eprintln!("SKIPPED: {msg}");
        return;
    }
    for arch in cuda::ARCHS {
        for (family, src) in cuda::FAMILIES {
            let ptx = cuda::compile(family, arch).unwrap_or_else(|e| panic!("{e:#}"));
            assert!(
                ptx.contains(&format!(".target {arch}")),
                "{family}: PTX not for {arch}"
            );
            for kernel in cuda::kernel_names(src) {
                assert!(
                    ptx.contains(&format!(".entry {kernel}(")),
                    "{family}.cu for {arch}: no kernel {kernel} in the PTX"
                );
            }
        }
    }
}

#[test]
fn device_cuda_without_the_libraries_names_the_missing_ones() {
    let bin = env!("CARGO_BIN_EXE_dnabert");
    let out = std::process::Command::new(bin)
        .args([
            "predict", "--device", "cuda:1", "--model", "x", "--input", "y", "--output", "z",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    if cuda::missing_libraries().is_empty() {
        // A GPU machine: the GPU opens (or cuda:1 does not exist), then the model is missing.
        assert!(!err.contains("cannot load"), "{err}");
    } else {
        assert!(
            err.contains("--device cuda:1: this machine cannot load"),
            "{err}"
        );
    }

    // Reduced precision on the CPU is embed's alone: another stage asking for it gets an
    // error, not a quiet fp32 run; and int8 and int16 are no GPU modes.
    let refused = |args: &[&str], message: &str| {
        let out = std::process::Command::new(bin)
            .args(args)
            .args(["--model", "x", "--input", "y", "--output", "z"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{err}");
    };
    for p in ["int8", "int16"] {
        refused(
            &["embed", "--device", "cuda", "--precision", p],
            &format!("--precision {p} is for embed on the CPU"),
        );
    }
    refused(
        &["predict", "--precision", "bf16"],
        "--precision bf16 on the CPU is for embed only",
    );

    let dir = tempfile::tempdir().unwrap();
    let out = crate::common::bundled_pretrain(&dir.path().join("run"))
        .args(["--device", "cuda"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if cuda::missing_libraries().is_empty() {
        // A GPU machine: the experimental backend must train.
        assert!(out.status.success(), "{err}");
    } else {
        assert!(!out.status.success());
        assert!(
            err.contains("--device cuda:0: this machine cannot load"),
            "{err}"
        );
        assert!(err.contains("--device cpu"), "{err}");
        for lib in cuda::missing_libraries() {
            assert!(err.contains(lib), "{err}");
        }
    }
}

/// `cuda-check --run` and `--bench` on a machine without a usable GPU run nothing and say so,
/// with exit status 77 ("skipped"), distinct from a failed check (1): what a cluster's node
/// check or a CI job can branch on.
#[test]
fn cuda_check_run_without_a_gpu_exits_77() {
    if cuda::missing_libraries().is_empty() {
        eprintln!("SKIPPED: this machine has the CUDA libraries (gpu_parity.rs runs the checks)");
        return;
    }
    for flag in ["--run", "--bench"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dnabert"))
            .args(["cuda-check", flag])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(77), "{flag}: {err}");
        assert!(err.contains("no usable GPU, nothing was run"), "{err}");
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(listed.contains("driver (libcuda)\tnot found"), "{listed}");
    }
}

/// The session script a lent GPU runs (`benches/gpu_session.sh`), rehearsed as far as a machine
/// without a GPU allows: it finds the binary, writes the machine's description and every log
/// under $OUT, prints the table, and exits 77 because both GPU steps were skipped. (PyTorch's
/// step is left out: CI has no torch; it was rehearsed by hand with `--torch-device cpu`.)
#[test]
fn the_gpu_session_script_runs_here_and_says_it_skipped() {
    if cuda::missing_libraries().is_empty() {
        eprintln!("SKIPPED: this machine has the CUDA libraries");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = std::process::Command::new(root.join("benches/gpu_session.sh"))
        .env("OUT", out.path())
        .env("DNABERT_BIN", env!("CARGO_BIN_EXE_dnabert"))
        .env("GPU_PEERS", "0")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(77), "{table}");
    for log in [
        "machine.txt",
        "cuda-check-run.log",
        "cuda-check-bench.log",
        "summary.txt",
    ] {
        assert!(out.path().join(log).is_file(), "{log} not written");
    }
    assert!(
        table.contains("== cuda-check --run: skipped: no usable GPU"),
        "{table}"
    );
    assert!(
        table.contains("== cuda-check --bench: skipped: no usable GPU"),
        "{table}"
    );
    assert!(table.contains("not run (GPU_PEERS=0)"), "{table}");
}
