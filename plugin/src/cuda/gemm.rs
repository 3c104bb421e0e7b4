//! The GPU backend's matrix products as data: which cuBLAS call (transposes, sizes, leading
//! dimensions, strides, batch) computes each product of the model's row-major tensors. cuBLAS is
//! column-major, so every product is written for the transposes (a row-major A is a
//! column-major Aᵀ); that mapping is where a backend without a GPU to run on most easily goes
//! wrong, so it lives here as pure functions, tested on the CPU against a column-major reference
//! GEMM and the CPU backend (`tests` below). `backend.rs` hands each [`Gemm`] to
//! `cublasGemmStridedBatchedEx`.

use crate::train::ops::attention::Shape;

/// A matrix operand: device address, leading dimension and batch stride (in elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mat {
    pub ptr: u64,
    pub ld: usize,
    pub stride: usize,
}

/// Column-major `C = op(A)·op(B) + beta·C` over `batch` matrices; op(A) is m × k, op(B) k × n.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gemm {
    pub trans: (bool, bool),
    pub mnk: (usize, usize, usize),
    pub a: Mat,
    pub b: Mat,
    pub beta: f32,
    pub c: Mat,
    pub batch: usize,
}

fn one(ptr: u64, ld: usize) -> Mat {
    Mat { ptr, ld, stride: 0 }
}

/// `y = x · wᵀ` (x: T × I, w: O × I, y: T × O, overwritten) as `Yᵀ (O × T) = W (O × I) · Xᵀ`:
/// row-major W is column-major Wᵀ, hence op(A) = T.
pub fn linear_forward(t: usize, i: usize, o: usize, x: u64, w: u64, y: u64) -> Gemm {
    Gemm {
        trans: (true, false),
        mnk: (o, t, i),
        a: one(w, i),
        b: one(x, i),
        beta: 0.0,
        c: one(y, o),
        batch: 1,
    }
}

/// `dx += dy · w` as `dXᵀ (I × T) += Wᵀ (I × O) · dYᵀ (O × T)`, and `dw += dyᵀ · x` as
/// `dWᵀ (I × O) += Xᵀ (I × T) · dY (T × O)`.
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    t: usize,
    i: usize,
    o: usize,
    dy: u64,
    x: u64,
    w: u64,
    dx: u64,
    dw: u64,
) -> [Gemm; 2] {
    [
        Gemm {
            trans: (false, false),
            mnk: (i, t, o),
            a: one(w, i),
            b: one(dy, o),
            beta: 1.0,
            c: one(dx, i),
            batch: 1,
        },
        Gemm {
            trans: (false, true),
            mnk: (i, o, t),
            a: one(x, i),
            b: one(dy, o),
            beta: 1.0,
            c: one(dw, i),
            batch: 1,
        },
    ]
}

/// An operand of attention's per-head products: a T × C activation (Q, K, V, ctx and their
/// gradients; heads `head_dim` elements apart) or B·H·S·S scores, probabilities or their
/// gradients (row i of (b, h) at `(b·H + h)·S² + i·S`).
#[derive(Debug, Clone, Copy)]
pub enum Heads {
    Tokens(u64),
    Scores(u64),
}

/// `C = op(A)·op(B) + beta·C` for every (batch row, head): one strided batch over the heads per
/// batch row. A and B hold elements of `input_bytes` (4 fp32, 2 bf16); C is fp32.
#[allow(clippy::too_many_arguments)]
fn per_head(
    sh: &Shape,
    trans: (bool, bool),
    mnk: (usize, usize, usize),
    a: Heads,
    b: Heads,
    beta: f32,
    c: Heads,
    input_bytes: usize,
) -> Vec<Gemm> {
    let (s, h, d) = (sh.seq, sh.heads, sh.head_dim);
    let (cc, ss) = (h * d, s * s);
    let at = |x: Heads, bi: usize, bytes: usize| match x {
        Heads::Tokens(p) => Mat {
            ptr: p + (bytes * bi * s * cc) as u64,
            ld: cc,
            stride: d,
        },
        Heads::Scores(p) => Mat {
            ptr: p + (bytes * bi * h * ss) as u64,
            ld: s,
            stride: ss,
        },
    };
    (0..sh.batch)
        .map(|bi| Gemm {
            trans,
            mnk,
            a: at(a, bi, input_bytes),
            b: at(b, bi, input_bytes),
            beta,
            c: at(c, bi, 4),
            batch: h,
        })
        .collect()
}

