//! Every CUDA kernel of ours run on the CPU and held to the CPU backend (or, for the pieces the
//! CPU backend does not have on their own, to a few lines of Rust): CI has no GPU, and this is
//! how the kernels' arithmetic, indexing and synchronisation are checked before one is lent.
//!
//! `tests/cuda_emulator/emulator.h` runs each GPU thread as a std::thread, `__syncthreads` as a
//! barrier, warp shuffles through a table; `cuda_emulator/mod.rs` reads every kernel's parameter
//! list from its source, writes a C++ dispatcher for all of them, compiles it once with the
//! machine's C++ compiler, and launches kernels through it with the grid shapes
//! `cuda/backend/` uses. Mutations of the kernels (a dropped scale, a wrong bias correction, a
//! shortened warp reduction) were each seen to fail here. Not
//! checked here: speed, the host side of `cuda/backend/`, cuBLAS; those need a GPU
//! (`gpu_parity.rs`).

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::common::{random, AttentionCase};
use crate::cuda_emulator::*;
use dnabert::cuda::launch as shapes;
use dnabert::train::backend::AdamW;
use dnabert::train::backend::Backend;
use dnabert::train::backend::Shape;
use dnabert::train::cpu::Cpu;

fn close(what: &str, got: &[f32], want: &[f32]) {
    crate::common::assert_within(1e-5, what, got, want)
}

/// Runs a kernel over a backend launch shape and returns its pointer arguments as floats.
fn run(kernel: &str, shape: ((usize, usize), usize), args: &[Arg]) -> Vec<Vec<f32>> {
    launch(kernel, shape.0, shape.1, args)
        .iter()
        .map(|b| as_f32(b))
        .collect()
}

#[test]
fn the_dispatcher_covers_every_kernel_once() {
    let all = kernels();
    let mut names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        count,
        "a kernel name is defined twice: {names:?}"
    );
    assert!(count >= 30, "{count} kernels");
    if emulator().is_none() {
        return;
    }
    // A name the dispatcher does not know is refused, not run.
    let mut bad = (7u32).to_le_bytes().to_vec();
    bad.extend(b"missing");
    bad.extend([1u32, 1, 1].iter().flat_map(|x| x.to_le_bytes()));
    let mut child = Command::new(emulator().unwrap())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bad).unwrap();
    assert!(!child.wait_with_output().unwrap().status.success());
}

