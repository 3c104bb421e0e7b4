//! The GPU side: CUDA C kernels of our own, one op family per file with forward and backward
//! together (`kernels/*.cu`), compiled at run time by NVRTC through `cudarc`, which loads every
//! CUDA library dynamically, so the binary builds and runs on machines without CUDA.
//!
//! Status: the kernels compile for sm_80 and sm_90 (tested in CI through PyPI's
//! `nvidia-cuda-nvrtc`), `backend::Gpu` launches them (cuBLAS for the matrix products) for
//! `embed`, `pretrain`, `finetune` and `predict --device cuda`, and `nccl` joins GPUs for
//! data-parallel pretraining; none of it has run on a GPU yet (no GPU has been
//! lent to this project), so it is experimental until `plugin/tests/it/gpu_parity.rs` passes on one.
//!
//! cudarc panics when a library it needs is absent, so every entry point here asks
//! [`libraries`] first.

pub mod backend;
pub mod gemm;
pub mod launch;
pub mod nccl;
pub mod selftest;

use anyhow::{bail, Context, Result};

const COMMON: &str = include_str!("kernels/common.cuh");

/// (family, source) of every kernel family.
pub const FAMILIES: &[(&str, &str)] = &[
    ("activations", include_str!("kernels/activations.cu")),
    ("adamw", include_str!("kernels/adamw.cu")),
    ("attention", include_str!("kernels/attention.cu")),
    (
        "attention_fused",
        include_str!("kernels/attention_fused.cu"),
    ),
    ("cast", include_str!("kernels/cast.cu")),
    ("cross_entropy", include_str!("kernels/cross_entropy.cu")),
    ("dropout", include_str!("kernels/dropout.cu")),
    ("embedding", include_str!("kernels/embedding.cu")),
    ("layernorm", include_str!("kernels/layernorm.cu")),
    ("tensor", include_str!("kernels/tensor.cu")),
];

/// The architectures the kernels are built and tested for: A100 (Ampere) and H100/H200 (Hopper).
pub const ARCHS: &[&str] = &["sm_80", "sm_90"];

/// The source NVRTC compiles for a family: the shared prelude, then the family.
pub fn source(family: &str) -> Option<String> {
    FAMILIES
        .iter()
        .find(|(name, _)| *name == family)
        .map(|(_, src)| format!("{COMMON}\n{src}"))
}

/// `dnabert cuda-check`'s flags.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// GPU architectures to compile every kernel for (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = ["sm_80".to_string(), "sm_90".to_string()])]
    pub arch: Vec<String>,
    /// Run every check on the GPU: each op forward and backward against the CPU backend (fp32
    /// within 1e-4 of scale, bf16 within 1e-2, overwritten outputs poisoned first), fused
    /// attention at DNABERT size, one masked-LM step and AdamW update against the compiled-in
    /// PyTorch fixture, and the embed encoder on --model against the CPU. One line per check,
    /// then a summary; exit 1 if any failed, 77 if this machine has no usable GPU.
    #[arg(long)]
    pub run: bool,
    /// Time DNABERT-base (12 x 768) on the GPU: a masked-LM training step and the embed
    /// forward, fp32 and bf16 products, attention as products or fused; tokens/s and MFU
    /// against a bf16 GEMM rate measured here. Exit 77 without a usable GPU.
    #[arg(long)]
    pub bench: bool,
    /// Which GPU (its CUDA ordinal).
    #[arg(long, default_value_t = 0)]
    pub gpu: usize,
    /// The model folder --run embeds with on both backends.
    #[arg(long, default_value = "models/dnabert6-chrx-4x256")]
    pub model: std::path::PathBuf,
    /// --bench: sequences per batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// --bench: tokens per sequence.
    #[arg(long, default_value_t = 512)]
    pub seq: usize,
    /// --bench: timed runs of each row (after two warm-up runs); the median counts.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
}

