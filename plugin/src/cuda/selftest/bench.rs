//! `cuda-check --bench`: DNABERT-base (12 × 768, k = 6) on the GPU backend, a masked-LM
//! training step and the embed forward, fp32 and bf16 products, attention as cuBLAS products
//! or fused; each timed with CUDA events after two warm-up runs, median of `repeats`. MFU is
//! against the card's bf16 GEMM rate, measured by the command itself with one large cuBLAS
//! product (8192³), not against a datasheet figure.

use anyhow::{Context, Result};
use cudarc::cublas::sys::cublasOperation_t::CUBLAS_OP_N;
use cudarc::cublas::sys::{cublasComputeType_t, cublasGemmAlgo_t, cudaDataType};
use cudarc::cublas::{result as blas, CudaBlas};
use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::DevicePtr;

use crate::config::BertConfig;
use crate::cuda::backend::{Attention, Gpu};
use crate::device::Precision;
use crate::train::backend::AdamW;
use crate::train::backend::Dropout;
use crate::train::encoder::{self, Tokens};
use crate::train::mlm::MlmBatch;
use crate::train::params::Params;
use crate::train::{store, OptimizerState};

/// DNABERT-base's shape (k = 6: 4⁶ k-mers + 5 specials).
pub fn dnabert_base() -> BertConfig {
    BertConfig {
        vocab_size: 4101,
        hidden_size: 768,
        num_hidden_layers: 12,
        num_attention_heads: 12,
        intermediate_size: 3072,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    }
}

/// The forward pass's matrix-product FLOPs for `batch` × `seq` tokens: the encoder's linear
/// layers and attention's two products, and with `head` the MLM head (transform and decoder
/// over every token, as PyTorch's BertForMaskedLM computes it). A training step counts 3 ×.
pub fn forward_flops(c: &BertConfig, batch: usize, seq: usize, head: bool) -> f64 {
    let (h, i, s, v) = (
        c.hidden_size as f64,
        c.intermediate_size as f64,
        seq as f64,
        c.vocab_size as f64,
    );
    let layer = 2.0 * s * (4.0 * h * h + 2.0 * h * i) + 4.0 * s * s * h;
    let head = if head {
        2.0 * s * h * h + 2.0 * s * h * v
    } else {
        0.0
    };
    batch as f64 * (c.num_hidden_layers as f64 * layer + head)
}

/// Milliseconds of each of `repeats` runs of `f` on `gpu`'s stream, after two warm-up runs.
fn timed(gpu: &Gpu, repeats: usize, mut f: impl FnMut()) -> Result<Vec<f32>> {
    let stream = gpu.stream();
    f();
    f();
    let mut ms = vec![];
    for _ in 0..repeats {
        let start = stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        f();
        let end = stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        ms.push(start.elapsed_ms(&end)?);
    }
    Ok(ms)
}

fn median(mut v: Vec<f32>) -> f64 {
    v.sort_by(f32::total_cmp);
    v[v.len() / 2] as f64
}

