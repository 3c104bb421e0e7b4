//! The CPU emulation of our CUDA kernels (see `emulator.h`): every kernel's parameter list read
//! from its source, a C++ dispatcher for all of them compiled once with the machine's C++
//! compiler, and `launch`, which runs one kernel through it with the grid shapes
//! `cuda/backend/` uses.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use dnabert::cuda::launch::{self, Launch};
use dnabert::cuda::signatures::SIGNATURES;
use dnabert::cuda::FAMILIES;

/// A kernel parameter as declared: its C type without `const`, and whether it is a pointer.
#[derive(Debug, Clone)]
pub struct Param {
    pub ty: String,
    pub pointer: bool,
}

/// Every kernel of every family: (name, parameters), as build.rs read them
/// (`dnabert::cuda::signatures`, the same list the typed launchers come from).
pub fn kernels() -> Vec<(String, Vec<Param>)> {
    SIGNATURES
        .iter()
        .map(|s| {
            let params = s
                .params
                .iter()
                .map(|p| Param {
                    ty: p.ctype.to_owned(),
                    pointer: p.pointer,
                })
                .collect();
            (s.name.to_owned(), params)
        })
        .collect()
}

/// The C++ program that launches any kernel named on its stdin (protocol: cuda_emulator/io.h).
fn dispatcher() -> String {
    let mut cpp =
        String::from("#include \"emulator.h\"\n#include \"io.h\"\n#include \"common.cuh\"\n");
    for (family, _) in FAMILIES {
        writeln!(cpp, "#include \"{family}.cu\"").unwrap();
    }
    cpp.push_str(
        "int main() {\n  std::string name = read_name();\n  unsigned gx = read_scalar<unsigned>(), gy = read_scalar<unsigned>();\n  unsigned threads = read_scalar<unsigned>();\n  dim3 grid{gx, gy, 1};\n",
    );
    for (name, params) in kernels() {
        writeln!(cpp, "  if (name == \"{name}\") {{").unwrap();
        let mut call = vec![];
        for (i, p) in params.iter().enumerate() {
            if p.pointer {
                writeln!(cpp, "    auto a{i} = read_buf<{}>();", p.ty).unwrap();
                call.push(format!("ptr(a{i})"));
            } else {
                writeln!(cpp, "    auto a{i} = read_scalar<{}>();", p.ty).unwrap();
                call.push(format!("a{i}"));
            }
        }
        writeln!(
            cpp,
            "    launch({name}, grid, threads, {});",
            call.join(", ")
        )
        .unwrap();
        for (i, p) in params.iter().enumerate() {
            if p.pointer {
                writeln!(cpp, "    write_buf(a{i});").unwrap();
            }
        }
        cpp.push_str("    return 0;\n  }\n");
    }
    cpp.push_str(
        "  std::fprintf(stderr, \"emulator: no kernel %s\\n\", name.c_str());\n  return 2;\n}\n",
    );
    cpp
}

/// The compiled dispatcher, built once per test run; `None` (after saying why) where there is
/// no C++ compiler and CI did not ask for one.
pub fn emulator() -> Option<&'static Path> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cuda_emulator");
        std::fs::create_dir_all(&dir).unwrap();
        let (src, exe) = (dir.join("dispatch.cpp"), dir.join("dispatch"));
        std::fs::write(&src, dispatcher()).unwrap();
        let status = Command::new("c++")
            .args([
                "-std=c++20",
                "-O2",
                "-pthread",
                "-Wno-unused-function",
                "-o",
            ])
            .arg(&exe)
            .arg("-I")
            .arg(root.join("src/cuda/kernels"))
            .arg("-I")
            .arg(root.join("tests/it/cuda_emulator"))
            .arg(&src)
            .status();
        match status {
            Ok(s) if s.success() => Some(exe),
            Ok(s) => panic!("c++ could not build {}: {s}", src.display()),
            Err(e) if std::env::var_os("DNABERT_REQUIRE_ENGINES").is_none() => {
                eprintln!("SKIPPED: no C++ compiler ({e})");
                None
            }
            Err(e) => panic!("no C++ compiler (c++): {e}"),
        }
    })
    .as_deref()
}