impl CheckArgs {
    /// Prints a line per library and per kernel family compiled; with --run/--bench, the
    /// checks and the benchmark.
    pub fn run(self) -> Result<()> {
        use crate::cli::say;
        let libs = libraries();
        let found = |present| if present { "found" } else { "not found" };
        say(format!("driver (libcuda)\t{}", found(libs.driver)))?;
        say(format!("nvrtc\t{}", found(libs.nvrtc)))?;
        say(format!("cublas\t{}", found(libs.cublas)))?;
        if self.run || self.bench {
            return self.on_gpu();
        }
        for arch in &self.arch {
            let arch: &'static str = ARCHS.iter().find(|a| **a == arch).ok_or_else(|| {
                anyhow::anyhow!("--arch {arch}: expected one of {}", ARCHS.join(", "))
            })?;
            for (family, _) in FAMILIES {
                let ptx = compile(family, arch)?;
                say(format!(
                    "{arch}\t{family}.cu\t{} kernels\t{} bytes of PTX",
                    kernel_names(family).len(),
                    ptx.len()
                ))?;
            }
        }
        Ok(())
    }

    fn on_gpu(self) -> Result<()> {
        use crate::cli::{say, ExitWith};
        let no_gpu = |why: String| ExitWith {
            code: selftest::NO_GPU_EXIT,
            message: format!("no usable GPU, nothing was run: {why}"),
        };
        if !missing_libraries().is_empty() {
            return Err(no_gpu(unavailable_reason(self.gpu)).into());
        }
        let gpu = backend::Gpu::new(self.gpu).map_err(|e| no_gpu(format!("{e:#}")))?;
        say(format!("gpu\t{}", gpu.describe()))?;
        if self.run {
            let report = selftest::run_all(&gpu, &self.model);
            for line in &report.lines {
                say(line)?;
            }
            say(format!("summary\t{}", report.summary()))?;
            if !report.failures().is_empty() {
                bail!("cuda-check --run: {}", report.summary());
            }
        }
        if self.bench {
            let peak = selftest::bench::bf16_peak(&gpu, 8192)?;
            say(format!(
                "bench\tbf16 GEMM 8192^3 (cuBLAS, fp32 accumulation)\t{peak:.1} TFLOP/s: the MFU denominator"
            ))?;
            say(format!(
                "bench\ttask\tprecision\tattention\ts/step\ttokens/s\tTFLOP/s\tMFU ({}x{} tokens, median of {})",
                self.batch, self.seq, self.repeats
            ))?;
            for r in selftest::bench::run(&gpu, self.batch, self.seq, self.repeats.max(1), peak)? {
                say(format!(
                    "bench\t{}\t{}\t{:?}\t{:.4}\t{:.0}\t{:.1}\t{:.1}%",
                    r.task,
                    r.precision,
                    r.attention,
                    r.seconds,
                    r.tokens_per_s,
                    r.tflops,
                    100.0 * r.mfu
                ))?;
            }
        }
        Ok(())
    }
}

/// The kernels a family defines, in source order.
pub fn kernel_names(family: &str) -> Vec<&'static str> {
    signatures::SIGNATURES
        .iter()
        .filter(|s| s.family == family)
        .map(|s| s.name)
        .collect()
}

/// Every kernel's parameter list, read once from `kernels/*.cu` by `build.rs`, which also
/// generates the typed launchers `backend` calls (so they cannot disagree with this).
pub mod signatures {
    /// A kernel parameter as declared: its C type without `const` or `*`, its name, whether
    /// it is a pointer, and whether what it points to is `const`.
    #[derive(Debug)]
    pub struct Param {
        pub ctype: &'static str,
        pub name: &'static str,
        pub pointer: bool,
        pub constant: bool,
    }

    #[derive(Debug)]
    pub struct Signature {
        pub family: &'static str,
        pub name: &'static str,
        pub params: &'static [Param],
    }

    include!(concat!(env!("OUT_DIR"), "/signatures.rs"));
}

