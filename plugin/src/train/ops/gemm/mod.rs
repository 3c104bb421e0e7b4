//! The matrix products of the CPU backend and of the native inference engine:
//! `C = init + A · B` with A read in place through its strides and B packed into panels of
//! [`NR`] columns.
//!
//! On x86-64 CPUs with AVX-512 the products run on our kernel (`avx512.rs`); elsewhere, or with
//! `DNABERT_CPU_KERNELS=portable`, on `matrixmultiply`. Both sum each element over k in the same
//! order whatever the thread count, so results do not depend on it.
//!
//! Inference packs each weight once ([`PackedB`], at load); the training backend packs B on
//! every call ([`gemm_strided`]), which costs one pass over B beside 2·m passes of arithmetic.
//! `embed`'s reduced precisions have kernels of their own: `bf16.rs` (AVX512-BF16), and
//! `integer.rs` with its two schemes, `int16.rs` and `int8.rs` (AVX512-VNNI).

#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "x86_64")]
pub mod bf16;
#[cfg(not(target_arch = "x86_64"))]
#[path = "bf16_unavailable.rs"]
pub mod bf16;
#[cfg(target_arch = "x86_64")]
pub mod int16;
#[cfg(not(target_arch = "x86_64"))]
#[path = "int16_unavailable.rs"]
pub mod int16;
#[cfg(target_arch = "x86_64")]
pub mod int8;
#[cfg(not(target_arch = "x86_64"))]
#[path = "int8_unavailable.rs"]
pub mod int8;
#[cfg(target_arch = "x86_64")]
mod integer;

use std::cell::RefCell;
use std::sync::OnceLock;

/// Columns per packed panel (two AVX-512 vectors).
pub const NR: usize = 32;
/// k per block: a panel's block (KC × NR floats, 32 KiB) stays in L1 while the tiles of A
/// stream past it.
const KC: usize = 256;
/// Rows of A per block: a block's packed tiles (MC × KC floats, 768 KiB) stay in L2 while the
/// panels sweep them. The weight gradients' products (m = 3072 output features) spilled to L3.
const MC: usize = 768;
/// Products this few panels wide read A in place (see `panels_avx512`).
const IN_PLACE_PANELS: usize = 2;

/// Which kernels the products run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    Avx512,
    /// `matrixmultiply`, on every CPU.
    Portable,
}

/// The kernels of this CPU (AVX-512 when present), unless `DNABERT_CPU_KERNELS=portable`.
pub fn kernels() -> Kernels {
    static K: OnceLock<Kernels> = OnceLock::new();
    *K.get_or_init(|| {
        let forced = std::env::var("DNABERT_CPU_KERNELS").ok();
        if forced.as_deref() == Some("portable") {
            return Kernels::Portable;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Kernels::Avx512;
        }
        Kernels::Portable
    })
}

/// How C starts.
#[derive(Clone, Copy)]
pub enum Start<'a> {
    /// `C = A·B`
    Zero,
    /// `C += A·B`
    Accumulate,
    /// `C = bias + A·B`, the bias one value per column.
    Bias(&'a [f32]),
}

/// B (k × n) laid out for the kernels: for AVX-512, panels of `NR` columns, each k × NR floats,
/// zero past the last column; for the portable kernels, B row-major.
pub struct PackedB {
    pub k: usize,
    pub n: usize,
    kernels: Kernels,
    data: Vec<f32>,
    /// Packed for one product (training's): the buffer goes back to the thread's spare at drop.
    recycle: bool,
}

impl Drop for PackedB {
    fn drop(&mut self) {
        if self.recycle {
            // The larger of the two buffers is kept: the next product's B fits without growth.
            // (At a thread's exit the spare may be gone already: the buffer is then freed.)
            let data = std::mem::take(&mut self.data);
            let _ = SPARE_B.try_with(|spare| {
                let old = spare.take();
                spare.set(if old.capacity() >= data.capacity() {
                    old
                } else {
                    data
                });
            });
        }
    }
}

