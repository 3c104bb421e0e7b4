//! Every backend op, forward and backward, against the CPU backend (one thread) on fresh random
//! inputs. Outputs an op overwrites start as NaN on the backend under test (zero on the
//! reference), so an element it leaves unwritten fails the comparison; outputs it accumulates
//! into start as the same random values on both.

use super::{random, Report};
use crate::train::backend::AdamW;
use crate::train::backend::Backend;
use crate::train::backend::Shape;
use crate::train::cpu::Cpu;

/// An op's output buffer.
enum Out {
    /// Overwritten: `n` values, NaN on the backend under test.
    Fresh(usize),
    /// Accumulated into (or updated in place): these values on both.
    Acc(Vec<f32>),
}

/// Runs `op_cpu` on the reference and `op_be` on `be` over the same inputs and outputs, and
/// compares every output.
#[allow(clippy::too_many_arguments)]
fn both<B: Backend>(
    r: &mut Report,
    be: &B,
    (tag, bound): (&str, f32),
    what: &str,
    inputs: &[Vec<f32>],
    outputs: &[Out],
    op_cpu: impl Fn(&Cpu, &[&[f32]], &mut [Vec<f32>]),
    op_be: impl Fn(&B, &[B::Buf], &mut [B::Buf]),
) {
    let cpu = Cpu::new(1);
    let ins: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let mut outs_cpu: Vec<Vec<f32>> = outputs
        .iter()
        .map(|o| match o {
            Out::Fresh(n) => vec![0.0; *n],
            Out::Acc(v) => v.clone(),
        })
        .collect();
    op_cpu(&cpu, &ins, &mut outs_cpu);
    let ins_b: Vec<_> = inputs.iter().map(|v| be.upload(v)).collect();
    let mut outs_b: Vec<_> = outputs
        .iter()
        .map(|o| match o {
            Out::Fresh(n) => be.upload(&vec![f32::NAN; *n]),
            Out::Acc(v) => be.upload(v),
        })
        .collect();
    op_be(be, &ins_b, &mut outs_b);
    for (i, (ob, oc)) in outs_b.iter().zip(&outs_cpu).enumerate() {
        let got = be.download(ob);
        r.close(
            format!("{what} output {i} ({tag})"),
            &got[..oc.len().min(got.len())],
            oc,
            bound,
        );
    }
}

/// All of `be`'s ops against the CPU's, each output within `bound` of its scale; `tag` names
/// the backend's variant in the report (e.g. "fp32").
pub fn run<B: Backend>(r: &mut Report, be: &B, tag: &str, bound: f32) {
    let v = (tag, bound);
    linear_and_layernorm(r, be, v);
    activations(r, be, v);
    embedding_and_attention(r, be, v);
    loss_adamw_and_reductions(r, be, v);
}