#[test]
fn elementwise_kernels_match_the_cpu_backend() {
    if emulator().is_none() {
        return;
    }
    let cpu = Cpu::new(1);
    let n = 700; // three blocks of 256, the last one partial
    let (x, dy) = (random(n, 1), random(n, 2));

    let mut y = vec![0.0; n];
    cpu.gelu_forward(&mut y, &x);
    close(
        "gelu_forward",
        &run(
            "gelu_forward",
            grid(n),
            &[f32s(&[0.0; 700]), f32s(&x), size(n)],
        )[0],
        &y,
    );
    let acc = random(n, 3);
    let mut dx = acc.clone();
    cpu.gelu_backward(&mut dx, &dy, &x);
    close(
        "gelu_backward",
        &run(
            "gelu_backward",
            grid(n),
            &[f32s(&acc), f32s(&dy), f32s(&x), size(n)],
        )[0],
        &dx,
    );

    let c = 35;
    let b = random(c, 4);
    let biased: Vec<f32> = x.iter().enumerate().map(|(i, v)| v + b[i % c]).collect();
    let mut want = vec![0.0; n];
    cpu.gelu_forward(&mut want, &biased);
    let out = run(
        "bias_gelu_forward",
        grid(n),
        &[f32s(&[0.0; 700]), f32s(&x), f32s(&b), size(n), int(c)],
    );
    close("bias_gelu_forward y", &out[0], &want);
    close("bias_gelu_forward keeps x + b", &out[1], &biased);

    let mut t = x.clone();
    cpu.tanh_forward(&mut t);
    close(
        "tanh_forward",
        &run("tanh_forward", grid(n), &[f32s(&x), size(n)])[0],
        &t,
    );
    let mut d = dy.clone();
    cpu.tanh_backward(&mut d, &t);
    close(
        "tanh_backward",
        &run("tanh_backward", grid(n), &[f32s(&dy), f32s(&t), size(n)])[0],
        &d,
    );
    let mut r = x.clone();
    cpu.relu_forward(&mut r);
    close(
        "relu_forward",
        &run("relu_forward", grid(n), &[f32s(&x), size(n)])[0],
        &r,
    );
    let mut d = dy.clone();
    cpu.relu_backward(&mut d, &r);
    close(
        "relu_backward",
        &run("relu_backward", grid(n), &[f32s(&dy), f32s(&r), size(n)])[0],
        &d,
    );

    // Dropout: the same elements dropped as on the CPU, bit for bit (same hash).
    let (mut xd, mut mask) = (x.clone(), vec![0.0; n]);
    cpu.dropout_forward(&mut xd, &mut mask, 0.1, 42);
    let out = run(
        "dropout_forward",
        grid(n),
        &[f32s(&x), f32s(&[0.0; 700]), size(n), float(0.1), seed(42)],
    );
    assert_eq!(out[1], mask, "dropout masks");
    close("dropout_forward", &out[0], &xd);
    let mut d = dy.clone();
    cpu.dropout_backward(&mut d, &mask);
    close(
        "dropout_backward",
        &run(
            "dropout_backward",
            grid(n),
            &[f32s(&dy), f32s(&mask), size(n)],
        )[0],
        &d,
    );

    let mut y = dy.clone();
    cpu.add_scaled(&mut y, &x, -0.75);
    close(
        "add_scaled",
        &run(
            "add_scaled",
            grid(n),
            &[f32s(&dy), f32s(&x), float(-0.75), size(n)],
        )[0],
        &y,
    );
    let mut y = dy.clone();
    cpu.scale(&mut y, 3.5);
    close(
        "scale",
        &run("scale", grid(n), &[f32s(&dy), float(3.5), size(n)])[0],
        &y,
    );
    let prod: Vec<f32> = x.iter().zip(&dy).map(|(a, b)| a * b).collect();
    close(
        "mul_into",
        &run(
            "mul_into",
            grid(n),
            &[f32s(&[0.0; 700]), f32s(&x), f32s(&dy), size(n)],
        )[0],
        &prod,
    );

    // The linear layer's bias pieces, which the CPU backend does inside linear_*.
    let (tr, c) = (20, 35);
    let m = &x[..tr * c];
    let want: Vec<f32> = m.iter().enumerate().map(|(i, v)| v + b[i % c]).collect();
    close(
        "add_bias_rows",
        &run(
            "add_bias_rows",
            grid(tr * c),
            &[f32s(m), f32s(&b), size(tr * c), int(c)],
        )[0],
        &want,
    );
    // The bias gradient: column sums in two passes; more rows than one chunk.
    let tr = 70;
    let m = &x[..tr * 10];
    let want: Vec<f32> = (0..10)
        .map(|j| b[j] + (0..tr).map(|r| m[r * 10 + j]).sum::<f32>())
        .collect();
    close(
        "column_sums_partial + column_sums_finish",
        &column_sums(BlockOrder::Forward, &b[..10], m, tr, 10),
        &want,
    );

    // Σ x² over block partials, added on the host.
    let got = sum_squares(BlockOrder::Forward, &x);
    let want = cpu.sum_squares(&x);
    assert!(
        (got - want).abs() <= 1e-5 * want,
        "sum_squares {got} vs {want}"
    );

    // Row gather and scatter-add (the MLM head's masked rows), repeats included.
    let src = random(9 * c, 5);
    let idx = [4usize, 0, 8, 4];
    let idx32: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
    let mut g = vec![0.0; idx.len() * c];
    cpu.gather_rows(&mut g, &src, &idx, c);
    close(
        "gather_rows",
        &run(
            "gather_rows",
            rows(idx.len(), c),
            &[
                f32s(&vec![0.0; idx.len() * c]),
                f32s(&src),
                u32s(&idx32),
                int(c),
            ],
        )[0],
        &g,
    );
    let mut s = src.clone();
    cpu.scatter_add_rows(&mut s, &g, &idx, c);
    close(
        "scatter_add_rows",
        &scatter_add(BlockOrder::Forward, &src, &g, &idx, c),
        &s,
    );
}