impl PackedB {
    /// Packs B given by its strides: a weight `W` (n × k, as `torch.nn.Linear` stores it) used
    /// as `Wᵀ` is `(1, k)`.
    pub fn new(k: usize, n: usize, b: &[f32], strides: (usize, usize)) -> Self {
        Self::for_kernels(kernels(), k, n, b, strides)
    }

    /// [`PackedB::new`] with the panels packed on up to `threads` threads, into this thread's
    /// spare buffer (`SPARE_B`, given back at drop): for B packed on every product, as
    /// training and [`gemm_strided`] do.
    pub fn new_threaded(
        k: usize,
        n: usize,
        b: &[f32],
        strides: (usize, usize),
        threads: usize,
    ) -> Self {
        let mut p = PackedB {
            k,
            n,
            kernels: kernels(),
            data: SPARE_B.take(),
            recycle: true,
        };
        if p.kernels != Kernels::Avx512 || threads <= 1 || k * n < PAR_MIN / 8 {
            p.repack(k, n, b, strides);
            return p;
        }
        assert!(k == 0 || n == 0 || b.len() > (k - 1) * strides.0 + (n - 1) * strides.1);
        let panels = n.div_ceil(NR);
        // Every element is written by pack_panels: a reused buffer is not cleared first.
        p.data.resize(panels * k * NR, 0.0);
        let per = panels.div_ceil(threads);
        rayon::scope(|s| {
            for (g, chunk) in p.data.chunks_mut(per * k * NR).enumerate() {
                s.spawn(move |_| pack_panels(chunk, k, n, b, strides, g * per));
            }
        });
        p
    }

    /// Packed for the given kernels (AVX-512 only where the CPU has it).
    pub fn for_kernels(
        kernels: Kernels,
        k: usize,
        n: usize,
        b: &[f32],
        strides: (usize, usize),
    ) -> Self {
        let mut p = PackedB {
            k,
            n,
            kernels,
            data: vec![],
            recycle: false,
        };
        p.repack(k, n, b, strides);
        p
    }

    fn repack(&mut self, k: usize, n: usize, b: &[f32], (rs, cs): (usize, usize)) {
        assert!(k == 0 || n == 0 || b.len() > (k - 1) * rs + (n - 1) * cs);
        (self.k, self.n) = (k, n);
        match self.kernels {
            Kernels::Avx512 => {
                // pack_panels writes every element: only growth is cleared.
                self.data.resize(n.div_ceil(NR) * k * NR, 0.0);
                pack_panels(&mut self.data, k, n, b, (rs, cs), 0);
            }
            Kernels::Portable => {
                self.data.clear();
                self.data.reserve(k * n);
                for p in 0..k {
                    self.data.extend((0..n).map(|j| b[p * rs + j * cs]));
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn panel(&self, j: usize) -> &[f32] {
        &self.data[j * self.k * NR..][..self.k * NR]
    }
}

/// Packs B's panels `first..` into `out` (whole panels of k × NR), zero past the last column.
/// Writes every element of `out`, so that a reused buffer needs no clearing.
fn pack_panels(
    out: &mut [f32],
    k: usize,
    n: usize,
    b: &[f32],
    (rs, cs): (usize, usize),
    first: usize,
) {
    for (i, panel) in out.chunks_exact_mut(k * NR).enumerate() {
        let jp = first + i;
        let cols = (n - jp * NR).min(NR);
        let b = &b[jp * NR * cs..];
        if cols < NR {
            panel.fill(0.0);
        }
        if rs == 1 && cols == NR {
            // A weight used as Wᵀ: the panel is the transpose of NR of its rows.
            #[cfg(target_arch = "x86_64")]
            // SAFETY: panels are packed for the AVX-512 kernels only, chosen when the CPU has
            // AVX-512F; the caller's bound on B covers NR rows of k from here.
            unsafe {
                avx512::transpose_panel(panel, b, k, cs)
            };
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("panels are packed for the AVX-512 kernels only");
        } else if cs == 1 {
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                row[..cols].copy_from_slice(&b[p * rs..][..cols]);
            }
        } else if rs < cs {
            // Read B along its contiguous axis, k in blocks whose rows of the panel stay in
            // L1: read across its columns, B touches a new cache line for every element.
            for p0 in (0..k).step_by(64) {
                let rows = (k - p0).min(64);
                for j in 0..cols {
                    for p in p0..p0 + rows {
                        panel[p * NR + j] = b[p * rs + j * cs];
                    }
                }
            }
        } else {
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (j, x) in row[..cols].iter_mut().enumerate() {
                    *x = b[p * rs + j * cs];
                }
            }
        }
    }
}

/// A (m × k), W (n × k) and a bias (n) of varied values for the reduced-precision kernels'
/// tests.
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) fn test_operands(m: usize, k: usize, n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let a = (0..m * k)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 37.0)
        .collect();
    let w = (0..n * k)
        .map(|i| ((i * 53 % 97) as f32 - 48.0) / 41.0)
        .collect();
    let bias = (0..n).map(|j| j as f32 / 10.0).collect();
    (a, w, bias)
}

