//! The matrix products at DNABERT-base's shapes, on each candidate kernel, in one run:
//! `cargo bench -p dnabert --bench gemm_shapes [-- --seconds 1]`.
//!
//! For each shape (m × k × n: tokens × in × out of the encoder's linear layers, and one
//! attention head's two products) it prints GFLOP/s of: our AVX-512 kernel on weights packed
//! once (`packed`, what inference runs) and packing B on every call (`strided`, what training
//! runs), and `matrixmultiply`; each on one thread alone, and with every core running its
//! own copy at once (`all cores`, per core: what `embed` does with one window per core). On
//! CPUs with AVX512-VNNI the linear layers' shapes also run `embed`'s integer products
//! (`int16`, `int8`: quantising A included; counted as 2·m·k·n operations, so comparable with
//! the float rates). The last line gives the best one-core fp32 rate seen. Check that the
//! machine is otherwise idle (`uptime`) before reading anything into it.
//!
//! `-- --peak N --threads T` instead prints one JSON line, `{"gflops": …}`: our kernel's best
//! rate on one N × N × N product (weights packed once) on T threads, one of the yardsticks the
//! peer benchmarks take the machine's measured peak from (`benches/machine.py`).

use std::time::Instant;

use dnabert::train::ops::gemm::{self, gemm_packed, int16, int8, Kernels, PackedB, Start};

const SHAPES: [(usize, usize, usize, &str); 5] = [
    (512, 768, 768, "query/key/value/attention output"),
    (512, 768, 3072, "intermediate"),
    (512, 3072, 768, "output"),
    (512, 64, 512, "attention scores, one head"),
    (512, 512, 64, "attention context, one head"),
];

fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// GFLOP/s of `f` (one product of `flops`): the best of 5 trials of about `seconds` / 5 each
/// (on a shared machine the clock varies from second to second; the best trial is the one the
/// least disturbed).
fn rate(flops: f64, seconds: f64, mut f: impl FnMut()) -> f64 {
    f();
    let once = Instant::now();
    f();
    let reps = ((seconds / 5.0 / once.elapsed().as_secs_f64().max(1e-6)) as usize).max(2);
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

/// The product run by `which` on (m, k, n): weights given as W (n × k), `y = x · Wᵀ`.
fn product(which: &str, m: usize, k: usize, n: usize) -> impl FnMut() {
    let (x, w) = (values(m * k), values(k * n));
    let mut y = vec![0f32; m * n];
    let kernels = if which == "matrixmultiply" {
        Kernels::Portable
    } else {
        gemm::kernels()
    };
    let packed = PackedB::for_kernels(kernels, k, n, &w, (1, k));
    let w16 = (which == "int16").then(|| int16::PackedInt16::new(k, n, &w, (1, k)));
    let w8 = (which == "int8").then(|| int8::PackedInt8::new(k, n, &w, (1, k)));
    let bias = vec![0f32; n];
    let which = which.to_owned();
    move || match (which.as_str(), &w16, &w8) {
        ("strided", ..) => gemm::gemm_strided(m, k, n, &x, (k, 1), &w, (1, k), &mut y, (n, 1), 0.0),
        (_, Some(w16), _) => int16::gemm_bias(m, &x, w16, &mut y, n, &bias),
        (_, _, Some(w8)) => int8::gemm_bias(m, &x, w8, &mut y, n, &bias),
        _ => gemm_packed(m, &x, (k, 1), &packed, &mut y, n, Start::Zero, 1),
    }
}

/// The value after `name`, if given.
fn flag(args: &[String], name: &str) -> Option<f64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: a number, not {v:?}"))
        })
}

/// `{"gflops": …}` of one n³ product on `threads` threads, B packed once.
fn peak(n: usize, threads: usize, seconds: f64) {
    let (x, w) = (values(n * n), values(n * n));
    let mut y = vec![0f32; n * n];
    let packed = PackedB::for_kernels(gemm::kernels(), n, n, &w, (1, n));
    let g = rate(2.0 * (n * n * n) as f64, seconds, || {
        gemm_packed(n, &x, (n, 1), &packed, &mut y, n, Start::Zero, threads)
    });
    println!("{{\"gflops\": {g:.1}, \"n\": {n}, \"threads\": {threads}}}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = flag(&args, "--seconds").unwrap_or(1.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(n) = flag(&args, "--peak") {
        let threads = flag(&args, "--threads").map_or(cores, |t| t as usize);
        return peak(n as usize, threads, seconds);
    }
    let mut kinds = vec!["packed", "strided", "matrixmultiply"];
    if gemm::kernels() == Kernels::Portable {
        println!("no AVX-512 (or DNABERT_CPU_KERNELS=portable): every row runs matrixmultiply");
        kinds.truncate(1);
    }
    println!(
        "{:>16} {:36} {:>16} {:>12} {:>20}",
        "m x k x n",
        "layer",
        "kernel",
        "one core",
        format!("all {cores} cores, per core")
    );
    let integer: &[&str] = if int8::available() && gemm::kernels() == Kernels::Avx512 {
        &["int16", "int8"]
    } else {
        &[]
    };
    let mut best = 0f64;
    for (m, k, n, what) in SHAPES {
        let flops = 2.0 * (m * k * n) as f64;
        let linear = !what.starts_with("attention");
        let extra = if linear { integer } else { &[] };
        for kind in kinds.iter().chain(extra) {
            let alone = rate(flops, seconds, product(kind, m, k, n));
            let together: Vec<f64> = std::thread::scope(|s| {
                let runs: Vec<_> = (0..cores)
                    .map(|_| s.spawn(|| rate(flops, seconds, product(kind, m, k, n))))
                    .collect();
                runs.into_iter().map(|r| r.join().unwrap()).collect()
            });
            let per_core = together.iter().sum::<f64>() / cores as f64;
            if !extra.contains(kind) {
                best = best.max(alone);
            }
            println!(
                "{:>16} {what:36} {kind:>16} {alone:12.1} {per_core:20.1}",
                format!("{m}x{k}x{n}")
            );
        }
    }
    println!("best one-core fp32 rate measured: {best:.1} GFLOP/s");
}