// The host sides of the backend's reductions (`cuda/backend/`), each a few launches.

/// `acc[j] + Σ_r a[r, j]` over `t` rows of `c`: column_sums_partial, then column_sums_finish.
fn column_sums(order: BlockOrder, acc: &[f32], a: &[f32], t: usize, c: usize) -> Vec<f32> {
    let p = shapes::chunks(t);
    let partial = &launch_in(
        order,
        "column_sums_partial",
        shapes::column_chunks(t, c).grid,
        shapes::BLOCK,
        &[
            zeros("float", p * c, 4),
            f32s(a),
            int(t),
            int(c),
            int(shapes::CHUNK_ROWS),
        ],
    )[0];
    finish(order, acc, &as_f32(partial), t, c)
}

/// column_sums_finish: `acc` plus the chunks' partials.
fn finish(order: BlockOrder, acc: &[f32], partial: &[f32], t: usize, c: usize) -> Vec<f32> {
    let (g, threads) = grid(c);
    as_f32(
        &launch_in(
            order,
            "column_sums_finish",
            g,
            threads,
            &[f32s(acc), f32s(partial), int(shapes::chunks(t)), int(c)],
        )[0],
    )
}

/// The block partials of sum_squares, added in order in f64.
fn sum_squares(order: BlockOrder, x: &[f32]) -> f64 {
    let l = shapes::sum_squares();
    let out = launch_in(
        order,
        "sum_squares",
        l.grid,
        l.block,
        &[zeros("double", l.grid.0, 8), f32s(x), size(x.len())],
    );
    out[0]
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .sum()
}

/// `dst[rows[i]] += src[i]`, the rows grouped by target as the backend groups them.
fn scatter_add(order: BlockOrder, dst: &[f32], src: &[f32], rows: &[usize], c: usize) -> Vec<f32> {
    let g = shapes::group_rows(rows);
    let ((blocks, _), threads) = self::rows(g.targets.len(), c);
    as_f32(
        &launch_in(
            order,
            "scatter_add_rows",
            (blocks, 1),
            threads,
            &[
                f32s(dst),
                f32s(src),
                u32s(&g.targets),
                u32s(&g.offsets),
                u32s(&g.order),
                int(c),
            ],
        )[0],
    )
}

/// LayerNorm's backward: dx by rows, then dw and db through the column passes; `acc` holds
/// what each gradient accumulates onto.
#[allow(clippy::too_many_arguments)]
fn layernorm_backward(
    order: BlockOrder,
    acc: [&[f32]; 3],
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    mean: &[f32],
    rstd: &[f32],
    c: usize,
) -> [Vec<f32>; 3] {
    let t = x.len() / c;
    let ((blocks, _), threads) = rows(t, c);
    let dx = launch_in(
        order,
        "layernorm_backward",
        (blocks, 1),
        threads,
        &[
            f32s(acc[0]),
            f32s(dy),
            f32s(x),
            f32s(w),
            f32s(mean),
            f32s(rstd),
            int(c),
        ],
    );
    let p = shapes::chunks(t);
    let parts = launch_in(
        order,
        "layernorm_params_backward",
        shapes::column_chunks(t, c).grid,
        shapes::BLOCK,
        &[
            zeros("float", p * c, 4),
            zeros("float", p * c, 4),
            f32s(dy),
            f32s(x),
            f32s(mean),
            f32s(rstd),
            int(t),
            int(c),
            int(shapes::CHUNK_ROWS),
        ],
    );
    [
        as_f32(&dx[0]),
        finish(order, acc[1], &as_f32(&parts[0]), t, c),
        finish(order, acc[2], &as_f32(&parts[1]), t, c),
    ]
}