/// The first `n` values of a bias, zero-padded to whole panels, for the tiles' vector loads.
#[cfg(target_arch = "x86_64")]
fn padded_bias(bias: &[f32], n: usize) -> Vec<f32> {
    let mut v = bias[..n].to_vec();
    v.resize(n.div_ceil(NR) * NR, 0.0);
    v
}

/// A raw pointer that the pool's tasks may share: each writes its own columns of C.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

/// Below this many multiply-adds a product stays on one thread.
const PAR_MIN: usize = 1 << 20;

/// `C (m × n, rows `ldc` apart) = start + A (m × k, strides `a_strides`) · B`, on up to
/// `threads` threads (each a range of B's panels).
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed(
    m: usize,
    a: &[f32],
    (ars, acs): (usize, usize),
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    start: Start<'_>,
    threads: usize,
) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(k == 0 || a.len() > (m - 1) * ars + (k - 1) * acs);
    assert!(c.len() >= (m - 1) * ldc + n && ldc >= n);
    if let Start::Bias(bias) = start {
        assert!(bias.len() >= n);
    }
    match b.kernels {
        #[cfg(target_arch = "x86_64")]
        Kernels::Avx512 => {
            let panels = n.div_ceil(NR);
            let threads = if m * k * n < PAR_MIN {
                1
            } else {
                threads.clamp(1, panels)
            };
            let cp = SharedMut(c.as_mut_ptr());
            let run = |j0: usize, j1: usize| {
                // SAFETY: AVX-512 was detected when B was packed; the asserts above bound
                // every access; threads write disjoint column ranges of C.
                unsafe { panels_avx512(m, a, ars, acs, b, cp, ldc, start, j0, j1) }
            };
            if threads == 1 {
                return run(0, panels);
            }
            let per = panels.div_ceil(threads);
            rayon::scope(|s| {
                for j0 in (per..panels).step_by(per) {
                    let run = &run;
                    s.spawn(move |_| run(j0, (j0 + per).min(panels)));
                }
                run(0, per.min(panels));
            });
        }
        _ => portable(m, a, (ars, acs), b, c, ldc, start),
    }
}

