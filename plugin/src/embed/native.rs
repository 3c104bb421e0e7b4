//! The native CPU engine (`embed --engine native`): BERT's encoder forward for inference on
//! our own kernels, weights packed once at load (`train::ops::gemm`). With `--precision bf16`
//! (CPUs with AVX512-BF16) the linear layers' products take bf16 inputs and sum in fp32; with
//! `--precision int16` or `int8` (AVX512-VNNI) they are dynamically quantised
//! (`gemm/int16.rs`, `gemm/int8.rs`); attention, LayerNorm and GELU stay fp32 in every case.
//!
//! The same arithmetic as the training engine's forward (`train::encoder`, with dropout off)
//! and under the same checkpoint names, minus what inference does not need: nothing is kept
//! for a backward pass, Q, K and V come from one product (their weights side by side), biases
//! are added by the products, GELU runs in place on the intermediate product, and the buffers
//! are reused from layer to layer. Both are held to `transformers` by the same fixtures
//! (`plugin/tests/it/embed_matches_hf.rs`).

use anyhow::Result;

use crate::config::BertConfig;
use crate::device::Precision;
use crate::engine::{Hidden, Infer};
use crate::layout::{self, embeddings, Layout};
use crate::model_dir::ModelDir;
use crate::tokenizer::Tokens;
use crate::train::ops::gemm::{bf16, gemm_packed, gemm_strided, int16, int8, PackedB, Start};
use crate::train::ops::{attention, layernorm, vmath};
use crate::train::params::Params;
use crate::train::store;

/// A linear layer's weight, packed for the products of its precision.
enum Weight {
    F32(PackedB),
    Bf16(bf16::PackedBf16),
    Int8(int8::PackedInt8),
    Int16(int16::PackedInt16),
}

/// A linear layer `y = x · Wᵀ + b`, W packed.
struct Linear {
    w: Weight,
    b: Vec<f32>,
    i: usize,
}

impl Linear {
    /// The layers `names` (each `{name}.weight`, `.bias`, all `i` wide) as one, outputs side
    /// by side.
    fn load(params: &Params, names: &[&str], i: usize, precision: Precision) -> Self {
        let mut w = vec![];
        let mut b = vec![];
        for n in names {
            w.extend_from_slice(params.get(&format!("{n}.weight")));
            b.extend_from_slice(params.get(&format!("{n}.bias")));
        }
        let w = match precision {
            Precision::F32 => Weight::F32(PackedB::new(i, b.len(), &w, (1, i))),
            Precision::Bf16 => Weight::Bf16(bf16::PackedBf16::new(i, b.len(), &w, (1, i))),
            Precision::Int8 => Weight::Int8(int8::PackedInt8::new(i, b.len(), &w, (1, i))),
            Precision::Int16 => Weight::Int16(int16::PackedInt16::new(i, b.len(), &w, (1, i))),
        };
        Linear { w, b, i }
    }

    fn out(&self) -> usize {
        self.b.len()
    }

    /// y (rows × out) = x (rows × in) · Wᵀ + b. Reduced-precision products run on one thread
    /// (`embed` runs a window per thread).
    fn forward(&self, y: &mut [f32], x: &[f32], rows: usize, threads: usize) {
        let (i, o) = (self.i, self.out());
        match &self.w {
            Weight::F32(w) => gemm_packed(rows, x, (i, 1), w, y, o, Start::Bias(&self.b), threads),
            Weight::Bf16(w) => bf16::gemm_bias(rows, x, w, y, o, &self.b),
            Weight::Int8(w) => int8::gemm_bias(rows, x, w, y, o, &self.b),
            Weight::Int16(w) => int16::gemm_bias(rows, x, w, y, o, &self.b),
        }
    }
}