/// The embeddings' backward: word rows scattered by id, positions by their kernel, the token
/// type by column sums; `acc` holds what each gradient accumulates onto.
fn embedding_backward(
    order: BlockOrder,
    acc: [&[f32]; 3],
    dout: &[f32],
    ids: &[u32],
    s: usize,
    c: usize,
) -> [Vec<f32>; 3] {
    let t = ids.len();
    let rows_of: Vec<usize> = ids.iter().map(|&i| i as usize).collect();
    let ((blocks, _), threads) = rows(s, c);
    let dpos = launch_in(
        order,
        "embedding_position_backward",
        (blocks, 1),
        threads,
        &[f32s(acc[1]), f32s(dout), int(t / s), int(s), int(c)],
    );
    [
        scatter_add(order, acc[0], dout, &rows_of, c),
        as_f32(&dpos[0]),
        column_sums(order, acc[2], dout, t, c),
    ]
}

/// What the reductions return, run with the blocks in grid order and then reversed: a GPU
/// schedules blocks in any order, and the backward pass must give the same bits whichever it
/// picks (`pretrain --resume` on a GPU equals an uninterrupted run only then). With float
/// atomics across blocks, as these kernels had before, the two orders differed in the last
/// bits.
#[test]
fn reductions_give_the_same_bits_in_any_block_order() {
    if emulator().is_none() {
        return;
    }
    let (t, c) = (200, 96); // seven chunks of rows, the last partial
    let (x, w, dy) = (random(t * c, 31), random(c, 32), random(t * c, 33));
    let (mean, rstd): (Vec<f32>, Vec<f32>) = (
        random(t, 34),
        random(t, 35).iter().map(|v| 1.0 + v.abs()).collect(),
    );
    let acc = (random(t * c, 36), random(c, 37), random(c, 38));
    let ids: Vec<u32> = (0..t as u32).map(|i| (i * 7 + 3) % 13).collect();
    let (vocab_acc, pos_acc) = (random(13 * c, 39), random(20 * c, 40));
    let each = |order| {
        let [dx, dw, db] = layernorm_backward(
            order,
            [&acc.0, &acc.1, &acc.2],
            &dy,
            &x,
            &w,
            &mean,
            &rstd,
            c,
        );
        let [dword, dpos, dtt] =
            embedding_backward(order, [&vocab_acc, &pos_acc, &acc.2], &dy, &ids, 20, c);
        (
            [
                dx,
                dw,
                db,
                dword,
                dpos,
                dtt,
                column_sums(order, &acc.1, &dy, t, c),
            ],
            sum_squares(order, &dy),
        )
    };
    let (forward, ss_forward) = each(BlockOrder::Forward);
    let (reverse, ss_reverse) = each(BlockOrder::Reverse);
    let names = [
        "layernorm dx",
        "layernorm dw",
        "layernorm db",
        "embedding dword",
        "embedding dpos",
        "embedding dtok_type",
        "column sums",
    ];
    for ((name, f), r) in names.iter().zip(&forward).zip(&reverse) {
        let (fb, rb): (Vec<u32>, Vec<u32>) = (
            f.iter().map(|v| v.to_bits()).collect(),
            r.iter().map(|v| v.to_bits()).collect(),
        );
        assert!(
            fb == rb,
            "{name}: the bits depend on the order the blocks ran in"
        );
    }
    // (f64 sums of a few hundred float partials come out exact in any order, so this one
    // could pass even with atomics; the kernel's fixed partials make it hold at any length.)
    assert_eq!(
        ss_forward.to_bits(),
        ss_reverse.to_bits(),
        "sum_squares depends on the block order"
    );
}

