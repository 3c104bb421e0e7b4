//! Our CUDA kernels run on the CPU through `tests/cuda_emulator/` (each GPU thread a std::thread,
//! `__syncthreads` a barrier), compiled with the machine's C++ compiler, and held to the CPU
//! backend: CI has no GPU, and this is how the kernels' arithmetic, indexing and
//! synchronisation are checked before one is lent. Not checked here: speed, the host side of
//! `cuda/backend.rs`, cuBLAS.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dnabert::train::backend::Backend;
use dnabert::train::cpu::Cpu;
use dnabert::train::ops::attention::Shape;

/// Compiles `tests/cuda_emulator/{name}.cpp` with the kernel sources on the include path, or
/// returns `None` (after saying why) where there is no C++ compiler and CI did not ask for one.
fn build(name: &str, out: &Path) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = out.join(name);
    let status = Command::new("c++")
        .args(["-std=c++20", "-O2", "-pthread", "-o"])
        .arg(&exe)
        .arg("-I")
        .arg(root.join("src/cuda/kernels"))
        .arg("-I")
        .arg(root.join("tests/cuda_emulator"))
        .arg(root.join(format!("tests/cuda_emulator/{name}.cpp")))
        .status();
    match status {
        Ok(s) if s.success() => Some(exe),
        Ok(s) => panic!("c++ could not build the {name} emulation: {s}"),
        Err(e) if std::env::var_os("DNABERT_REQUIRE_ENGINES").is_none() => {
            eprintln!("SKIPPED: no C++ compiler ({e})");
            None
        }
        Err(e) => panic!("no C++ compiler (c++): {e}"),
    }
}

/// Runs the emulation with `input` on stdin; its stdout as floats.
fn run(exe: &Path, input: &[u8]) -> Vec<f32> {
    let mut child = Command::new(exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{} failed", exe.display());
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// Deterministic values in [-1, 1).
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
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = common::max_abs_diff(got, want);
    assert!(
        err <= 1e-4 * scale,
        "{what}: max error {err:e}, scale {scale:e}"
    );
    eprintln!("{what}: max error {:e} of scale", err / scale);
}

/// The fused attention kernels (forward, then dq and dk/dv backward) against the CPU
/// backend's attention, with padding, a sequence that is not a whole number of tiles, and the
/// largest head the kernels take.
#[test]
fn fused_attention_kernels_match_the_cpu_backend() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = build("fused_attention", dir.path()) else {
        return;
    };
    for (batch, heads, seq, head_dim) in [(2, 3, 70, 16), (1, 2, 33, 64)] {
        let sh = Shape {
            batch,
            seq,
            heads,
            head_dim,
        };
        let n = batch * seq * heads * head_dim;
        let (q, k, v, dctx) = (random(n, 1), random(n, 2), random(n, 3), random(n, 4));
        let mut mask = vec![1f32; batch * seq];
        mask[seq - 9..seq].iter_mut().for_each(|m| *m = 0.0); // the first row's padding

        let mut input: Vec<u8> = [batch, heads, seq, head_dim]
            .iter()
            .flat_map(|&x| (x as i32).to_le_bytes())
            .collect();
        for x in [&q, &k, &v, &dctx, &mask] {
            input.extend(x.iter().flat_map(|f| f.to_le_bytes()));
        }
        let out = run(&exe, &input);
        let rows = batch * heads * seq;
        let (ctx, rest) = out.split_at(n);
        let (saved, rest) = rest.split_at(rows + batch * seq);
        let (dq, rest) = rest.split_at(n);
        let (dk, dv) = rest.split_at(n);

        let cpu = Cpu::new(1);
        let (mut ctx_c, mut probs) = (vec![0.0; n], vec![0.0; sh.probs_len()]);
        let mut none: Vec<f32> = vec![];
        cpu.attention_forward(
            &mut ctx_c,
            &mut probs,
            &mut none,
            &q,
            &k,
            &v,
            &mask,
            &sh,
            (0.0, 0),
        );
        let (mut dq_c, mut dk_c, mut dv_c) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        cpu.attention_backward(
            &mut dq_c, &mut dk_c, &mut dv_c, &dctx, &q, &k, &v, &probs, &none, &sh,
        );
        let what = |t: &str| format!("{t} (B {batch}, H {heads}, S {seq}, D {head_dim})");
        close(&what("ctx"), ctx, &ctx_c);
        close(&what("dq"), dq, &dq_c);
        close(&what("dk"), dk, &dk_c);
        close(&what("dv"), dv, &dv_c);
        // The saved statistics: log Σⱼ exp(scoreᵢⱼ) over real keys, which is what turns the
        // probabilities back into scores; and the mask, as given.
        for r in [0, rows / 2, rows - 1] {
            let (b, i) = (r / (heads * seq), r % seq);
            let h = (r / seq) % heads;
            let c = heads * head_dim;
            let at = |x: &[f32], t: usize| -> Vec<f32> {
                x[(b * seq + t) * c + h * head_dim..][..head_dim].to_vec()
            };
            let qi = at(&q, i);
            let scale = 1.0 / (head_dim as f32).sqrt();
            let lse = (0..seq)
                .filter(|&j| mask[b * seq + j] > 0.0)
                .map(|j| {
                    let s: f32 = qi.iter().zip(at(&k, j)).map(|(x, y)| x * y).sum();
                    ((s * scale) as f64).exp()
                })
                .sum::<f64>()
                .ln();
            assert!(
                (saved[r] as f64 - lse).abs() <= 1e-4 * lse.abs().max(1.0),
                "{}: saved log-sum-exp {} vs {lse}",
                what("row {r}"),
                saved[r]
            );
        }
        assert_eq!(&saved[rows..], mask.as_slice());
    }
}
