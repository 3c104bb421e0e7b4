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
            for (family, src) in FAMILIES {
                let ptx = compile(family, arch)?;
                say(format!(
                    "{arch}\t{family}.cu\t{} kernels\t{} bytes of PTX",
                    kernel_names(src).len(),
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

/// The kernels a family defines (`extern "C" __global__ void NAME(`).
pub fn kernel_names(src: &str) -> Vec<&str> {
    src.split("extern \"C\" __global__ void ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .collect()
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
        for (family, src) in FAMILIES {
            let names = kernel_names(src);
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

    /// Splits `text` at the commas outside brackets.
    fn top_level(text: &str) -> Vec<String> {
        let (mut parts, mut depth, mut cur) = (vec![], 0, String::new());
        for ch in text.chars() {
            match ch {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(cur.trim().to_owned());
                    cur.clear();
                    continue;
                }
                _ => {}
            }
            cur.push(ch);
        }
        if !cur.trim().is_empty() {
            parts.push(cur.trim().to_owned());
        }
        parts
    }

    /// The launches in backend.rs against the kernels' parameter lists, read from both
    /// sources: as many arguments as parameters, and the integer widths right (`int` takes an
    /// `as i32`, `size_t` a usize length), since a wrong width passes garbage without an error
    /// and only a GPU would show it.
    #[test]
    fn every_launch_passes_what_its_kernel_declares() {
        let params = |kernel: &str| -> Vec<String> {
            FAMILIES
                .iter()
                .find_map(|(_, src)| {
                    let decl = src.split(&format!("__global__ void {kernel}(")).nth(1)?;
                    let list = decl.split_once(')').unwrap().0;
                    Some(list.split(',').map(|p| p.trim().to_owned()).collect())
                })
                .unwrap_or_else(|| panic!("no kernel {kernel}"))
        };
        let backend = include_str!("backend.rs");
        let mut checked = 0;
        for call in backend.split("launch!(").skip(1) {
            // The macro's own definition and by_rows' launch of a kernel named at run time.
            let mut depth = 1;
            let end = call
                .char_indices()
                .find(|&(_, ch)| {
                    depth += match ch {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap();
            let args = top_level(&call[..end]);
            let Some(kernel) = args.get(1).and_then(|a| a.strip_prefix('"')) else {
                continue;
            };
            let kernel = kernel.trim_end_matches('"');
            let declared = params(kernel);
            let passed = &args[3..];
            assert_eq!(
                passed.len(),
                declared.len(),
                "{kernel}: {passed:?} for {declared:?}"
            );
            for (arg, param) in passed.iter().zip(&declared) {
                let ty = param.rsplit_once(' ').unwrap().0;
                match ty {
                    "int" => assert!(arg.ends_with("as i32"), "{kernel}: {arg} for {param}"),
                    "size_t" => assert!(
                        !arg.contains("as i32") && !arg.contains("f32"),
                        "{kernel}: {arg} for {param}"
                    ),
                    _ if ty.ends_with('*') => assert!(
                        arg.contains("ptr") || arg == "0u64",
                        "{kernel}: {arg} for {param}"
                    ),
                    _ => {}
                }
            }
            checked += 1;
        }
        assert!(checked >= 25, "only {checked} launches found");
    }
}