/// A kernel argument: a buffer of a C type (empty: a null pointer) or a scalar.
pub enum Arg {
    Buf(&'static str, Vec<u8>),
    Scalar(&'static str, Vec<u8>),
}

pub fn f32s(v: &[f32]) -> Arg {
    Arg::Buf("float", v.iter().flat_map(|x| x.to_le_bytes()).collect())
}
pub fn null(ty: &'static str) -> Arg {
    Arg::Buf(ty, vec![])
}
pub fn u32s(v: &[u32]) -> Arg {
    Arg::Buf(
        "unsigned int",
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}
pub fn i64s(v: &[i64]) -> Arg {
    Arg::Buf(
        "long long",
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}
pub fn zeros(ty: &'static str, n: usize, size: usize) -> Arg {
    Arg::Buf(ty, vec![0; n * size])
}
pub fn int(x: usize) -> Arg {
    Arg::Scalar("int", (x as i32).to_le_bytes().to_vec())
}
pub fn float(x: f32) -> Arg {
    Arg::Scalar("float", x.to_le_bytes().to_vec())
}
pub fn size(x: usize) -> Arg {
    Arg::Scalar("size_t", (x as u64).to_le_bytes().to_vec())
}
pub fn seed(x: u64) -> Arg {
    Arg::Scalar("unsigned long long", x.to_le_bytes().to_vec())
}

pub fn as_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The order the emulator runs a grid's blocks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockOrder {
    Forward,
    Reverse,
}

/// Launches `kernel` over `grid` blocks of `threads`; every pointer argument's final bytes, in
/// parameter order. Each argument's type must be the declared one.
pub fn launch(kernel: &str, grid: (usize, usize), threads: usize, args: &[Arg]) -> Vec<Vec<u8>> {
    launch_in(BlockOrder::Forward, kernel, grid, threads, args)
}

/// [`launch`] with the blocks run in `order`.
pub fn launch_in(
    order: BlockOrder,
    kernel: &str,
    grid: (usize, usize),
    threads: usize,
    args: &[Arg],
) -> Vec<Vec<u8>> {
    let all = kernels();
    let (_, params) = all
        .iter()
        .find(|(n, _)| n == kernel)
        .unwrap_or_else(|| panic!("no kernel {kernel}"));
    assert_eq!(params.len(), args.len(), "{kernel}: argument count");
    let mut input = (kernel.len() as u32).to_le_bytes().to_vec();
    input.extend(kernel.as_bytes());
    for x in [grid.0, grid.1, threads] {
        input.extend((x as u32).to_le_bytes());
    }
    for (i, (p, a)) in params.iter().zip(args).enumerate() {
        match a {
            Arg::Buf(ty, bytes) => {
                assert!(
                    p.pointer && p.ty == *ty,
                    "{kernel} argument {i}: {ty}* for {p:?}"
                );
                input.extend(((bytes.len() / element_size(ty)) as u64).to_le_bytes());
                input.extend(bytes);
            }
            Arg::Scalar(ty, bytes) => {
                assert!(
                    !p.pointer && p.ty == *ty,
                    "{kernel} argument {i}: {ty} for {p:?}"
                );
                input.extend(bytes);
            }
        }
    }
    let exe = emulator().expect("launch() after emulator() said none");
    let order = match order {
        BlockOrder::Forward => "forward",
        BlockOrder::Reverse => "reverse",
    };
    let mut child = Command::new(exe)
        .env("EMULATOR_BLOCK_ORDER", order)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{kernel}: the emulator failed");
    let (mut bufs, mut at) = (vec![], 0);
    for (p, a) in params.iter().zip(args) {
        if !p.pointer {
            continue;
        }
        let n = u64::from_le_bytes(out.stdout[at..at + 8].try_into().unwrap()) as usize;
        let Arg::Buf(ty, sent) = a else {
            unreachable!()
        };
        let bytes = n * element_size(ty);
        assert_eq!(bytes, sent.len(), "{kernel}: a buffer came back resized");
        at += 8;
        bufs.push(out.stdout[at..at + bytes].to_vec());
        at += bytes;
    }
    assert_eq!(
        at,
        out.stdout.len(),
        "{kernel}: output past the last buffer"
    );
    bufs
}

/// Bytes per element of a buffer's C type.
fn element_size(ty: &str) -> usize {
    match ty {
        "float" | "unsigned int" => 4,
        "double" | "long long" => 8,
        "bf16_t" => 2,
        other => panic!("no element size for {other}"),
    }
}

/// `cuda/backend/`'s launch shapes (`dnabert::cuda::launch`) as (grid, threads).
pub fn shape(l: Launch) -> ((usize, usize), usize) {
    (l.grid, l.block)
}
pub fn grid(n: usize) -> ((usize, usize), usize) {
    shape(launch::elements(n))
}
pub fn rows(n_rows: usize, c: usize) -> ((usize, usize), usize) {
    shape(launch::rows(n_rows, c))
}
