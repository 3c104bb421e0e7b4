//! The CPU backend: host vectors, the Rust kernels of `ops` (GEMMs in `ops::gemm`), and one
//! replica per thread, each with a share of the batch's rows; within a replica, products,
//! attention heads and the large elementwise ops use its share of the threads.

use std::ops::Range;

use super::backend::AdamW;
use super::backend::Backend;
use super::backend::Shape;
use super::ops::{attention, cross_entropy, dropout, embedding, gelu, layernorm, linear};

#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    pub threads: usize,
}

impl Cpu {
    pub fn new(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
        }
    }
}

impl Cpu {
    /// The chunk length that splits an elementwise op of `n` values over the threads (all
    /// of it on one, below a size where a thread costs more than it saves). The ops are
    /// elementwise: the split does not change a result.
    fn chunk(&self, n: usize) -> usize {
        const MIN: usize = 1 << 16;
        if n < MIN || self.threads == 1 {
            n.max(1)
        } else {
            n.div_ceil(self.threads).max(MIN / 4)
        }
    }
}

impl Backend for Cpu {
    type Buf = Vec<f32>;
    type View<'a> = &'a [f32];
    type ViewMut<'a> = &'a mut [f32];

    fn zeros(&self, n: usize) -> Vec<f32> {
        // Activations and gradients of megabytes, cleared on all threads: on one, clearing
        // was ~5% of a training step (glibc's calloc clears reused memory on the caller).
        let per = self.chunk(n);
        if per >= n {
            return vec![0.0; n];
        }
        let mut v = Vec::with_capacity(n);
        rayon::scope(|s| {
            for part in v.spare_capacity_mut()[..n].chunks_mut(per) {
                s.spawn(move |_| part.fill(std::mem::MaybeUninit::new(0.0)));
            }
        });
        // SAFETY: the scope above wrote every one of the first n elements.
        unsafe { v.set_len(n) };
        v
    }
    fn upload(&self, host: &[f32]) -> Vec<f32> {
        host.to_vec()
    }
    fn download(&self, buf: &Vec<f32>) -> Vec<f32> {
        buf.clone()
    }
    fn len(buf: &Vec<f32>) -> usize {
        buf.len()
    }
    fn slice(buf: &Vec<f32>, r: Range<usize>) -> &[f32] {
        &buf[r]
    }
    fn slice_mut(buf: &mut Vec<f32>, r: Range<usize>) -> &mut [f32] {
        &mut buf[r]
    }
    fn split_mut<'a>(v: &'a mut [f32], at: usize) -> (&'a mut [f32], &'a mut [f32])
    where
        Self: 'a,
    {
        v.split_at_mut(at)
    }
    fn replicas(&self) -> usize {
        self.threads
    }
    fn share(&self, parts: usize) -> Self {
        Cpu::new(self.threads / parts.max(1))
    }

    fn add_scaled(&self, y: &mut [f32], x: &[f32], a: f32) {
        assert_eq!(y.len(), x.len());
        y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
    }
    fn scale(&self, y: &mut [f32], a: f32) {
        y.iter_mut().for_each(|y| *y *= a);
    }
    fn sum_squares(&self, x: &[f32]) -> f64 {
        x.iter().map(|&v| v as f64 * v as f64).sum()
    }
    fn gather_rows(&self, dst: &mut [f32], src: &[f32], rows: &[usize], c: usize) {
        for (d, &r) in dst.chunks_exact_mut(c).zip(rows) {
            d.copy_from_slice(&src[r * c..][..c]);
        }
    }
    fn scatter_add_rows(&self, dst: &mut [f32], src: &[f32], rows: &[usize], c: usize) {
        for (s, &r) in src.chunks_exact(c).zip(rows) {
            dst[r * c..][..c]
                .iter_mut()
                .zip(s)
                .for_each(|(d, s)| *d += s);
        }
    }

    fn gelu_forward(&self, y: &mut [f32], x: &[f32]) {
        let per = self.chunk(y.len());
        rayon::scope(|s| {
            for (y, x) in y.chunks_mut(per).zip(x.chunks(per)) {
                s.spawn(move |_| gelu::forward(y, x));
            }
        });
    }
    fn gelu_backward(&self, dx: &mut [f32], dy: &[f32], x: &[f32]) {
        let per = self.chunk(dx.len());
        rayon::scope(|s| {
            for ((dx, dy), x) in dx.chunks_mut(per).zip(dy.chunks(per)).zip(x.chunks(per)) {
                s.spawn(move |_| gelu::backward(dx, dy, x));
            }
        });
    }
    fn tanh_forward(&self, x: &mut [f32]) {
        x.iter_mut().for_each(|x| *x = x.tanh());
    }
    fn tanh_backward(&self, d: &mut [f32], y: &[f32]) {
        d.iter_mut().zip(y).for_each(|(d, y)| *d *= 1.0 - y * y);
    }
    fn relu_forward(&self, x: &mut [f32]) {
        x.iter_mut().for_each(|x| *x = x.max(0.0));
    }
    fn relu_backward(&self, d: &mut [f32], y: &[f32]) {
        d.iter_mut()
            .zip(y)
            .for_each(|(d, &y)| *d = if y > 0.0 { *d } else { 0.0 });
    }
    fn dropout_forward(&self, x: &mut [f32], mask: &mut [f32], p: f32, seed: u64) {
        dropout::forward(x, mask, p, seed)
    }
    fn dropout_backward(&self, d: &mut [f32], mask: &[f32]) {
        dropout::backward(d, mask)
    }

    fn linear_forward(
        &self,
        y: &mut [f32],
        x: &[f32],
        w: &[f32],
        b: &[f32],
        t: usize,
        i: usize,
        o: usize,
    ) {
        linear::forward(y, x, w, b, t, i, o, self.threads)
    }
    fn linear_backward(
        &self,
        dx: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
        dy: &[f32],
        x: &[f32],
        w: &[f32],
        t: usize,
        i: usize,
        o: usize,
    ) {
        linear::backward(dx, dw, db, dy, x, w, t, i, o, self.threads)
    }
    fn layernorm_forward(
        &self,
        y: &mut [f32],
        mean: &mut [f32],
        rstd: &mut [f32],
        x: &[f32],
        w: &[f32],
        b: &[f32],
        c: usize,
        eps: f32,
    ) {
        layernorm::forward(y, mean, rstd, x, w, b, c, eps)
    }
    fn layernorm_backward(
        &self,
        dx: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
        dy: &[f32],
        x: &[f32],
        w: &[f32],
        mean: &[f32],
        rstd: &[f32],
        c: usize,
    ) {
        layernorm::backward(dx, dw, db, dy, x, w, mean, rstd, c)
    }
    fn embedding_forward(
        &self,
        out: &mut [f32],
        ids: &[u32],
        word: &[f32],
        pos: &[f32],
        tok_type: &[f32],
        s: usize,
        c: usize,
    ) {
        embedding::forward(out, ids, word, pos, tok_type, s, c)
    }
    fn embedding_backward(
        &self,
        dword: &mut [f32],
        dpos: &mut [f32],
        dtok_type: &mut [f32],
        dout: &[f32],
        ids: &[u32],
        s: usize,
        c: usize,
    ) {
        embedding::backward(dword, dpos, dtok_type, dout, ids, s, c)
    }
    fn attention_forward(
        &self,
        ctx: &mut [f32],
        probs: &mut [f32],
        drop_mask: &mut [f32],
        q: &[f32],
        k: &[f32],
        v: &[f32],
        mask: &[f32],
        sh: &Shape,
        dropout: (f32, u64),
    ) {
        attention::forward(
            ctx,
            probs,
            drop_mask,
            q,
            k,
            v,
            mask,
            sh,
            dropout,
            self.threads,
        )
    }
    fn attention_backward(
        &self,
        dq: &mut [f32],
        dk: &mut [f32],
        dv: &mut [f32],
        dctx: &[f32],
        q: &[f32],
        k: &[f32],
        v: &[f32],
        probs: &[f32],
        drop_mask: &[f32],
        sh: &Shape,
    ) {
        attention::backward(
            dq,
            dk,
            dv,
            dctx,
            q,
            k,
            v,
            probs,
            drop_mask,
            sh,
            self.threads,
        )
    }
    fn cross_entropy(&self, dlogits: &mut [f32], logits: &[f32], labels: &[i64], v: usize) -> f32 {
        cross_entropy::forward_backward(dlogits, logits, labels, v)
    }
    fn adamw(
        &self,
        opt: &AdamW,
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        step: u64,
        decay: bool,
    ) {
        let per = self.chunk(p.len());
        rayon::scope(|s| {
            for (((p, g), m), v) in p
                .chunks_mut(per)
                .zip(g.chunks(per))
                .zip(m.chunks_mut(per))
                .zip(v.chunks_mut(per))
            {
                s.spawn(move |_| opt.update(p, g, m, v, step, decay));
            }
        });
    }
}