fn linear_and_layernorm<B: Backend>(r: &mut Report, be: &B, v: (&str, f32)) {
    let (t, i, o) = (37, 64, 48);
    let (x, w, b, dy) = (
        random(t * i, 1),
        random(o * i, 2),
        random(o, 3),
        random(t * o, 4),
    );
    both(
        r,
        be,
        v,
        "linear_forward",
        &[x.clone(), w.clone(), b.clone()],
        &[Out::Fresh(t * o)],
        |c, a, out| c.linear_forward(&mut out[0], a[0], a[1], a[2], t, i, o),
        |g, a, out| {
            g.linear_forward(
                B::all_mut(&mut out[0]),
                B::all(&a[0]),
                B::all(&a[1]),
                B::all(&a[2]),
                t,
                i,
                o,
            )
        },
    );
    both(
        r,
        be,
        v,
        "linear_backward",
        &[dy, x, w],
        &[
            Out::Acc(random(t * i, 5)),
            Out::Acc(random(o * i, 6)),
            Out::Acc(random(o, 7)),
        ],
        |c, a, out| {
            let [dx, dw, db] = out else { unreachable!() };
            c.linear_backward(dx, dw, db, a[0], a[1], a[2], t, i, o)
        },
        |g, a, out| {
            let [dx, dw, db] = out else { unreachable!() };
            g.linear_backward(
                B::all_mut(dx),
                B::all_mut(dw),
                B::all_mut(db),
                B::all(&a[0]),
                B::all(&a[1]),
                B::all(&a[2]),
                t,
                i,
                o,
            )
        },
    );

    // 1100 channels: more than one pass of a 1024-thread block over each row; 70 rows: more
    // than two chunks of the column sums.
    for (t, c) in [(37, 96), (70, 1100)] {
        let (x, w, b, dy) = (
            random(t * c, 8),
            random(c, 9),
            random(c, 10),
            random(t * c, 11),
        );
        both(
            r,
            be,
            v,
            &format!("layernorm_forward C {c}"),
            &[x.clone(), w.clone(), b.clone()],
            &[Out::Fresh(t * c), Out::Fresh(t), Out::Fresh(t)],
            |cp, a, out| {
                let [y, mean, rstd] = out else { unreachable!() };
                cp.layernorm_forward(y, mean, rstd, a[0], a[1], a[2], c, 1e-12)
            },
            |g, a, out| {
                let [y, mean, rstd] = out else { unreachable!() };
                g.layernorm_forward(
                    B::all_mut(y),
                    B::all_mut(mean),
                    B::all_mut(rstd),
                    B::all(&a[0]),
                    B::all(&a[1]),
                    B::all(&a[2]),
                    c,
                    1e-12,
                )
            },
        );
        let (mut y, mut mean, mut rstd) = (vec![0.0; t * c], vec![0.0; t], vec![0.0; t]);
        Cpu::new(1).layernorm_forward(&mut y, &mut mean, &mut rstd, &x, &w, &b, c, 1e-12);
        both(
            r,
            be,
            v,
            &format!("layernorm_backward C {c}"),
            &[dy, x, w, mean, rstd],
            &[
                Out::Acc(random(t * c, 12)),
                Out::Acc(random(c, 13)),
                Out::Acc(random(c, 14)),
            ],
            |cp, a, out| {
                let [dx, dw, db] = out else { unreachable!() };
                cp.layernorm_backward(dx, dw, db, a[0], a[1], a[2], a[3], a[4], c)
            },
            |g, a, out| {
                let [dx, dw, db] = out else { unreachable!() };
                g.layernorm_backward(
                    B::all_mut(dx),
                    B::all_mut(dw),
                    B::all_mut(db),
                    B::all(&a[0]),
                    B::all(&a[1]),
                    B::all(&a[2]),
                    B::all(&a[3]),
                    B::all(&a[4]),
                    c,
                )
            },
        );
    }
}

fn activations<B: Backend>(r: &mut Report, be: &B, v: (&str, f32)) {
    let x: Vec<f32> = random(1000, 15).iter().map(|v| 4.0 * v).collect();
    both(
        r,
        be,
        v,
        "gelu_forward",
        std::slice::from_ref(&x),
        &[Out::Fresh(1000)],
        |c, a, out| c.gelu_forward(&mut out[0], a[0]),
        |g, a, out| g.gelu_forward(B::all_mut(&mut out[0]), B::all(&a[0])),
    );
    both(
        r,
        be,
        v,
        "gelu_backward",
        &[random(1000, 16), x.clone()],
        &[Out::Acc(random(1000, 17))],
        |c, a, out| c.gelu_backward(&mut out[0], a[0], a[1]),
        |g, a, out| g.gelu_backward(B::all_mut(&mut out[0]), B::all(&a[0]), B::all(&a[1])),
    );
    let y: Vec<f32> = x.iter().map(|v| v.tanh()).collect();
    for (name, forward) in [("tanh", true), ("relu", false)] {
        both(
            r,
            be,
            v,
            &format!("{name}_forward"),
            &[],
            &[Out::Acc(x.clone())],
            |c, _, out| {
                if forward {
                    c.tanh_forward(&mut out[0])
                } else {
                    c.relu_forward(&mut out[0])
                }
            },
            |g, _, out| {
                if forward {
                    g.tanh_forward(B::all_mut(&mut out[0]))
                } else {
                    g.relu_forward(B::all_mut(&mut out[0]))
                }
            },
        );
        both(
            r,
            be,
            v,
            &format!("{name}_backward"),
            std::slice::from_ref(&y),
            &[Out::Acc(random(1000, 18))],
            |c, a, out| {
                if forward {
                    c.tanh_backward(&mut out[0], a[0])
                } else {
                    c.relu_backward(&mut out[0], a[0])
                }
            },
            |g, a, out| {
                if forward {
                    g.tanh_backward(B::all_mut(&mut out[0]), B::all(&a[0]))
                } else {
                    g.relu_backward(B::all_mut(&mut out[0]), B::all(&a[0]))
                }
            },
        );
    }
    // Dropout draws its mask from (seed, index): the backend must drop exactly the CPU's
    // elements.
    both(
        r,
        be,
        v,
        "dropout_forward",
        &[],
        &[Out::Acc(x.clone()), Out::Fresh(1000)],
        |c, _, out| {
            let [x, mask] = out else { unreachable!() };
            c.dropout_forward(x, mask, 0.1, 42)
        },
        |g, _, out| {
            let [x, mask] = out else { unreachable!() };
            g.dropout_forward(B::all_mut(x), B::all_mut(mask), 0.1, 42)
        },
    );
    let mut mask = vec![0.0; 1000];
    Cpu::new(1).dropout_forward(&mut x.clone(), &mut mask, 0.1, 42);
    both(
        r,
        be,
        v,
        "dropout_backward",
        &[mask],
        &[Out::Acc(random(1000, 19))],
        |c, a, out| c.dropout_backward(&mut out[0], a[0]),
        |g, a, out| g.dropout_backward(B::all_mut(&mut out[0]), B::all(&a[0])),
    );
}