/// TFLOP/s of one `n`³ bf16 product with fp32 accumulation (what our bf16 path's products
/// are), median of 5.
pub fn bf16_peak(gpu: &Gpu, n: usize) -> Result<f64> {
    let stream = gpu.stream();
    let blas = CudaBlas::new(stream.clone()).context("cuBLAS")?;
    let a = stream.alloc_zeros::<u16>(n * n)?;
    let b = stream.alloc_zeros::<u16>(n * n)?;
    let c = stream.alloc_zeros::<f32>(n * n)?;
    let (pa, _ga) = a.device_ptr(&stream);
    let (pb, _gb) = b.device_ptr(&stream);
    let (pc, _gc) = c.device_ptr(&stream);
    let (alpha, beta) = (1.0f32, 0.0f32);
    let ms = timed(gpu, 5, || {
        // SAFETY: a, b and c are live n × n device buffers of the element types given.
        unsafe {
            blas::gemm_strided_batched_ex(
                *blas.handle(),
                CUBLAS_OP_N,
                CUBLAS_OP_N,
                n as i32,
                n as i32,
                n as i32,
                (&alpha as *const f32).cast(),
                pa as *const _,
                cudaDataType::CUDA_R_16BF,
                n as i32,
                0,
                pb as *const _,
                cudaDataType::CUDA_R_16BF,
                n as i32,
                0,
                (&beta as *const f32).cast(),
                pc as *mut _,
                cudaDataType::CUDA_R_32F,
                n as i32,
                0,
                1,
                cublasComputeType_t::CUBLAS_COMPUTE_32F,
                cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .expect("cublasGemmStridedBatchedEx");
    })?;
    Ok(2.0 * (n as f64).powi(3) / (median(ms) / 1e3) / 1e12)
}

/// One benchmark row.
pub struct Row {
    pub task: &'static str,
    pub precision: Precision,
    pub attention: Attention,
    pub seconds: f64,
    pub tokens_per_s: f64,
    pub tflops: f64,
    /// Share of the measured bf16 GEMM rate.
    pub mfu: f64,
}

/// Token ids, and labels on every 7th token (~15%, as masked pretraining asks): speed does
/// not depend on their values.
fn batch(config: &BertConfig, batch: usize, seq: usize) -> MlmBatch {
    let t = batch * seq;
    let ids: Vec<u32> = (0..t)
        .map(|i| 5 + (i * 2654435761 % (config.vocab_size - 5)) as u32)
        .collect();
    let labels = (0..t)
        .map(|i| if i % 7 == 3 { ids[i] as i64 } else { -100 })
        .collect();
    MlmBatch {
        tokens: Tokens {
            batch,
            seq,
            ids,
            mask: vec![1.0; t],
        },
        labels,
    }
}

/// Every row of the benchmark: `batch` × `seq` tokens, `repeats` timed runs each.
pub fn run(
    gpu: &Gpu,
    batch_size: usize,
    seq: usize,
    repeats: usize,
    peak: f64,
) -> Result<Vec<Row>> {
    let config = dnabert_base();
    let tokens = (batch_size * seq) as f64;
    let mut host = Params::bert_mlm(&config);
    store::init(&mut host, 0, |_| true);
    let mut encoder_host = Params::bert_encoder(&config);
    store::init(&mut encoder_host, 0, |_| true);
    let opt = AdamW {
        lr: 1e-4,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-6,
        weight_decay: 0.01,
    };
    let b = batch(&config, batch_size, seq);
    let mut rows = vec![];
    let mut row = |task, precision, attention, ms: f64, flops: f64| {
        let s = ms / 1e3;
        rows.push(Row {
            task,
            precision,
            attention,
            seconds: s,
            tokens_per_s: tokens / s,
            tflops: flops / s / 1e12,
            mfu: flops / s / 1e12 / peak,
        });
    };
    for precision in [Precision::F32, Precision::Bf16] {
        for attention in [Attention::Products, Attention::Fused] {
            let g = gpu.with_precision(precision).with_attention(attention);
            let mut params = host.to_backend(&g);
            let mut state = OptimizerState::new(&g, &params);
            let ms = timed(&g, repeats, || {
                let mut grads = params.zeros_like(&g);
                crate::train::pretrain::batch_loss_and_grads(
                    &g,
                    &config,
                    &params,
                    &mut grads,
                    b.clone(),
                    &Dropout::OFF,
                );
                state.step(&g, &opt, &mut params, &grads);
            })?;
            let flops = 3.0 * forward_flops(&config, batch_size, seq, true);
            row("train", precision, attention, median(ms), flops);
            drop(params);
            let params = encoder_host.to_backend(&g);
            let ms = timed(&g, repeats, || {
                encoder::forward(&g, &config, &params, &b.tokens, &Dropout::OFF);
            })?;
            let flops = forward_flops(&config, batch_size, seq, false);
            row("embed", precision, attention, median(ms), flops);
        }
    }
    Ok(rows)
}