struct Norm {
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Norm {
    fn load(params: &Params, name: &str) -> Self {
        Norm {
            w: params.get(&format!("{name}.weight")).to_vec(),
            b: params.get(&format!("{name}.bias")).to_vec(),
        }
    }

    /// y = LayerNorm(x), rows of `w.len()`.
    fn forward(&self, y: &mut [f32], x: &[f32], eps: f32) {
        let (c, t) = (self.w.len(), x.len() / self.w.len());
        let (mut mean, mut rstd) = (vec![0.0; t], vec![0.0; t]);
        layernorm::forward(y, &mut mean, &mut rstd, x, &self.w, &self.b, c, eps);
    }
}

struct Layer {
    qkv: Linear,
    attention_output: Linear,
    ln1: Norm,
    intermediate: Linear,
    output: Linear,
    ln2: Norm,
}

pub struct Native {
    config: BertConfig,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    emb_ln: Norm,
    layers: Vec<Layer>,
    /// Threads for one batch's products and attention heads.
    threads: usize,
}

impl Native {
    /// The model folder's encoder weights (any head the checkpoint has is not loaded).
    pub fn new(model: &ModelDir, threads: usize, precision: Precision) -> Result<Self> {
        if precision == Precision::Bf16 && !bf16::available() {
            anyhow::bail!(
                "--precision bf16 on the CPU needs AVX512-BF16, which this CPU does not have; use fp32"
            );
        }
        let integer = matches!(precision, Precision::Int8 | Precision::Int16);
        if integer && !(int8::available() && int16::available()) {
            anyhow::bail!(
                "--precision {precision} on the CPU needs AVX512-VNNI, which this CPU does not have; use fp32"
            );
        }
        let (params, _) = store::load(model, Layout::Encoder, |_| false)?;
        let config = model.config.clone();
        let h = config.hidden_size;
        let layers = (0..config.num_hidden_layers)
            .map(|l| {
                let n = layout::layer(l);
                Layer {
                    qkv: Linear::load(&params, &[&n.query, &n.key, &n.value], h, precision),
                    attention_output: Linear::load(&params, &[&n.attention_output], h, precision),
                    ln1: Norm::load(&params, &n.attention_layer_norm),
                    intermediate: Linear::load(&params, &[&n.intermediate], h, precision),
                    output: Linear::load(
                        &params,
                        &[&n.output],
                        config.intermediate_size,
                        precision,
                    ),
                    ln2: Norm::load(&params, &n.output_layer_norm),
                }
            })
            .collect();
        let native = Native {
            word: params.get(embeddings::WORD).to_vec(),
            position: params.get(embeddings::POSITION).to_vec(),
            token_type: params.get(embeddings::TOKEN_TYPE).to_vec(),
            emb_ln: Norm::load(&params, embeddings::LAYER_NORM),
            layers,
            config,
            threads: threads.max(1),
        };
        // The checkpoint's buffers are gone: give their memory back (embed stays flat).
        drop(params);
        crate::alloc::release_kept();
        Ok(native)
    }

    /// Multi-head attention over `qkv` (T × 3C: Q, K, V side by side) into ctx (T × C), the
    /// (batch row, head) items split over the threads as the training engine splits them.
    fn attention(&self, ctx: &mut [f32], qkv: &[f32], tokens: &Tokens) {
        let sh = crate::train::backend::Shape {
            batch: tokens.batch,
            seq: tokens.seq,
            heads: self.config.num_attention_heads,
            head_dim: self.config.head_dim(),
        };
        let (s, d, c) = (sh.seq, sh.head_dim, self.config.hidden_size);
        let scale = 1.0 / (d as f32).sqrt();
        let items = sh.batch * sh.heads;
        // Each head's context (S × d), then into its columns of ctx.
        let mut per_head = vec![0f32; items * s * d];
        let blocks = vec![(&mut per_head[..], s * d)];
        attention::par_items(items, self.threads, blocks, |bh, outs| {
            let [out] = outs else { unreachable!() };
            let (b, h) = (bh / sh.heads, bh % sh.heads);
            let base = b * s * 3 * c + h * d;
            let (q, k, v) = (&qkv[base..], &qkv[base + c..], &qkv[base + 2 * c..]);
            SCORES.with_borrow_mut(|scores| {
                scores.resize(s * s, 0.0);
                gemm_strided(s, d, s, q, (3 * c, 1), k, (1, 3 * c), scores, (s, 1), 0.0);
                vmath::masked_softmax_rows(scores, &tokens.mask[b * s..][..s], scale);
                gemm_strided(s, s, d, scores, (s, 1), v, (3 * c, 1), out, (d, 1), 0.0);
            });
        });
        attention::scatter_heads(ctx, &per_head, &sh, false);
    }
}

thread_local! {
    /// Each thread's S × S attention scores, reused from head to head.
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Infer for Native {
    fn hidden(&self) -> usize {
        self.config.hidden_size
    }

    fn run(&self, tokens: &Tokens) -> Result<Hidden> {
        let (c, im) = (self.config.hidden_size, self.config.intermediate_size);
        let t = tokens.batch * tokens.seq;
        let eps = self.config.layer_norm_eps as f32;
        let threads = self.threads;
        let mut x = vec![0f32; t * c];
        crate::train::ops::embedding::forward(
            &mut x,
            &tokens.ids,
            &self.word,
            &self.position,
            &self.token_type,
            tokens.seq,
            c,
        );
        let mut y = vec![0f32; t * c];
        self.emb_ln.forward(&mut y, &x, eps);
        std::mem::swap(&mut x, &mut y);
        let (mut qkv, mut ctx, mut inter) = (vec![0f32; t * 3 * c], vec![0f32; t * c], vec![]);
        for l in &self.layers {
            l.qkv.forward(&mut qkv, &x, t, threads);
            self.attention(&mut ctx, &qkv, tokens);
            // y = ctx · Wᵀ + b + x, then x1 = LayerNorm(y), into x.
            l.attention_output.forward(&mut y, &ctx, t, threads);
            add(&mut y, &x);
            l.ln1.forward(&mut x, &y, eps);
            // The FFN: gelu(x1 · W1ᵀ + b1) · W2ᵀ + b2 + x1.
            inter.resize(t * im, 0.0);
            l.intermediate.forward(&mut inter, &x, t, threads);
            vmath::gelu_in_place(&mut inter);
            l.output.forward(&mut y, &inter, t, threads);
            add(&mut y, &x);
            l.ln2.forward(&mut x, &y, eps);
        }
        Ok(Hidden {
            data: x,
            seq: tokens.seq,
        })
    }
}

/// `y += x`.
fn add(y: &mut [f32], x: &[f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += x);
}