/// The scores `q kᵀ` of each head into `scores` (overwritten): `Pᵀ = K · Qᵀ` per head.
pub fn attention_scores(sh: &Shape, q: u64, k: u64, scores: u64, input_bytes: usize) -> Vec<Gemm> {
    let (s, d) = (sh.seq, sh.head_dim);
    use Heads::*;
    per_head(
        sh,
        (true, false),
        (s, s, d),
        Tokens(k),
        Tokens(q),
        0.0,
        Scores(scores),
        input_bytes,
    )
}

/// `ctx = W v` per head (W: the probabilities, dropped out or not), overwritten:
/// `ctxᵀ (d × S) = Vᵀ · Wᵀ`.
pub fn attention_context(sh: &Shape, v: u64, w: u64, ctx: u64, input_bytes: usize) -> Vec<Gemm> {
    let (s, d) = (sh.seq, sh.head_dim);
    use Heads::*;
    per_head(
        sh,
        (false, false),
        (d, s, s),
        Tokens(v),
        Scores(w),
        0.0,
        Tokens(ctx),
        input_bytes,
    )
}

/// Backward through `ctx = W v`: `dW = dctx vᵀ` (overwritten) as `dWᵀ = V · dctxᵀ`, and
/// `dv += Wᵀ dctx` as `dVᵀ += dctxᵀ · W`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_w_v(
    sh: &Shape,
    v: u64,
    dctx: u64,
    w: u64,
    dw: u64,
    dv: u64,
    input_bytes: usize,
) -> Vec<Gemm> {
    let (s, d) = (sh.seq, sh.head_dim);
    use Heads::*;
    let mut g = per_head(
        sh,
        (true, false),
        (s, s, d),
        Tokens(v),
        Tokens(dctx),
        0.0,
        Scores(dw),
        input_bytes,
    );
    g.extend(per_head(
        sh,
        (false, true),
        (d, s, s),
        Tokens(dctx),
        Scores(w),
        1.0,
        Tokens(dv),
        input_bytes,
    ));
    g
}