/// Round to nearest even, written out independently of the kernel's bit trick.
fn bf16(x: f32) -> u16 {
    let (lo, hi) = ((x.to_bits() >> 16) as u16, (x.to_bits() >> 16) as u16 + 1);
    let (a, b) = (
        f32::from_bits((lo as u32) << 16),
        f32::from_bits((hi as u32) << 16),
    );
    let (da, db) = ((x - a).abs(), (b - x).abs());
    if da < db || (da == db && lo % 2 == 0) {
        lo
    } else {
        hi
    }
}

#[test]
fn casts_and_adamw_match_the_cpu_backend() {
    if emulator().is_none() {
        return;
    }
    let n = 600;
    let mut x = random(n, 6);
    x[0] = 1.0 + f32::EPSILON * 64.0; // exactly halfway between two bf16 values: ties to even
    x[1] = -3.0e-39; // subnormal
    let out = launch(
        "cast_f32_to_bf16",
        grid(n).0,
        grid(n).1,
        &[zeros("bf16_t", n, 2), f32s(&x), size(n)],
    );
    let got: Vec<u16> = out[0]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let want: Vec<u16> = x.iter().map(|&v| bf16(v)).collect();
    assert_eq!(got, want, "cast_f32_to_bf16");
    let back = launch(
        "cast_bf16_to_f32",
        grid(n).0,
        grid(n).1,
        &[
            f32s(&vec![0.0; n]),
            Arg::Buf("bf16_t", out[0].clone()),
            size(n),
        ],
    );
    let want: Vec<f32> = want
        .iter()
        .map(|&h| f32::from_bits((h as u32) << 16))
        .collect();
    assert_eq!(as_f32(&back[0]), want, "cast_bf16_to_f32");

    let cpu = Cpu::new(1);
    let opt = AdamW {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-6,
        weight_decay: 0.01,
    };
    let (p, g) = (random(n, 7), random(n, 8));
    let (m, v) = (
        random(n, 9),
        random(n, 10).iter().map(|x| x.abs()).collect::<Vec<_>>(),
    );
    for (step, decay) in [(1u64, true), (7, false)] {
        let (mut pc, mut mc, mut vc) = (p.clone(), m.clone(), v.clone());
        cpu.adamw(&opt, &mut pc, &g, &mut mc, &mut vc, step, decay);
        let (bc1, bc2) = (
            1.0 - opt.beta1.powi(step as i32),
            1.0 - opt.beta2.powi(step as i32),
        );
        let wd = if decay { opt.weight_decay } else { 0.0 };
        let out = launch(
            "adamw_update",
            grid(n).0,
            grid(n).1,
            &[
                f32s(&p),
                f32s(&g),
                f32s(&m),
                f32s(&v),
                zeros("bf16_t", n, 2),
                size(n),
                float(opt.lr),
                float(opt.beta1),
                float(opt.beta2),
                float(opt.eps),
                float(wd),
                float(bc1),
                float(bc2),
            ],
        );
        close(&format!("adamw p (step {step})"), &as_f32(&out[0]), &pc);
        close(&format!("adamw m (step {step})"), &as_f32(&out[2]), &mc);
        close(&format!("adamw v (step {step})"), &as_f32(&out[3]), &vc);
        let copy: Vec<u16> = out[4]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let want: Vec<u16> = as_f32(&out[0]).iter().map(|&w| bf16(w)).collect();
        assert_eq!(copy, want, "adamw's bf16 copy of the updated weights");
    }
}

