//! One masked-LM training step (forward, backward, AdamW) at a given model size, timed, on the
//! CPU backend or (`--device cuda`, experimental) the GPU backend:
//! `cargo bench -p dnabert --bench train_step -- [--layers 12 --hidden 768 --heads 12
//! --intermediate 3072 --seq 512 --batch 1 --threads 2 --steps 3 --k 6 --device cpu --precision fp32 --attention products]` (`--precision bf16`:
//! mixed precision; `--attention fused`: the fused attention kernels; both GPU only).
//!
//! Prints one JSON line: seconds per step (median after a warm-up step), tokens/s, and the
//! FLOP/s of the step counted as 3 × the forward pass's matrix products (encoder, attention
//! and the MLM head's decoder). `benches/train_step_peers.py` runs it beside PyTorch.

use std::time::Instant;

use dnabert::config::BertConfig;
use dnabert::train::backend::AdamW;
use dnabert::train::backend::{Backend, Dropout};
use dnabert::train::cpu::Cpu;
use dnabert::train::encoder::Tokens;
use dnabert::train::mlm::MlmBatch;
use dnabert::train::params::Params;
use dnabert::train::{store, OptimizerState};

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() {
    dnabert::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let (layers, hidden, heads) = (
        arg(&args, "--layers", 12),
        arg(&args, "--hidden", 768),
        arg(&args, "--heads", 12),
    );
    let (inter, seq, batch) = (
        arg(&args, "--intermediate", 3072),
        arg(&args, "--seq", 512),
        arg(&args, "--batch", 1),
    );
    let (threads, steps, k) = (
        arg(&args, "--threads", 2),
        arg(&args, "--steps", 3),
        arg(&args, "--k", 6),
    );
    let vocab = 4usize.pow(k as u32) + 5;
    let config = BertConfig {
        vocab_size: vocab,
        hidden_size: hidden,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        intermediate_size: inter,
        max_position_embeddings: seq.max(512),
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    };
    let mut host = Params::bert_mlm(&config);
    store::init(&mut host, 0, |_| true);
    let text = |name: &str, default: &'static str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, String::as_str)
            .to_owned()
    };
    let precision: dnabert::device::Precision = text("--precision", "fp32")
        .parse()
        .unwrap_or_else(|e| panic!("--precision {e}"));
    let (engine, times) = match text("--device", "cpu").as_str() {
        "cpu" => {
            assert_eq!(
                precision.to_string(),
                "fp32",
                "the CPU computes in fp32 only"
            );
            (
                "dnabert-cpu".to_owned(),
                steps_timed(&Cpu::new(threads), &config, &host, batch, seq, steps),
            )
        }
        "cuda" => {
            use dnabert::cuda::backend::{Attention, Gpu};
            let attention = match text("--attention", "products").as_str() {
                "products" => Attention::Products,
                "fused" => Attention::Fused,
                other => panic!("--attention {other}: expected products or fused"),
            };
            let gpu = Gpu::new(0)
                .unwrap_or_else(|e| panic!("{e:#}"))
                .with_precision(precision)
                .with_attention(attention);
            (
                format!("dnabert-cuda-{precision}-{attention:?}").to_lowercase(),
                steps_timed(&gpu, &config, &host, batch, seq, steps),
            )
        }
        other => panic!("--device {other}: expected cpu or cuda"),
    };
    let t = batch * seq;
    let mut warm = times[1..].to_vec();
    warm.sort_by(f64::total_cmp);
    let median = warm[warm.len() / 2];
    let (h, s, v) = (hidden as f64, seq as f64, vocab as f64);
    let fwd = batch as f64
        * (layers as f64 * (2.0 * s * (4.0 * h * h + 2.0 * h * inter as f64) + 4.0 * s * s * h)
            + 2.0 * s * h * h
            + 2.0 * s * h * v);
    let flops = 3.0 * fwd;
    println!(
        "{}",
        serde_json::json!({
            "engine": engine, "layers": layers, "hidden": hidden, "seq": seq,
            "batch": batch, "threads": threads, "steps": steps, "seconds_per_step": median,
            "tokens_per_s": t as f64 / median, "gflops_per_s": flops / median / 1e9,
            "all_step_seconds": times,
        })
    );
}

/// Seconds of each of `steps + 1` training steps (the first is the warm-up).
fn steps_timed<B: Backend>(
    be: &B,
    config: &BertConfig,
    host: &Params,
    batch: usize,
    seq: usize,
    steps: usize,
) -> Vec<f64> {
    let vocab = config.vocab_size;
    let mut params = host.to_backend(be);
    let mut state = OptimizerState::new(be, &params);
    // Token ids and labels on every 7th token (~15%, as masked pretraining asks): speed does not
    // depend on their values.
    let t = batch * seq;
    let ids: Vec<u32> = (0..t)
        .map(|i| 5 + (i * 2654435761 % (vocab - 5)) as u32)
        .collect();
    let labels: Vec<i64> = (0..t)
        .map(|i| if i % 7 == 3 { ids[i] as i64 } else { -100 })
        .collect();
    let opt = AdamW {
        lr: 1e-4,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-6,
        weight_decay: 0.01,
    };
    let mut times = vec![];
    for _ in 0..=steps {
        let b = MlmBatch {
            tokens: Tokens {
                batch,
                seq,
                ids: ids.clone(),
                mask: vec![1.0; t],
            },
            labels: labels.clone(),
        };
        let started = Instant::now();
        let mut grads = params.zeros_like(be);
        dnabert::train::pretrain::batch_loss_and_grads(
            be,
            config,
            &params,
            &mut grads,
            b,
            &Dropout::OFF,
        );
        state.step(be, &opt, &mut params, &grads);
        // Reading a value back waits for a device's queued work; the CPU has none.
        be.sum_squares(B::slice(&params.data, 0..1));
        times.push(started.elapsed().as_secs_f64());
    }
    times
}