/// Backward through the scores, given their gradient dS: `dq += dS k` as `dQᵀ += Kᵀ · dSᵀ`
/// (row-major dS is column-major dSᵀ), and `dk += dSᵀ q` as `dKᵀ += Qᵀ · dS`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_q_k(
    sh: &Shape,
    q: u64,
    k: u64,
    ds: u64,
    dq: u64,
    dk: u64,
    input_bytes: usize,
) -> Vec<Gemm> {
    let (s, d) = (sh.seq, sh.head_dim);
    use Heads::*;
    let mut g = per_head(
        sh,
        (false, false),
        (d, s, s),
        Tokens(k),
        Scores(ds),
        1.0,
        Tokens(dq),
        input_bytes,
    );
    g.extend(per_head(
        sh,
        (false, true),
        (d, s, s),
        Tokens(q),
        Scores(ds),
        1.0,
        Tokens(dk),
        input_bytes,
    ));
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::backend::Backend;
    use crate::train::cpu::Cpu;

    /// Host buffers at made-up device addresses, each with the element size the GPU would give
    /// it (values are kept as f32; only the address arithmetic sees the size).
    struct Memory(Vec<(u64, usize, Vec<f32>)>);

    impl Memory {
        fn add(&mut self, data: Vec<f32>, bytes: usize) -> u64 {
            let base = (self.0.len() as u64 + 1) << 32;
            self.0.push((base, bytes, data));
            base
        }
        fn find(&self, addr: u64) -> (usize, usize) {
            let (i, (base, bytes, data)) = self
                .0
                .iter()
                .enumerate()
                .find(|(_, (b, _, _))| addr >> 32 == b >> 32)
                .unwrap_or_else(|| panic!("address {addr:#x} is in no buffer"));
            let off = (addr - base) as usize;
            assert_eq!(off % bytes, 0, "address {addr:#x} splits an element");
            assert!(
                off / bytes < data.len(),
                "address {addr:#x} is past its buffer"
            );
            (i, off / bytes)
        }
        fn get(&self, addr: u64, elem: usize) -> f32 {
            let (i, at) = self.find(addr);
            self.0[i].2[at + elem]
        }
        fn data(&self, addr: u64) -> &[f32] {
            &self.0[self.find(addr).0].2
        }
        fn copy(&mut self, addr: u64, bytes: usize) -> u64 {
            let data = self.data(addr).to_vec();
            self.add(data, bytes)
        }
        /// The reference: what cublasGemmStridedBatchedEx computes, element by element.
        fn run(&mut self, g: &Gemm) {
            let ((ta, tb), (m, n, k)) = (g.trans, g.mnk);
            let bytes_of = |addr: u64| self.0[self.find(addr).0].1;
            let (ab, bb, cb) = (bytes_of(g.a.ptr), bytes_of(g.b.ptr), bytes_of(g.c.ptr));
            assert_eq!(ab, bb, "A and B differ in element size");
            assert_eq!(cb, 4, "C is fp32");
            for batch in 0..g.batch {
                let a = g.a.ptr + (ab * batch * g.a.stride) as u64;
                let b = g.b.ptr + (bb * batch * g.b.stride) as u64;
                let c = g.c.ptr + (4 * batch * g.c.stride) as u64;
                for col in 0..n {
                    for row in 0..m {
                        let mut sum = 0f64;
                        for p in 0..k {
                            let av = if ta { (p, row) } else { (row, p) };
                            let bv = if tb { (col, p) } else { (p, col) };
                            sum += self.get(a, av.1 * g.a.ld + av.0) as f64
                                * self.get(b, bv.1 * g.b.ld + bv.0) as f64;
                        }
                        let (i, at) = self.find(c);
                        let cell = &mut self.0[i].2[at + col * g.c.ld + row];
                        *cell = g.beta * *cell + sum as f32;
                    }
                }
            }
        }
    }

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn close(what: &str, got: &[f32], want: &[f32]) {
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= 1e-5 * scale,
            "{what}: max error {err:e} of scale {scale:e}"
        );
    }

    /// fp32 and bf16 inputs (element sizes 4 and 2): the products the backend issues give the
    /// CPU backend's linear layer, forward and backward.
    #[test]
    fn linear_products_compute_the_linear_layer() {
        let cpu = Cpu::new(1);
        let (t, i, o) = (7, 12, 5);
        let (x, w, dy) = (random(t * i, 1), random(o * i, 2), random(t * o, 3));
        let (dx0, dw0) = (random(t * i, 4), random(o * i, 5));
        let mut y = vec![0.0; t * o];
        cpu.linear_forward(&mut y, &x, &w, &vec![0.0; o], t, i, o);
        let (mut dx, mut dw, mut db) = (dx0.clone(), dw0.clone(), vec![0.0; o]);
        cpu.linear_backward(&mut dx, &mut dw, &mut db, &dy, &x, &w, t, i, o);
        for bytes in [4, 2] {
            let mut mem = Memory(vec![]);
            let (xa, wa, dya) = (
                mem.add(x.clone(), bytes),
                mem.add(w.clone(), bytes),
                mem.add(dy.clone(), bytes),
            );
            let (ya, dxa, dwa) = (
                mem.add(vec![7.0; t * o], 4),
                mem.add(dx0.clone(), 4),
                mem.add(dw0.clone(), 4),
            );
            mem.run(&linear_forward(t, i, o, xa, wa, ya));
            for g in linear_backward(t, i, o, dya, xa, wa, dxa, dwa) {
                mem.run(&g);
            }
            close(&format!("y ({bytes}-byte inputs)"), mem.data(ya), &y);
            close(&format!("dx ({bytes}-byte inputs)"), mem.data(dxa), &dx);
            close(&format!("dw ({bytes}-byte inputs)"), mem.data(dwa), &dw);
        }
    }

    /// The attention products around the CPU's softmax: the scores are q·k per head at the
    /// documented layout, the context and every gradient equal the CPU backend's attention, with
    /// padding and two batch rows, for fp32 and bf16 element sizes.
    #[test]
    fn attention_products_compute_the_cpu_backends_attention() {
        let cpu = Cpu::new(1);
        let sh = Shape {
            batch: 2,
            seq: 9,
            heads: 3,
            head_dim: 4,
        };
        let (s, h, d, c) = (sh.seq, sh.heads, sh.head_dim, sh.heads * sh.head_dim);
        let t = sh.batch * s;
        let (q, k, v, dctx) = (
            random(t * c, 6),
            random(t * c, 7),
            random(t * c, 8),
            random(t * c, 9),
        );
        let mut mask = vec![1f32; t];
        mask[s - 3..s].iter_mut().for_each(|m| *m = 0.0);
        let (mut ctx, mut probs) = (vec![0.0; t * c], vec![0.0; sh.probs_len()]);
        let mut none: Vec<f32> = vec![];
        cpu.attention_forward(
            &mut ctx,
            &mut probs,
            &mut none,
            &q,
            &k,
            &v,
            &mask,
            &sh,
            (0.0, 0),
        );
        let (dq0, dk0, dv0) = (random(t * c, 10), random(t * c, 11), random(t * c, 12));
        let (mut dq, mut dk, mut dv) = (dq0.clone(), dk0.clone(), dv0.clone());
        cpu.attention_backward(
            &mut dq, &mut dk, &mut dv, &dctx, &q, &k, &v, &probs, &none, &sh,
        );

        let scores: Vec<f32> = (0..sh.probs_len())
            .map(|r| {
                let (bh, i, j) = (r / (s * s), (r / s) % s, r % s);
                let (b, hh) = (bh / h, bh % h);
                let row = |x: &[f32], tok: usize| x[(b * s + tok) * c + hh * d..][..d].to_vec();
                row(&q, i).iter().zip(row(&k, j)).map(|(a, b)| a * b).sum()
            })
            .collect();
        let scale = 1.0 / (d as f32).sqrt();
        for bytes in [4, 2] {
            let mut mem = Memory(vec![]);
            let (qa, ka, va) = (
                mem.add(q.clone(), bytes),
                mem.add(k.clone(), bytes),
                mem.add(v.clone(), bytes),
            );
            let sa = mem.add(vec![7.0; sh.probs_len()], 4);
            for g in attention_scores(&sh, qa, ka, sa, bytes) {
                mem.run(&g);
            }
            close(&format!("scores ({bytes})"), mem.data(sa), &scores);
            // The softmax is a kernel's; the CPU's probabilities stand in for it.
            let wa = mem.add(probs.clone(), bytes);
            let ca = mem.add(vec![7.0; t * c], 4);
            for g in attention_context(&sh, va, wa, ca, bytes) {
                mem.run(&g);
            }
            close(&format!("ctx ({bytes})"), mem.data(ca), &ctx);

            let dca = mem.add(dctx.clone(), bytes);
            let (dwa, dva) = (
                mem.add(vec![7.0; sh.probs_len()], 4),
                mem.add(dv0.clone(), 4),
            );
            for g in attention_backward_w_v(&sh, va, dca, wa, dwa, dva, bytes) {
                mem.run(&g);
            }
            close(&format!("dv ({bytes})"), mem.data(dva), &dv);
            // attention_softmax_backward's formula (held to the CPU in cuda_emulated.rs).
            let dw = mem.data(dwa).to_vec();
            let ds: Vec<f32> = (0..sh.probs_len())
                .map(|r| {
                    let row = r / s * s..r / s * s + s;
                    let dot: f32 = row.clone().map(|x| dw[x] * probs[x]).sum();
                    scale * probs[r] * (dw[r] - dot)
                })
                .collect();
            let dsa = mem.add(ds, 4);
            let dsa = mem.copy(dsa, bytes);
            let (dqa, dka) = (mem.add(dq0.clone(), 4), mem.add(dk0.clone(), 4));
            for g in attention_backward_q_k(&sh, qa, ka, dsa, dqa, dka, bytes) {
                mem.run(&g);
            }
            close(&format!("dq ({bytes})"), mem.data(dqa), &dq);
            close(&format!("dk ({bytes})"), mem.data(dka), &dk);
        }
    }
}