#[test]
fn layernorm_and_embedding_kernels_match_the_cpu_backend() {
    if emulator().is_none() {
        return;
    }
    let cpu = Cpu::new(1);
    for (t, c) in [(13, 48), (3, 1100)] {
        // 1100 channels: more than one pass of a 1024-thread block over each row.
        let (x, w, b, dy) = (
            random(t * c, 11),
            random(c, 12),
            random(c, 13),
            random(t * c, 14),
        );
        let (mut y, mut mean, mut rstd) = (vec![0.0; t * c], vec![0.0; t], vec![0.0; t]);
        cpu.layernorm_forward(&mut y, &mut mean, &mut rstd, &x, &w, &b, c, 1e-12);
        let out = run(
            "layernorm_forward",
            rows(t, c),
            &[
                f32s(&vec![0.0; t * c]),
                f32s(&vec![0.0; t]),
                f32s(&vec![0.0; t]),
                f32s(&x),
                f32s(&w),
                f32s(&b),
                int(c),
                float(1e-12),
            ],
        );
        close(&format!("layernorm_forward y (C {c})"), &out[0], &y);
        close(&format!("layernorm_forward mean (C {c})"), &out[1], &mean);
        close(&format!("layernorm_forward rstd (C {c})"), &out[2], &rstd);
        let (acc_x, acc_w, acc_b) = (random(t * c, 15), random(c, 16), random(c, 17));
        let (mut dx, mut dw, mut db) = (acc_x.clone(), acc_w.clone(), acc_b.clone());
        cpu.layernorm_backward(&mut dx, &mut dw, &mut db, &dy, &x, &w, &mean, &rstd, c);
        let out = layernorm_backward(
            BlockOrder::Forward,
            [&acc_x, &acc_w, &acc_b],
            &dy,
            &x,
            &w,
            &mean,
            &rstd,
            c,
        );
        close(&format!("layernorm_backward dx (C {c})"), &out[0], &dx);
        close(&format!("layernorm_backward dw (C {c})"), &out[1], &dw);
        close(&format!("layernorm_backward db (C {c})"), &out[2], &db);
    }

    let (batch, s, c, vocab) = (2, 11, 40, 9);
    let ids: Vec<u32> = (0..(batch * s) as u32)
        .map(|i| (i * 5 + 1) % vocab as u32)
        .collect();
    let (word, pos, tt) = (random(vocab * c, 18), random(s * c, 19), random(c, 20));
    let t = batch * s;
    let mut out_c = vec![0.0; t * c];
    cpu.embedding_forward(&mut out_c, &ids, &word, &pos, &tt, s, c);
    let out = run(
        "embedding_forward",
        rows(t, c),
        &[
            f32s(&vec![0.0; t * c]),
            u32s(&ids),
            f32s(&word),
            f32s(&pos),
            f32s(&tt),
            int(s),
            int(c),
        ],
    );
    close("embedding_forward", &out[0], &out_c);
    let dout = random(t * c, 21);
    let (mut dw, mut dp, mut dt) = (random(vocab * c, 22), random(s * c, 23), random(c, 24));
    let (dw0, dp0, dt0) = (dw.clone(), dp.clone(), dt.clone());
    cpu.embedding_backward(&mut dw, &mut dp, &mut dt, &dout, &ids, s, c);
    let out = embedding_backward(BlockOrder::Forward, [&dw0, &dp0, &dt0], &dout, &ids, s, c);
    close("embedding_backward dword", &out[0], &dw);
    close("embedding_backward dpos", &out[1], &dp);
    close("embedding_backward dtok_type", &out[2], &dt);
}

