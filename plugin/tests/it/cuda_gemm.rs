//! `cuda::gemm`, the GPU backend's cuBLAS calls as data, run on the CPU: a column-major
//! reference GEMM (what `cublasGemmStridedBatchedEx` computes) over host buffers at made-up
//! device addresses executes the calls, and the results are held to the CPU backend's linear
//! layer and attention, for fp32 and bf16 element sizes. A wrong transpose, leading dimension,
//! stride or byte offset fails here without a GPU.

use crate::common::random;
use dnabert::cuda::gemm::*;
use dnabert::train::backend::Backend;
use dnabert::train::backend::Shape;
use dnabert::train::cpu::Cpu;

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

fn close(what: &str, got: &[f32], want: &[f32]) {
    crate::common::assert_within(1e-5, what, got, want)
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
    let (ctx, probs, none) = crate::common::cpu_attention(&sh, &q, &k, &v, &mask, (0.0, 0));
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