fn embedding_and_attention<B: Backend>(r: &mut Report, be: &B, v: (&str, f32)) {
    let (batch, seq, heads, head_dim, vocab) = (2, 24, 4, 16, 69);
    let c = heads * head_dim;
    let t = batch * seq;
    // Ids that repeat, so that the word gradient adds several rows into one.
    let ids: Vec<u32> = (0..t as u32).map(|i| (i * 7 + 3) % 13).collect();
    let (word, pos, tt) = (random(vocab * c, 20), random(seq * c, 21), random(c, 22));
    both(
        r,
        be,
        v,
        "embedding_forward",
        &[word, pos, tt],
        &[Out::Fresh(t * c)],
        |cp, a, out| cp.embedding_forward(&mut out[0], &ids, a[0], a[1], a[2], seq, c),
        |g, a, out| {
            g.embedding_forward(
                B::all_mut(&mut out[0]),
                &ids,
                B::all(&a[0]),
                B::all(&a[1]),
                B::all(&a[2]),
                seq,
                c,
            )
        },
    );
    both(
        r,
        be,
        v,
        "embedding_backward",
        &[random(t * c, 23)],
        &[
            Out::Acc(random(vocab * c, 24)),
            Out::Acc(random(seq * c, 25)),
            Out::Acc(random(c, 26)),
        ],
        |cp, a, out| {
            let [dw, dp, dt] = out else { unreachable!() };
            cp.embedding_backward(dw, dp, dt, a[0], &ids, seq, c)
        },
        |g, a, out| {
            let [dw, dp, dt] = out else { unreachable!() };
            g.embedding_backward(
                B::all_mut(dw),
                B::all_mut(dp),
                B::all_mut(dt),
                B::all(&a[0]),
                &ids,
                seq,
                c,
            )
        },
    );

    let sh = Shape {
        batch,
        seq,
        heads,
        head_dim,
    };
    let mut mask = vec![1f32; t];
    mask[seq - 5..seq].iter_mut().for_each(|m| *m = 0.0); // padding in the first row
    let (q, k, vv) = (random(t * c, 27), random(t * c, 28), random(t * c, 29));
    for p in [0.0f32, 0.1] {
        let drop_len = if p > 0.0 { sh.probs_len() } else { 0 };
        let saved = be.attention_saved_len(&sh, p > 0.0);
        // What the backend saves for backward may differ from the CPU's probabilities (fused
        // attention keeps log-sum-exps), so only the context is compared here and the
        // backward pass runs on what this backend saved.
        let cpu = Cpu::new(1);
        let (mut ctx_c, mut probs_c, mut dm_c) = (
            vec![0.0; t * c],
            vec![0.0; sh.probs_len()],
            vec![0.0; drop_len],
        );
        cpu.attention_forward(
            &mut ctx_c,
            &mut probs_c,
            &mut dm_c,
            &q,
            &k,
            &vv,
            &mask,
            &sh,
            (p, 7),
        );
        let up = |x: &[f32]| be.upload(x);
        let (qb, kb, vb) = (up(&q), up(&k), up(&vv));
        let (mut ctx, mut probs, mut dm) = (
            be.upload(&vec![f32::NAN; t * c]),
            be.upload(&vec![f32::NAN; saved]),
            be.upload(&vec![f32::NAN; drop_len]),
        );
        let dm_view = if drop_len == 0 {
            B::slice_mut(&mut dm, 0..0)
        } else {
            B::all_mut(&mut dm)
        };
        be.attention_forward(
            B::all_mut(&mut ctx),
            B::all_mut(&mut probs),
            dm_view,
            B::all(&qb),
            B::all(&kb),
            B::all(&vb),
            &mask,
            &sh,
            (p, 7),
        );
        r.close(
            format!("attention_forward p={p} ctx ({})", v.0),
            &be.download(&ctx)[..t * c],
            &ctx_c,
            v.1,
        );
        if drop_len > 0 {
            r.close(
                format!("attention_forward p={p} dropout mask ({})", v.0),
                &be.download(&dm)[..drop_len],
                &dm_c,
                v.1,
            );
        }
        let dctx = random(t * c, 30);
        let acc = [random(t * c, 31), random(t * c, 32), random(t * c, 33)];
        let (mut dq_c, mut dk_c, mut dv_c) = (acc[0].clone(), acc[1].clone(), acc[2].clone());
        cpu.attention_backward(
            &mut dq_c, &mut dk_c, &mut dv_c, &dctx, &q, &k, &vv, &probs_c, &dm_c, &sh,
        );
        let (mut dq, mut dk, mut dv) = (up(&acc[0]), up(&acc[1]), up(&acc[2]));
        let dctx_b = up(&dctx);
        let dm_view = if drop_len == 0 {
            B::slice(&dm, 0..0)
        } else {
            B::all(&dm)
        };
        be.attention_backward(
            B::all_mut(&mut dq),
            B::all_mut(&mut dk),
            B::all_mut(&mut dv),
            B::all(&dctx_b),
            B::all(&qb),
            B::all(&kb),
            B::all(&vb),
            B::all(&probs),
            dm_view,
            &sh,
        );
        for (name, got, want) in [("dq", &dq, &dq_c), ("dk", &dk, &dk_c), ("dv", &dv, &dv_c)] {
            r.close(
                format!("attention_backward p={p} {name} ({})", v.0),
                &be.download(got)[..t * c],
                want,
                v.1,
            );
        }
    }
}

