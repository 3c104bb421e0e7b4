//! Reads the CUDA kernels' parameter lists once (`src/cuda/kernels/*.cu`) and writes, into
//! OUT_DIR:
//! - `signatures.rs`: every kernel's family, name and parameters as data (`cuda::signatures`),
//!   which `cuda-check`, NVRTC loading and the CPU emulator's dispatcher read;
//! - `launchers.rs`: one typed launch function per kernel (`cuda::backend`'s `Kernels`), so a
//!   launch with the wrong number, order or type of arguments does not compile. Pointers are
//!   `In<T>` (`const T*`) or `Out<T>` (`T*`) of the element type, `int` is `i32`, `size_t`
//!   `usize`, `float` `f32`, `unsigned long long` `u64`.

use std::fmt::Write as _;
use std::path::Path;

struct Param {
    ctype: String,
    name: String,
    pointer: bool,
    constant: bool,
}

fn parse(src: &str) -> Vec<(String, Vec<Param>)> {
    let mut out = vec![];
    for decl in src.split("extern \"C\" __global__ void ").skip(1) {
        let (name, rest) = decl.split_once('(').expect("a parameter list");
        let list = rest.split_once(')').expect("a closing parenthesis").0;
        let params = list
            .split(',')
            .map(|p| {
                let p = p.split_whitespace().collect::<Vec<_>>().join(" ");
                let constant = p.starts_with("const ");
                let p = p.trim_start_matches("const ");
                let pointer = p.contains('*');
                let (ty, name) = p.rsplit_once([' ', '*']).unwrap();
                Param {
                    ctype: ty.trim().trim_end_matches('*').trim().to_owned(),
                    name: name.to_owned(),
                    pointer,
                    constant,
                }
            })
            .collect();
        out.push((name.trim().to_owned(), params));
    }
    out
}

/// The Rust type a kernel parameter takes.
fn rust_type(p: &Param, kernel: &str) -> String {
    let element = match p.ctype.as_str() {
        "float" => "f32",
        "double" => "f64",
        "int" => "i32",
        "size_t" => "usize",
        "unsigned int" => "u32",
        "unsigned long long" | "u64" => "u64",
        "long long" => "i64",
        "bf16_t" => "u16",
        other => panic!("{kernel}: no Rust type for the C type {other}"),
    };
    match (p.pointer, p.constant) {
        (true, true) => format!("In<{element}>"),
        (true, false) => format!("Out<{element}>"),
        (false, _) => element.to_owned(),
    }
}

fn main() {
    let dir = Path::new("src/cuda/kernels");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut families: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    families.sort();
    let mut sigs = String::from(
        "/// Every kernel: (family, name, parameters as (C type, name, pointer, const)).\n\
         pub const SIGNATURES: &[Signature] = &[\n",
    );
    let mut launchers = String::new();
    for path in &families {
        println!("cargo:rerun-if-changed={}", path.display());
        let family = path.file_stem().unwrap().to_str().unwrap();
        let src = std::fs::read_to_string(path).unwrap();
        for (kernel, params) in parse(&src) {
            let list: Vec<String> = params
                .iter()
                .map(|p| {
                    format!(
                        "Param {{ ctype: {:?}, name: {:?}, pointer: {}, constant: {} }}",
                        p.ctype, p.name, p.pointer, p.constant
                    )
                })
                .collect();
            writeln!(
                sigs,
                "    Signature {{ family: {family:?}, name: {kernel:?}, params: &[{}] }},",
                list.join(", ")
            )
            .unwrap();
            let args: Vec<String> = params
                .iter()
                .map(|p| format!("{}: {}", p.name, rust_type(p, &kernel)))
                .collect();
            let pushes: String = params
                .iter()
                .map(|p| {
                    if p.pointer {
                        format!("        launch_args.arg(&{}.addr);\n", p.name)
                    } else {
                        format!("        launch_args.arg(&{});\n", p.name)
                    }
                })
                .collect();
            write!(
                launchers,
                "    /// `kernels/{family}.cu`'s `{kernel}`.\n\
                 \x20   #[allow(clippy::too_many_arguments, non_snake_case, dead_code)]\n\
                 \x20   pub fn {kernel}(&self, cfg: LaunchConfig, {}) {{\n\
                 \x20       let mut launch_args = self.stream.launch_builder(self.function({kernel:?}));\n\
                 {pushes}\
                 \x20       // SAFETY: generated from the kernel's own parameter list: as many\n\
                 \x20       // arguments as it declares, of its widths, pointers as device addresses.\n\
                 \x20       unsafe {{ launch_args.launch(cfg) }}.unwrap_or_else(|e| panic!(\"{kernel}: {{e:?}}\"));\n\
                 \x20   }}\n",
                args.join(", ")
            )
            .unwrap();
        }
    }
    sigs.push_str("];\n");
    let out = std::env::var("OUT_DIR").unwrap();
    std::fs::write(Path::new(&out).join("signatures.rs"), sigs).unwrap();
    std::fs::write(
        Path::new(&out).join("launchers.rs"),
        format!("impl Kernels<'_> {{\n{launchers}}}\n"),
    )
    .unwrap();
}