/// Panels `j0..j1` of the product: k in blocks of `KC`; for each block, A's rows packed into
/// tiles of `MR` (each k step's `MR` values side by side: rows of A thousands of floats apart
/// map to the same L1 sets, which read in place cost a third of the speed at k = 3072), then
/// every panel's block of B swept by every tile.
///
/// # Safety
/// AVX-512F present; the bounds checked by `gemm_packed`.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn panels_avx512(
    m: usize,
    a: &[f32],
    ars: usize,
    acs: usize,
    b: &PackedB,
    c: SharedMut,
    ldc: usize,
    start: Start<'_>,
    j0: usize,
    j1: usize,
) {
    use avx512::{tile_for, Init, MR};
    // Rows in blocks whose packed tiles stay in L2 while every panel sweeps them; each row's
    // sums are those of one block, so the split changes no result.
    let blocks = m.div_ceil(MC);
    if blocks > 1 {
        let per = m.div_ceil(blocks).next_multiple_of(MR);
        for r0 in (0..m).step_by(per) {
            let c0 = SharedMut(c.0.add(r0 * ldc));
            let rows = per.min(m - r0);
            panels_avx512(rows, &a[r0 * ars..], ars, acs, b, c0, ldc, start, j0, j1);
        }
        return;
    }
    let (k, n) = (b.k, b.n);
    let tail_rows = if m.is_multiple_of(MR) { MR } else { m % MR };
    let bias = match start {
        Start::Bias(bias) => padded_bias(bias, n),
        _ => vec![],
    };
    let tiles = m.div_ceil(MR);
    A_TILES.with_borrow_mut(|packed_a| {
        packed_a.resize(tiles * KC.min(k.max(1)) * MR, 0.0);
        let mut p0 = 0;
        loop {
            let kb = (k - p0).min(KC);
            // Packing costs a pass over A per block: with few panels to share it, A is read in
            // place instead.
            let in_place = j1 - j0 <= IN_PLACE_PANELS;
            let (full, tail) = (tile_for(MR, !in_place), tile_for(tail_rows, !in_place));
            for (t, tile) in packed_a
                .chunks_exact_mut(kb * MR)
                .take(if in_place { 0 } else { tiles })
                .enumerate()
            {
                let rows = (m - t * MR).min(MR);
                let src = a.as_ptr().add(t * MR * ars + p0 * acs);
                avx512::pack_a_tile(tile, src, ars, acs, rows, kb);
            }
            for j in j0..j1 {
                let panel = b.panel(j).as_ptr().add(p0 * NR);
                let cols = (n - j * NR).min(NR);
                let init = match (p0, start) {
                    (0, Start::Zero) => Init::Zero,
                    (0, Start::Bias(_)) => Init::Bias(bias.as_ptr().add(j * NR)),
                    _ => Init::Load,
                };
                for t in 0..tiles {
                    let rows = (m - t * MR).min(MR);
                    let f = if rows == MR { full } else { tail };
                    let cij = c.0.add(t * MR * ldc + j * NR);
                    if in_place {
                        let at = a.as_ptr().add(t * MR * ars + p0 * acs);
                        f(kb, at, ars, acs, panel, cij, ldc, cols, init);
                    } else {
                        let at = packed_a.as_ptr().add(t * kb * MR);
                        f(kb, at, 1, MR, panel, cij, ldc, cols, init);
                    }
                }
            }
            p0 += kb;
            if p0 >= k {
                break;
            }
        }
    });
}

/// The product on `matrixmultiply`, B row-major in `b.data`.
fn portable(
    m: usize,
    a: &[f32],
    (ars, acs): (usize, usize),
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    start: Start<'_>,
) {
    let (k, n) = (b.k, b.n);
    let beta = match start {
        Start::Zero => 0.0,
        Start::Accumulate => 1.0,
        Start::Bias(bias) => {
            for row in c.chunks_mut(ldc).take(m) {
                row[..n].copy_from_slice(&bias[..n]);
            }
            1.0
        }
    };
    // SAFETY: gemm_packed's asserts bound A and C; B is k × n row-major.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            ars as isize,
            acs as isize,
            b.data.as_ptr(),
            n as isize,
            1,
            beta,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        )
    }
}

