//! Helpers shared by the integration tests: fixture paths, running `embed`, reading its outputs.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dnabert::embed::{self, EmbedOptions, Pooling};

pub mod standin;

/// Largest absolute difference allowed against Hugging Face's outputs.
pub const TOLERANCE: f32 = 1e-4;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

pub fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

pub fn options(model: &Path, input: &Path, output: &Path) -> EmbedOptions {
    EmbedOptions {
        model: model.to_owned(),
        input: input.to_owned(),
        output: output.to_owned(),
        pooling: Pooling::None,
        per_nucleotide: false,
        window_tokens: None,
        overlap_tokens: Some(64),
        batch_size: 3,
        threads: 2,
        threads_per_window: 1,
        progress: false,
        compute: Default::default(),
        select: None,
    }
}

/// A 2-D float32 `.npy` file: (rows, cols, data).
pub fn read_npy(path: &Path) -> (usize, usize, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let dims: Vec<usize> = shape
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data: Vec<f32> = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        data.len(),
        dims[0] * dims[1],
        "npy body length does not match its header"
    );
    (dims[0], dims[1], data)
}

/// One `.tsv` line: (seq_id, start, end, row).
pub type IndexLine = (String, usize, usize, usize);

/// The `.tsv` index, after checking the header.
pub fn read_tsv(path: &Path) -> Vec<IndexLine> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("seq_id\tstart\tend\trow"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

/// Expected arrays from `tests/make_fixtures.py`, by key ("tokens/long", …): (rows, cols, data).
pub fn expected(file: &str) -> HashMap<String, (usize, usize, Vec<f32>)> {
    let bytes = std::fs::read(fixtures().join(file)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            let data = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (name, (v.shape()[0], v.shape()[1], data))
        })
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Runs embed and returns (tsv rows, npy rows, cols, data).
pub fn run_embed(opts: &EmbedOptions) -> (Vec<IndexLine>, usize, usize, Vec<f32>) {
    let summary = embed::run(opts).unwrap();
    let (rows, cols, data) = read_npy(&summary.npy);
    assert_eq!(rows as u64, summary.rows);
    (read_tsv(&summary.tsv), rows, cols, data)
}

/// Deterministic values in [-1, 1) (xorshift), for the kernel tests' random inputs: the same
/// generator `cuda-check --run` draws its inputs from.
pub use dnabert::cuda::selftest::random;

/// One attention case without dropout, with the CPU backend's answers: random q, k, v and
/// dctx (seeds from `seed`), the last 9 keys of the first batch row padded.
pub struct AttentionCase {
    pub sh: dnabert::train::backend::Shape,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub dctx: Vec<f32>,
    pub mask: Vec<f32>,
    pub ctx: Vec<f32>,
    pub probs: Vec<f32>,
    pub dq: Vec<f32>,
    pub dk: Vec<f32>,
    pub dv: Vec<f32>,
}

impl AttentionCase {
    pub fn new(batch: usize, heads: usize, seq: usize, head_dim: usize, seed: u64) -> Self {
        use dnabert::train::backend::Backend;
        let sh = dnabert::train::backend::Shape {
            batch,
            seq,
            heads,
            head_dim,
        };
        let n = batch * seq * heads * head_dim;
        let r = |i| random(n, seed + i);
        let (q, k, v, dctx) = (r(0), r(1), r(2), r(3));
        let mut mask = vec![1f32; batch * seq];
        mask[seq - 9..seq].iter_mut().for_each(|m| *m = 0.0);
        let (ctx, probs, none) = cpu_attention(&sh, &q, &k, &v, &mask, (0.0, 0));
        let cpu = dnabert::train::cpu::Cpu::new(1);
        let (mut dq, mut dk, mut dv) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        cpu.attention_backward(
            &mut dq, &mut dk, &mut dv, &dctx, &q, &k, &v, &probs, &none, &sh,
        );
        Self {
            sh,
            q,
            k,
            v,
            dctx,
            mask,
            ctx,
            probs,
            dq,
            dk,
            dv,
        }
    }
}

/// The CPU backend's attention forward: (ctx, probabilities, dropout factors — empty
/// without dropout).
pub fn cpu_attention(
    sh: &dnabert::train::backend::Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: &[f32],
    dropout: (f32, u64),
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    use dnabert::train::backend::Backend;
    let drop_len = if dropout.0 > 0.0 { sh.probs_len() } else { 0 };
    let (mut ctx, mut probs, mut dm) = (
        vec![0.0; q.len()],
        vec![0.0; sh.probs_len()],
        vec![0.0; drop_len],
    );
    dnabert::train::cpu::Cpu::new(1)
        .attention_forward(&mut ctx, &mut probs, &mut dm, q, k, v, mask, sh, dropout);
    (ctx, probs, dm)
}

/// Max abs error ≤ `rel` of the expected values' largest magnitude.
pub fn assert_within(rel: f32, what: &str, got: &[f32], want: &[f32]) {
    assert_close(rel, 0.0, what, got, want);
}

/// Max abs error ≤ `rel` × the expected values' largest magnitude + `abs`; returns the error
/// relative to that magnitude.
pub fn assert_close(rel: f32, abs: f32, what: &str, got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
    let err = max_abs_diff(got, want);
    assert!(
        err <= rel * scale + abs,
        "{what}: max error {err:e}, scale {scale:e}"
    );
    err / scale
}

/// `dnabert pretrain` on the workflows' test config and the bundled mini genome, into `out`;
/// the caller adds its flags.
pub fn bundled_pretrain(out: &Path) -> std::process::Command {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dnabert"));
    cmd.arg("pretrain")
        .arg("--config")
        .arg(repo.join("workflows/assets/pretrain-test.yaml"))
        .arg("--fasta")
        .arg(repo.join("tests/fixtures/mini-genome/genome.fa"))
        .arg("--output")
        .arg(out);
    cmd
}