#[test]
fn attention_softmax_and_cross_entropy_kernels_match_the_cpu_backend() {
    if emulator().is_none() {
        return;
    }
    let cpu = Cpu::new(1);
    let (batch, heads, seq, head_dim) = (2, 3, 40, 8);
    let sh = Shape {
        batch,
        seq,
        heads,
        head_dim,
    };
    let (c, t) = (heads * head_dim, batch * seq);
    let (q, k, v) = (random(t * c, 25), random(t * c, 26), random(t * c, 27));
    let mut mask = vec![1f32; t];
    mask[seq - 7..seq].iter_mut().for_each(|m| *m = 0.0);
    // The scores Q Kᵀ that cuBLAS would hand the softmax, at (b·H + h)·S² + i·S + j.
    let mut scores = vec![0.0; sh.probs_len()];
    for b in 0..batch {
        for h in 0..heads {
            for i in 0..seq {
                for j in 0..seq {
                    let (qi, kj) = (
                        (b * seq + i) * c + h * head_dim,
                        (b * seq + j) * c + h * head_dim,
                    );
                    scores[((b * heads + h) * seq + i) * seq + j] =
                        (0..head_dim).map(|d| q[qi + d] * k[kj + d]).sum();
                }
            }
        }
    }
    let scale = 1.0 / (head_dim as f32).sqrt();
    let rows_n = batch * heads * seq;
    for p in [0.0f32, 0.1] {
        let drop_len = if p > 0.0 { sh.probs_len() } else { 0 };
        let (_, probs, dm) = crate::common::cpu_attention(&sh, &q, &k, &v, &mask, (p, 7));
        let drop_arg = |n: usize| {
            if n == 0 {
                null("float")
            } else {
                f32s(&vec![0.0; n])
            }
        };
        let out = run(
            "attention_softmax_forward",
            rows(rows_n, seq),
            &[
                f32s(&scores),
                drop_arg(drop_len),
                drop_arg(drop_len),
                f32s(&scores),
                f32s(&mask),
                int(heads),
                int(seq),
                float(scale),
                float(p),
                seed(7),
            ],
        );
        close(
            &format!("attention_softmax_forward probs p={p}"),
            &out[0],
            &probs,
        );
        if p > 0.0 {
            assert_eq!(out[2], dm, "attention dropout masks");
            let weights: Vec<f32> = probs.iter().zip(&dm).map(|(a, b)| a * b).collect();
            close("attention_softmax_forward weights", &out[1], &weights);
        }
        // Backward: the gradient of what V was multiplied by becomes the scores' gradient,
        // dS = scale · P ⊙ (dP − Σⱼ dPⱼ Pⱼ) with dP = dW ⊙ M.
        let dweights = random(sh.probs_len(), 28);
        let mut want = vec![0.0; sh.probs_len()];
        for r in 0..rows_n {
            let at = r * seq..(r + 1) * seq;
            let dp: Vec<f32> = at
                .clone()
                .map(|i| {
                    if p > 0.0 {
                        dweights[i] * dm[i]
                    } else {
                        dweights[i]
                    }
                })
                .collect();
            let dot: f32 = dp.iter().zip(&probs[at.clone()]).map(|(a, b)| a * b).sum();
            for (j, i) in at.enumerate() {
                want[i] = scale * probs[i] * (dp[j] - dot);
            }
        }
        let out = run(
            "attention_softmax_backward",
            rows(rows_n, seq),
            &[
                f32s(&dweights),
                f32s(&probs),
                if p > 0.0 { f32s(&dm) } else { null("float") },
                int(seq),
                float(scale),
            ],
        );
        close(&format!("attention_softmax_backward p={p}"), &out[0], &want);
    }

    let (n_rows, vocab) = (13, 69);
    let logits = random(n_rows * vocab, 29);
    let labels: Vec<i64> = (0..n_rows as i64)
        .map(|r| {
            if r % 4 == 3 {
                -100
            } else {
                (r * 5) % vocab as i64
            }
        })
        .collect();
    let count = labels.iter().filter(|&&l| l >= 0).count();
    let mut d_cpu = vec![0.0; n_rows * vocab];
    let loss = cpu.cross_entropy(&mut d_cpu, &logits, &labels, vocab);
    let out = run(
        "cross_entropy_forward_backward",
        rows(n_rows, vocab),
        &[
            f32s(&vec![0.0; n_rows * vocab]),
            f32s(&vec![0.0; n_rows]),
            f32s(&logits),
            i64s(&labels),
            int(vocab),
            float(1.0 / count as f32),
        ],
    );
    close("cross_entropy dlogits", &out[0], &d_cpu);
    let got = (out[1].iter().map(|&l| l as f64).sum::<f64>() / count as f64) as f32;
    assert!(
        (got - loss).abs() <= 1e-5 * loss,
        "cross_entropy loss {got} vs {loss}"
    );
}