thread_local! {
    /// Each thread's buffer of A's packed tiles.
    static A_TILES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The buffer of the last [`PackedB::new_threaded`] dropped on this thread (a linear
    /// layer's weight, an attention head's operand), for the next to pack into: a fresh one costs clearing and page faults on every product. Taken, not
    /// borrowed, so that a product stolen by a waiting worker (rayon) finds it empty instead
    /// of borrowed.
    static SPARE_B: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `C = beta·C + A · B` (beta 0 or 1), each operand given by its row and column strides, so
/// that transposes and blocks of larger matrices (one attention head) cost no copy. C's
/// columns are contiguous. B is packed on every call; one thread.
#[allow(clippy::too_many_arguments)]
pub fn gemm_strided(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    c: &mut [f32],
    (c_rs, c_cs): (usize, usize),
    beta: f32,
) {
    assert_eq!(c_cs, 1, "C's columns are contiguous");
    assert!(beta == 0.0 || beta == 1.0);
    if m == 0 || n == 0 {
        return;
    }
    let start = if beta == 0.0 {
        Start::Zero
    } else {
        Start::Accumulate
    };
    let packed = PackedB::new_threaded(k, n, b, b_strides, 1);
    gemm_packed(m, a, a_strides, &packed, c, c_rs, start, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for p in 0..k {
                for j in 0..n {
                    c[i * n + j] += a[i * k + p] as f64 * b[p * n + j] as f64;
                }
            }
        }
        c
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n as u64)
            .map(|i| {
                let h = super::super::dropout::mix(seed << 32 ^ i);
                (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// Every tile height, a partial panel, k across block edges and off the transposes' 16,
    /// rows across blocks of `MC`, B packed on threads (into a reused buffer), the three
    /// starts, threads; held to a product summed in f64.
    #[test]
    fn products_match_a_reference() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (13, 300, 45),
            (25, 513, 64),
            (12, 7, 33),
            (40, 256, 100),
            (MC + 13, 17, 33),
            (5, 520, 260),
        ] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let bias = values(n, 3);
            let want = reference(m, k, n, &a, &b);
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            for (threads, kernels) in [(1, kernels()), (3, kernels()), (2, Kernels::Portable)] {
                let packed = if threads == 3 {
                    PackedB::new_threaded(k, n, &bt, (1, k), threads)
                } else {
                    PackedB::for_kernels(kernels, k, n, &bt, (1, k))
                };
                let mut c = values(m * n, 4);
                let before = c.clone();
                gemm_packed(
                    m,
                    &a,
                    (k, 1),
                    &packed,
                    &mut c,
                    n,
                    Start::Accumulate,
                    threads,
                );
                let mut z = vec![7.0; m * n];
                gemm_packed(m, &a, (k, 1), &packed, &mut z, n, Start::Zero, threads);
                let mut with_bias = vec![0.0; m * n];
                gemm_packed(
                    m,
                    &a,
                    (k, 1),
                    &packed,
                    &mut with_bias,
                    n,
                    Start::Bias(&bias),
                    threads,
                );
                for i in 0..m * n {
                    let tol = 1e-5 * (k as f64).sqrt().max(1.0);
                    assert!(
                        (z[i] as f64 - want[i]).abs() < tol,
                        "{m}x{k}x{n} zero [{i}]"
                    );
                    let acc = c[i] as f64 - before[i] as f64;
                    assert!((acc - want[i]).abs() < tol, "{m}x{k}x{n} accumulate [{i}]");
                    let wb = with_bias[i] as f64 - bias[i % n] as f64;
                    assert!((wb - want[i]).abs() < tol, "{m}x{k}x{n} bias [{i}]");
                }
            }
            // A transposed through its strides, B row-major through gemm_strided.
            let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let mut c = vec![0.0; m * n];
            gemm_strided(m, k, n, &at, (1, m), &b, (n, 1), &mut c, (n, 1), 0.0);
            for i in 0..m * n {
                assert!(
                    (c[i] as f64 - want[i]).abs() < 1e-4,
                    "{m}x{k}x{n} strided [{i}]"
                );
            }
        }
    }
}
