//! The tensor operations that the model's math is written against, forward and backward side by
//! side. The encoder, the heads, the optimizer step and the training loops are generic over a
//! [`Backend`]; the CPU implements it with the Rust kernels in `ops`, and a GPU backend
//! implements the same methods with its own kernels, so the same loop runs on either.
//!
//! Buffers are flat f32 arrays owned by the backend (`Buf`); operations take views into them
//! (`View`/`ViewMut`, ranges of a buffer), so that a parameter is a range of one flat buffer, as
//! llm.c lays them out. Token ids, labels and the attention mask stay on the host: they are
//! small, and a device backend copies them over itself. Backward methods *accumulate* into their
//! gradient outputs unless said otherwise.

use std::ops::Range;

/// An attention call's shape: `batch` rows of `seq` tokens, `heads` heads of `head_dim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl Shape {
    /// Elements of the attention probabilities, B·H·S².
    pub fn probs_len(&self) -> usize {
        self.batch * self.heads * self.seq * self.seq
    }
}

/// AdamW's settings, as `torch.optim.AdamW` takes them (each backend's `adamw` runs the
/// update: `train/ops/adamw.rs` on the CPU).
#[derive(Debug, Clone, Copy)]
pub struct AdamW {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

pub trait Backend: Sync {
    type Buf: Clone + Send + Sync;
    type View<'a>: Copy + Send + Sync
    where
        Self: 'a;
    type ViewMut<'a>: Send
    where
        Self: 'a;

