//! Where a stage runs: `--device cpu | cuda[:N]` and `--precision`, and the one place a backend
//! is opened ([`open`]). Stages take the opened backend and run generically over it
//! ([`on_backend!`]); none opens a device itself.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};

use crate::cuda::backend::Gpu;
use crate::train::cpu::Cpu;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    /// The GPU with this ordinal.
    Cuda(usize),
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("'{s}': expected cpu, cuda or cuda:N")),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// What the matrix products read. `Bf16` is mixed precision: bf16 copies of each product's
/// inputs, fp32 accumulation and outputs, fp32 weights, gradients and optimizer state
/// (`torch.autocast(dtype=torch.bfloat16)`'s rule for linear layers and attention's products).
/// `Int8` and `Int16` are dynamic quantisation of the linear layers (`embed` on the CPU only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    Bf16,
    Int8,
    Int16,
}

impl Precision {
    /// Bytes per element of a product's input.
    pub fn bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::Bf16 | Precision::Int16 => 2,
            Precision::Int8 => 1,
        }
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fp32" | "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "int8" => Ok(Precision::Int8),
            "int16" => Ok(Precision::Int16),
            _ => Err(format!("'{s}': expected fp32, bf16, int8 or int16")),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
            Precision::Int16 => "int16",
        })
    }
}

/// `--device` and `--precision`, for the stages that can run on a GPU.
#[derive(clap::Args, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// Where to run: cpu, or cuda[:N] (experimental: written without a GPU and not yet run on
    /// one).
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// The matrix products: fp32, bf16 (mixed precision: bf16 copies of each product's
    /// inputs, fp32 accumulation; weights, gradients, optimizer state and checkpoints stay
    /// fp32), int16 or int8 (dynamic quantisation of the linear layers; embed on the CPU only:
    /// int16 within about 0.3% of fp32 per embedding row, int8 faster at about 2%). On the CPU
    /// only `embed` takes bf16, int16 or int8 (its native engine: bf16 on CPUs with
    /// AVX512-BF16, int16 and int8 with AVX512-VNNI); every other CPU stage computes in fp32.
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
}

impl Placement {
    pub const CPU: Placement = Placement {
        device: Device::Cpu,
        precision: Precision::F32,
    };

    /// The GPU ordinal and precision, or `None` for the CPU, for the stages whose CPU path
    /// is fp32 (all but `embed`): reduced precision there is refused, not ignored; int8 and
    /// int16 on a GPU too.
    pub fn target(self) -> Result<Option<(usize, Precision)>> {
        match (self.device, self.precision) {
            (Device::Cpu, Precision::F32) => Ok(None),
            (Device::Cpu, p) => bail!(
                "--precision {p} on the CPU is for embed only; this stage computes in fp32 there (bf16 on a GPU: --device cuda)"
            ),
            (Device::Cuda(_), p @ (Precision::Int8 | Precision::Int16)) => {
                bail!("--precision {p} is for embed on the CPU; a GPU computes in fp32 or bf16")
            }
            (Device::Cuda(n), p) => Ok(Some((n, p))),
        }
    }
}

/// A backend, opened: the CPU with its threads, or a GPU with its kernels loaded.
pub enum Opened {
    Cpu(Cpu),
    Cuda(Gpu),
}

impl Opened {
    pub fn is_gpu(&self) -> bool {
        matches!(self, Opened::Cuda(_))
    }
}

/// Opens the backend a placement names; `threads` are the CPU's (a GPU ignores them).
pub fn open(place: Placement, threads: usize) -> Result<Opened> {
    Ok(match place.target()? {
        None => Opened::Cpu(Cpu::new(threads.max(1))),
        Some((n, p)) => Opened::Cuda(Gpu::new(n)?.with_precision(p)),
    })
}

/// This process's rank of a data-parallel launch (`--distributed`, from the environment
/// `var` reads) and its node-local GPU.
pub fn open_rank(
    place: Placement,
    var: impl Fn(&str) -> Option<String>,
) -> Result<(crate::train::ranks::Launch, Gpu)> {
    let Some((_, precision)) = place.target()? else {
        bail!("--distributed runs on GPUs: add --device cuda");
    };
    let launch = crate::train::ranks::Launch::from_env(var)?;
    let gpu = crate::cuda::nccl::gpu_for(&launch, precision)?;
    Ok((launch, gpu))
}

/// CPU threads: the number asked for, else every core.
pub fn threads(asked: Option<usize>) -> usize {
    asked.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Runs `$body` with `$be` bound to the opened backend, whichever it is: the one dispatch from
/// a runtime choice of device to the stages' code, which is generic over `Backend`.
#[macro_export]
macro_rules! on_backend {
    ($opened:expr, |$be:ident| $body:expr) => {
        match $opened {
            $crate::device::Opened::Cpu($be) => $body,
            $crate::device::Opened::Cuda($be) => $body,
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_cuda_and_ordinals() {
        assert_eq!("cpu".parse(), Ok(Device::Cpu));
        assert_eq!("cuda".parse(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(Device::Cuda(3)));
        assert!("gpu".parse::<Device>().is_err());
        assert!("cuda:x".parse::<Device>().is_err());
    }

    #[test]
    fn bf16_on_the_cpu_is_refused_and_the_cpu_opens_with_its_threads() {
        let bf16_cpu = Placement {
            precision: Precision::Bf16,
            ..Placement::CPU
        };
        assert!(bf16_cpu.target().is_err());
        assert!(open(bf16_cpu, 2).is_err());
        assert!(matches!(open(Placement::CPU, 2).unwrap(), Opened::Cpu(_)));
        assert_eq!(threads(Some(3)), 3);
        assert!(threads(None) >= 1);
    }

    #[test]
    fn parses_precisions() {
        assert_eq!("bf16".parse(), Ok(Precision::Bf16));
        assert_eq!("int8".parse(), Ok(Precision::Int8));
        assert_eq!("int16".parse(), Ok(Precision::Int16));
        assert_eq!(Precision::Int16.to_string(), "int16");
        assert_eq!("fp32".parse(), Ok(Precision::F32));
        assert!("fp16".parse::<Precision>().is_err());
        assert_eq!(Precision::Bf16.to_string(), "bf16");
    }
}