/// Which CUDA libraries this machine can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Libraries {
    /// libcuda, from the NVIDIA driver.
    pub driver: bool,
    pub nvrtc: bool,
    pub cublas: bool,
}

pub fn libraries() -> Libraries {
    // SAFETY: each call only tries to dlopen the library under its known names.
    unsafe {
        Libraries {
            driver: cudarc::driver::sys::is_culib_present(),
            nvrtc: cudarc::nvrtc::sys::is_culib_present(),
            cublas: cudarc::cublas::sys::is_culib_present(),
        }
    }
}

/// PTX source for one family and architecture; errors carry NVRTC's log.
pub fn compile(family: &str, arch: &'static str) -> Result<String> {
    if !libraries().nvrtc {
        bail!(
            "NVRTC (libnvrtc.so.13) cannot be loaded: install the CUDA 13 toolkit or \
             `pip install nvidia-cuda-nvrtc` and put its lib folder on LD_LIBRARY_PATH"
        );
    }
    Ok(compile_ptx(family, arch)?.to_src())
}

/// NVRTC's compilation of a family, for a caller that has checked NVRTC loads (cudarc panics
/// otherwise).
fn compile_ptx(family: &str, arch: &'static str) -> Result<cudarc::nvrtc::Ptx> {
    let src = source(family).with_context(|| format!("no kernel family '{family}'"))?;
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(arch),
        name: Some(format!("{family}.cu")),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(src, opts)
        .map_err(|e| anyhow::anyhow!("{family}.cu for {arch}: {e:?}"))
}

/// The CUDA libraries this machine cannot load, by name.
pub fn missing_libraries() -> Vec<&'static str> {
    let libs = libraries();
    [
        (libs.driver, "the NVIDIA driver (libcuda.so.1)"),
        (libs.nvrtc, "NVRTC (libnvrtc.so.13)"),
        (libs.cublas, "cuBLAS (libcublas.so.13)"),
    ]
    .iter()
    .filter(|(present, _)| !present)
    .map(|(_, name)| *name)
    .collect()
}

/// Why `--device cuda:N` cannot run here: the libraries that are missing.
pub fn unavailable_reason(ordinal: usize) -> String {
    format!(
        "--device cuda:{ordinal}: this machine cannot load {}; run with --device cpu",
        missing_libraries().join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_kernels_and_a_forward_with_its_backward() {
        for (family, _) in FAMILIES {
            let names = kernel_names(family);
            assert!(!names.is_empty(), "{family}: no kernels");
            for forward in names.iter().filter(|n| n.ends_with("_forward")) {
                let base = forward.trim_end_matches("_forward");
                let has_backward = names.iter().any(|n| {
                    n.strip_prefix(base)
                        .is_some_and(|rest| rest.ends_with("backward"))
                });
                // bias_gelu's backward is gelu_backward on the biased input it keeps.
                assert!(
                    has_backward || *forward == "bias_gelu_forward",
                    "{family}: {forward} has no backward beside it"
                );
            }
        }
        assert!(source("layernorm").unwrap().contains("block_sum"));
        assert!(source("nope").is_none());
    }

    /// build.rs read every kernel the sources define, once each, with its parameters.
    #[test]
    fn the_signatures_cover_every_kernel_of_the_sources() {
        let in_sources: usize = FAMILIES
            .iter()
            .map(|(_, src)| src.matches("extern \"C\" __global__ void ").count())
            .sum();
        assert_eq!(signatures::SIGNATURES.len(), in_sources);
        let ln = signatures::SIGNATURES
            .iter()
            .find(|s| s.name == "layernorm_forward")
            .unwrap();
        let params: Vec<_> = ln
            .params
            .iter()
            .map(|p| (p.ctype, p.name, p.pointer, p.constant))
            .collect();
        assert_eq!(params[0], ("float", "y", true, false));
        assert_eq!(params[3], ("float", "x", true, true));
        assert_eq!(params[6], ("int", "C", false, false));
        assert_eq!(params[7], ("float", "eps", false, false));
    }
}