    // ---- memory -------------------------------------------------------------------------
    fn zeros(&self, n: usize) -> Self::Buf;
    fn upload(&self, host: &[f32]) -> Self::Buf;
    fn download(&self, buf: &Self::Buf) -> Vec<f32>;
    fn len(buf: &Self::Buf) -> usize;
    fn slice(buf: &Self::Buf, r: Range<usize>) -> Self::View<'_>;
    fn slice_mut(buf: &mut Self::Buf, r: Range<usize>) -> Self::ViewMut<'_>;
    fn all(buf: &Self::Buf) -> Self::View<'_> {
        Self::slice(buf, 0..Self::len(buf))
    }
    fn all_mut(buf: &mut Self::Buf) -> Self::ViewMut<'_> {
        let n = Self::len(buf);
        Self::slice_mut(buf, 0..n)
    }
    /// Two disjoint mutable views: `[0, at)` and `[at, len)`.
    fn split_mut<'a>(v: Self::ViewMut<'a>, at: usize) -> (Self::ViewMut<'a>, Self::ViewMut<'a>)
    where
        Self: 'a;

    /// How many parts a batch is cut into, each run on a thread of its own with gradients of
    /// its own, summed afterwards (CPU: one per core; a GPU: one).
    fn replicas(&self) -> usize;
    /// The backend that each of `parts` concurrent parts runs on (CPU: its share of the
    /// threads, which its matrix products use, so a batch smaller than the thread count still
    /// keeps every core busy).
    fn share(&self, parts: usize) -> Self
    where
        Self: Sized;

    // ---- elementwise and reductions ---------------------------------------------------
    /// `y += a · x`
    fn add_scaled(&self, y: Self::ViewMut<'_>, x: Self::View<'_>, a: f32);
    /// `y *= a`
    fn scale(&self, y: Self::ViewMut<'_>, a: f32);
    /// `Σ x²`, accumulated in f64.
    fn sum_squares(&self, x: Self::View<'_>) -> f64;
    /// Row gather: `dst[i] = src[rows[i]]` for rows of `c` floats.
    fn gather_rows(&self, dst: Self::ViewMut<'_>, src: Self::View<'_>, rows: &[usize], c: usize);
    /// Row scatter, the gather's backward: `dst[rows[i]] += src[i]`.
    fn scatter_add_rows(
        &self,
        dst: Self::ViewMut<'_>,
        src: Self::View<'_>,
        rows: &[usize],
        c: usize,
    );

    // ---- activations --------------------------------------------------------------------
    fn gelu_forward(&self, y: Self::ViewMut<'_>, x: Self::View<'_>);
    fn gelu_backward(&self, dx: Self::ViewMut<'_>, dy: Self::View<'_>, x: Self::View<'_>);
    /// In place: `x = tanh(x)`.
    fn tanh_forward(&self, x: Self::ViewMut<'_>);
    /// In place, from the output y: `d = d · (1 − y²)`.
    fn tanh_backward(&self, d: Self::ViewMut<'_>, y: Self::View<'_>);
    /// In place: `x = max(x, 0)`.
    fn relu_forward(&self, x: Self::ViewMut<'_>);
    /// In place, from the output y: `d = d · [y > 0]`.
    fn relu_backward(&self, d: Self::ViewMut<'_>, y: Self::View<'_>);
    /// In place: zeroes each element with probability p and scales the rest by 1/(1−p); the
    /// scale factors (0 or 1/(1−p)) go to `mask`. Which elements drop is a hash of (seed,
    /// index), so every backend draws the same ones.
    fn dropout_forward(&self, x: Self::ViewMut<'_>, mask: Self::ViewMut<'_>, p: f32, seed: u64);
    /// In place: `d = d · mask`.
    fn dropout_backward(&self, d: Self::ViewMut<'_>, mask: Self::View<'_>);

    // ---- layers -------------------------------------------------------------------------
    /// `y = x · Wᵀ + b`; x: T × I, w: O × I, b: O, y: T × O (overwritten).
    #[allow(clippy::too_many_arguments)]
    fn linear_forward(
        &self,
        y: Self::ViewMut<'_>,
        x: Self::View<'_>,
        w: Self::View<'_>,
        b: Self::View<'_>,
        t: usize,
        i: usize,
        o: usize,
    );
    #[allow(clippy::too_many_arguments)]
    fn linear_backward(
        &self,
        dx: Self::ViewMut<'_>,
        dw: Self::ViewMut<'_>,
        db: Self::ViewMut<'_>,
        dy: Self::View<'_>,
        x: Self::View<'_>,
        w: Self::View<'_>,
        t: usize,
        i: usize,
        o: usize,
    );
    /// LayerNorm over rows of `c`; saves each row's mean and 1/std.
    #[allow(clippy::too_many_arguments)]
    fn layernorm_forward(
        &self,
        y: Self::ViewMut<'_>,
        mean: Self::ViewMut<'_>,
        rstd: Self::ViewMut<'_>,
        x: Self::View<'_>,
        w: Self::View<'_>,
        b: Self::View<'_>,
        c: usize,
        eps: f32,
    );
    #[allow(clippy::too_many_arguments)]
    fn layernorm_backward(
        &self,
        dx: Self::ViewMut<'_>,
        dw: Self::ViewMut<'_>,
        db: Self::ViewMut<'_>,
        dy: Self::View<'_>,
        x: Self::View<'_>,
        w: Self::View<'_>,
        mean: Self::View<'_>,
        rstd: Self::View<'_>,
        c: usize,
    );
    /// Word + position + token-type-0 embeddings of `ids` (B × S).
    #[allow(clippy::too_many_arguments)]
    fn embedding_forward(
        &self,
        out: Self::ViewMut<'_>,
        ids: &[u32],
        word: Self::View<'_>,
        pos: Self::View<'_>,
        tok_type: Self::View<'_>,
        s: usize,
        c: usize,
    );
    #[allow(clippy::too_many_arguments)]
    fn embedding_backward(
        &self,
        dword: Self::ViewMut<'_>,
        dpos: Self::ViewMut<'_>,
        dtok_type: Self::ViewMut<'_>,
        dout: Self::View<'_>,
        ids: &[u32],
        s: usize,
        c: usize,
    );
    /// How many floats attention saves per layer for its backward pass (the `probs` buffer):
    /// the probabilities, B·H·S², unless the backend recomputes them (a fused kernel saves each
    /// row's log-sum-exp instead). `dropout`: whether the probabilities are dropped out.
    fn attention_saved_len(&self, sh: &Shape, dropout: bool) -> usize {
        let _ = dropout;
        sh.probs_len()
    }
    /// Multi-head attention with a key padding mask (`mask`: B × S, 1 real, 0 padding): ctx
    /// (overwritten) and the softmax probabilities (saved). With `dropout.p > 0` the
    /// probabilities are dropped out before they weight V, and the scale factors go to
    /// `drop_mask` (same size as `probs`; empty otherwise).
    #[allow(clippy::too_many_arguments)]
    fn attention_forward(
        &self,
        ctx: Self::ViewMut<'_>,
        probs: Self::ViewMut<'_>,
        drop_mask: Self::ViewMut<'_>,
        q: Self::View<'_>,
        k: Self::View<'_>,
        v: Self::View<'_>,
        mask: &[f32],
        sh: &Shape,
        dropout: (f32, u64),
    );
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        &self,
        dq: Self::ViewMut<'_>,
        dk: Self::ViewMut<'_>,
        dv: Self::ViewMut<'_>,
        dctx: Self::View<'_>,
        q: Self::View<'_>,
        k: Self::View<'_>,
        v: Self::View<'_>,
        probs: Self::View<'_>,
        drop_mask: Self::View<'_>,
        sh: &Shape,
    );
    /// Mean softmax cross-entropy over rows whose label is ≥ 0; dlogits is overwritten with
    /// its gradient. Returns the loss.
    fn cross_entropy(
        &self,
        dlogits: Self::ViewMut<'_>,
        logits: Self::View<'_>,
        labels: &[i64],
        v: usize,
    ) -> f32;
    /// One AdamW update (`step` from 1) of a parameter tensor and its two moments.
    #[allow(clippy::too_many_arguments)]
    fn adamw(
        &self,
        opt: &AdamW,
        p: Self::ViewMut<'_>,
        g: Self::View<'_>,
        m: Self::ViewMut<'_>,
        v: Self::ViewMut<'_>,
        step: u64,
        decay: bool,
    );
}

/// Dropout for a training forward pass: probability `p` (hidden states and attention
/// probabilities alike, as BERT's default config has them) and the seed that decides, with the
/// site and the element's index, what drops. `p = 0` is evaluation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dropout {
    pub p: f32,
    pub seed: u64,
}

impl Dropout {
    pub const OFF: Dropout = Dropout { p: 0.0, seed: 0 };

    pub fn on(&self) -> bool {
        self.p > 0.0
    }

    /// The dropout of one part of a batch split across replicas: its own masks.
    pub fn part(&self, i: usize) -> Dropout {
        Dropout {
            p: self.p,
            seed: super::ops::dropout::mix(self.seed ^ (i as u64) << 48),
        }
    }

    /// The seed of one dropout site (a layer's attention, its FFN output...).
    pub fn site(&self, site: u64) -> (f32, u64) {
        (
            self.p,
            super::ops::dropout::mix(self.seed ^ site.wrapping_mul(0xD6E8_FEB8_6659_FD93)),
        )
    }
}