fn loss_adamw_and_reductions<B: Backend>(r: &mut Report, be: &B, (tag, bound): (&str, f32)) {
    let (rows, vocab) = (13, 69);
    let logits = random(rows * vocab, 40);
    let labels: Vec<i64> = (0..rows as i64)
        .map(|r| {
            if r % 4 == 3 {
                -100
            } else {
                (r * 5) % vocab as i64
            }
        })
        .collect();
    let cpu = Cpu::new(1);
    let mut d_cpu = vec![0.0; rows * vocab];
    let loss_cpu = cpu.cross_entropy(&mut d_cpu, &logits, &labels, vocab);
    let (lg, mut dg) = (be.upload(&logits), be.upload(&vec![f32::NAN; rows * vocab]));
    let loss = be.cross_entropy(B::all_mut(&mut dg), B::all(&lg), &labels, vocab);
    r.close(
        format!("cross_entropy loss ({tag})"),
        &[loss],
        &[loss_cpu],
        bound,
    );
    r.close(
        format!("cross_entropy dlogits ({tag})"),
        &be.download(&dg)[..rows * vocab],
        &d_cpu,
        bound,
    );

    let opt = AdamW {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-6,
        weight_decay: 0.01,
    };
    both(
        r,
        be,
        (tag, bound),
        "adamw",
        &[random(500, 41)],
        &[
            Out::Acc(random(500, 42)),
            Out::Acc(random(500, 43)),
            Out::Acc(random(500, 44).iter().map(|v| v.abs()).collect()),
        ],
        |cp, a, out| {
            let [p, m1, m2] = out else { unreachable!() };
            cp.adamw(&opt, p, a[0], m1, m2, 3, true)
        },
        |g, a, out| {
            let [p, m1, m2] = out else { unreachable!() };
            g.adamw(
                &opt,
                B::all_mut(p),
                B::all(&a[0]),
                B::all_mut(m1),
                B::all_mut(m2),
                3,
                true,
            )
        },
    );

    // Σx² over more elements than the fixed grid has threads; the sums are f64 on both sides.
    let x = random(300_000, 45);
    let ss = be.sum_squares(B::all(&be.upload(&x)));
    let ss_cpu = cpu.sum_squares(&x);
    r.close(
        format!("sum_squares ({tag})"),
        &[ss as f32],
        &[ss_cpu as f32],
        1e-5,
    );
    // Row gather and scatter-add, repeated rows included (the MLM head's masked rows).
    let c = 40;
    let src = random(9 * c, 46);
    let idx = [4usize, 0, 8, 4, 4];
    both(
        r,
        be,
        (tag, bound),
        "gather_rows",
        std::slice::from_ref(&src),
        &[Out::Fresh(idx.len() * c)],
        |cp, a, out| cp.gather_rows(&mut out[0], a[0], &idx, c),
        |g, a, out| g.gather_rows(B::all_mut(&mut out[0]), B::all(&a[0]), &idx, c),
    );
    both(
        r,
        be,
        (tag, bound),
        "scatter_add_rows",
        &[random(idx.len() * c, 47)],
        &[Out::Acc(src)],
        |cp, a, out| cp.scatter_add_rows(&mut out[0], a[0], &idx, c),
        |g, a, out| g.scatter_add_rows(B::all_mut(&mut out[0]), B::all(&a[0]), &idx, c),
    );
    let (y, x) = (random(700, 48), random(700, 49));
    both(
        r,
        be,
        (tag, bound),
        "add_scaled",
        std::slice::from_ref(&x),
        &[Out::Acc(y.clone())],
        |cp, a, out| cp.add_scaled(&mut out[0], a[0], -0.75),
        |g, a, out| g.add_scaled(B::all_mut(&mut out[0]), B::all(&a[0]), -0.75),
    );
    both(
        r,
        be,
        (tag, bound),
        "scale",
        &[],
        &[Out::Acc(y)],
        |cp, _, out| cp.scale(&mut out[0], 3.5),
        |g, _, out| g.scale(B::all_mut(&mut out[0]), 3.5),
    );
}