/// The fused attention kernels (forward, then dq and dk/dv backward), launched as
/// `cuda/backend/` launches them, against the CPU backend's attention: padding, a sequence
/// that is not a whole number of tiles, and the largest head the kernels take.
#[test]
fn fused_attention_kernels_match_the_cpu_backend() {
    if emulator().is_none() {
        return;
    }
    for (batch, heads, seq, head_dim) in [(2, 3, 70, 16), (1, 2, 33, 64)] {
        let AttentionCase {
            sh: _,
            q,
            k,
            v,
            dctx,
            mask,
            ctx: ctx_c,
            probs,
            dq: dq_c,
            dk: dk_c,
            dv: dv_c,
        } = AttentionCase::new(batch, heads, seq, head_dim, 1);
        let n = q.len();

        // FUSED_ROWS = 64 query or key rows per block, one block row per (batch row, head).
        let shape = ((seq.div_ceil(64), batch * heads), 64);
        let scale = 1.0 / (head_dim as f32).sqrt();
        let rows_n = batch * heads * seq;
        let (h, s, d) = (int(heads), int(seq), int(head_dim));
        let fwd = run(
            "attention_fused_forward",
            shape,
            &[
                f32s(&vec![0.0; n]),
                f32s(&vec![0.0; rows_n]),
                f32s(&vec![0.0; batch * seq]),
                f32s(&q),
                f32s(&k),
                f32s(&v),
                f32s(&mask),
                int(heads),
                int(seq),
                int(head_dim),
                float(scale),
            ],
        );
        let (ctx, lse, saved_mask) = (&fwd[0], &fwd[1], &fwd[2]);
        let dqr = run(
            "attention_fused_dq_backward",
            shape,
            &[
                f32s(&vec![0.0; n]),
                f32s(&vec![0.0; rows_n]),
                f32s(&dctx),
                f32s(&q),
                f32s(&k),
                f32s(&v),
                f32s(lse),
                f32s(saved_mask),
                int(heads),
                int(seq),
                int(head_dim),
                float(scale),
            ],
        );
        let (dq, delta) = (&dqr[0], &dqr[1]);
        let dkv = run(
            "attention_fused_dkdv_backward",
            shape,
            &[
                f32s(&vec![0.0; n]),
                f32s(&vec![0.0; n]),
                f32s(&dctx),
                f32s(&q),
                f32s(&k),
                f32s(&v),
                f32s(lse),
                f32s(delta),
                f32s(saved_mask),
                h,
                s,
                d,
                float(scale),
            ],
        );
        let what = |t: &str| format!("fused {t} (B {batch}, H {heads}, S {seq}, D {head_dim})");
        close(&what("ctx"), ctx, &ctx_c);
        close(&what("dq"), dq, &dq_c);
        close(&what("dk"), &dkv[0], &dk_c);
        close(&what("dv"), &dkv[1], &dv_c);
        assert_eq!(saved_mask, &mask, "the saved mask");
        // δᵢ = dctxᵢ · ctxᵢ, and the log-sum-exp turns the probabilities back into scores.
        let c = heads * head_dim;
        for r in 0..rows_n {
            let (b, hh, i) = (r / (heads * seq), (r / seq) % heads, r % seq);
            let at = (b * seq + i) * c + hh * head_dim;
            let want: f32 = (0..head_dim).map(|e| dctx[at + e] * ctx_c[at + e]).sum();
            assert!(
                (delta[r] - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{}: delta {} vs {want}",
                what(&format!("row {r}")),
                delta[r]
            );
            let j = (0..seq).find(|&j| mask[b * seq + j] > 0.0).unwrap();
            let kj = (b * seq + j) * c + hh * head_dim;
            let score: f32 = (0..head_dim).map(|e| q[at + e] * k[kj + e]).sum::<f32>() * scale;
            let p = probs[r * seq + j];
            assert!(
                ((score - lse[r]).exp() - p).abs() <= 1e-5,
                "{}: exp(s − lse) vs P",
                what(&format!("row {r}"))
            );
        }
    }
}