/// Fused attention at DNABERT size (2 × 12 × 512 × 64, and a small odd shape) through the
/// backend as the encoder calls it: the saved buffer sized by `attention_saved_len`, then
/// backward; the context and every gradient against the CPU's attention.
pub fn attention_at_size<B: Backend>(r: &mut Report, be: &B, (tag, bound): (&str, f32)) {
    for (batch, heads, seq, head_dim) in [(2, 3, 70, 16), (2, 12, 512, 64)] {
        let sh = Shape {
            batch,
            seq,
            heads,
            head_dim,
        };
        let n = batch * seq * heads * head_dim;
        let (q, k, v, dctx) = (random(n, 50), random(n, 51), random(n, 52), random(n, 53));
        let mut mask = vec![1f32; batch * seq];
        mask[seq - 9..seq].iter_mut().for_each(|m| *m = 0.0);
        let cpu = Cpu::new(crate::device::threads(None));
        let (mut ctx_c, mut probs_c) = (vec![0.0; n], vec![0.0; sh.probs_len()]);
        cpu.attention_forward(
            &mut ctx_c,
            &mut probs_c,
            &mut [],
            &q,
            &k,
            &v,
            &mask,
            &sh,
            (0.0, 0),
        );
        let (mut dq_c, mut dk_c, mut dv_c) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        cpu.attention_backward(
            &mut dq_c,
            &mut dk_c,
            &mut dv_c,
            &dctx,
            &q,
            &k,
            &v,
            &probs_c,
            &[],
            &sh,
        );
        let up = |x: &[f32]| be.upload(x);
        let (qb, kb, vb, dctx_b) = (up(&q), up(&k), up(&v), up(&dctx));
        let mut saved = be.upload(&vec![f32::NAN; be.attention_saved_len(&sh, false).max(1)]);
        let (mut ctx, mut dm) = (up(&vec![f32::NAN; n]), be.zeros(0));
        let saved_len = be.attention_saved_len(&sh, false);
        be.attention_forward(
            B::all_mut(&mut ctx),
            B::slice_mut(&mut saved, 0..saved_len),
            B::slice_mut(&mut dm, 0..0),
            B::all(&qb),
            B::all(&kb),
            B::all(&vb),
            &mask,
            &sh,
            (0.0, 0),
        );
        let (mut dq, mut dk, mut dv) = (be.zeros(n), be.zeros(n), be.zeros(n));
        be.attention_backward(
            B::all_mut(&mut dq),
            B::all_mut(&mut dk),
            B::all_mut(&mut dv),
            B::all(&dctx_b),
            B::all(&qb),
            B::all(&kb),
            B::all(&vb),
            B::slice(&saved, 0..saved_len),
            B::slice(&dm, 0..0),
            &sh,
        );
        let what =
            |t: &str| format!("attention {t} B {batch} H {heads} S {seq} D {head_dim} ({tag})");
        r.close(what("ctx"), &be.download(&ctx)[..n], &ctx_c, bound);
        r.close(what("dq"), &be.download(&dq)[..n], &dq_c, bound);
        r.close(what("dk"), &be.download(&dk)[..n], &dk_c, bound);
        r.close(what("dv"), &be.download(&dv)[..n], &dv_c, bound);
    }
}
