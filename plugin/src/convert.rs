//! `dnabert convert`: a model's weights as `model.safetensors` (f32, canonical names,
//! atomically), from any checkpoint it has — `pytorch_model.bin`, shards, f16/bf16 — so that
//! loading is fast and runs no pickle; missing tokenizer files are added.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::folder;
use crate::model_dir::ModelDir;

/// `dnabert convert`'s flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model folder, or a Hub id (then --output is needed).
    #[arg(long)]
    pub model: PathBuf,
    /// Folder to write [default: the model folder itself].
    #[arg(long)]
    pub output: Option<PathBuf>,
}

impl Args {
    /// Prints the folder it wrote.
    pub fn run(self) -> Result<()> {
        convert(&self.model, self.output.as_deref())
    }
}

/// `dnabert convert`: every tensor of the checkpoint, canonical names, as model.safetensors.
pub fn convert(model: &Path, output: Option<&Path>) -> Result<()> {
    let m = ModelDir::open(model)?;
    let out = match output {
        Some(o) => o.to_owned(),
        None if model.is_dir() => model.to_owned(),
        None => anyhow::bail!(
            "{}: a Hub model lives in the Hub cache; give --output for the converted folder",
            model.display()
        ),
    };
    let read = std::time::Instant::now();
    let ck = m.checkpoint()?;
    ck.check_layers(&m.config)?;
    let read = read.elapsed().as_secs_f64();
    std::fs::create_dir_all(&out)
        .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", out.display()))?;
    if out != m.path {
        for f in [
            "config.json",
            "vocab.txt",
            folder::TOKENIZER_CONFIG,
            folder::SPECIAL_TOKENS_MAP,
            folder::CARD,
            folder::CENTRE_HEAD_CODE,
        ] {
            let from = m.path.join(f);
            if from.is_file() {
                let bytes = std::fs::read(&from)
                    .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", from.display()))?;
                crate::io_util::write_atomic(&out.join(f), &bytes)?;
            }
        }
    }
    // A folder that transformers' AutoTokenizer would lower-case into [UNK] gets DNABERT's
    // tokenizer files; a folder's own files are kept.
    let json = |v: serde_json::Value| format!("{v:#}\n");
    if !out.join(folder::TOKENIZER_CONFIG).exists() {
        let tc = folder::tokenizer_config(m.model_max_length);
        crate::io_util::write_atomic(&out.join(folder::TOKENIZER_CONFIG), json(tc).as_bytes())?;
    }
    if !out.join(folder::SPECIAL_TOKENS_MAP).exists() {
        let st = folder::special_tokens_map();
        crate::io_util::write_atomic(&out.join(folder::SPECIAL_TOKENS_MAP), json(st).as_bytes())?;
    }
    let names = ck.names();
    let tensors: Vec<(String, Vec<usize>, &[f32])> = names
        .iter()
        .filter_map(|n| {
            let t = ck.get(n)?;
            Some((n.to_string(), t.shape.clone(), t.data.as_slice()))
        })
        .collect();
    let dest = out.join("model.safetensors");
    let write = std::time::Instant::now();
    crate::train::store::save_tensors(&dest, &tensors)?;
    eprintln!(
        "convert: {} tensors read from {} in {read:.2} s, written to {} in {:.2} s",
        tensors.len(),
        ck.source.display(),
        dest.display(),
        write.elapsed().as_secs_f64()
    );
    if out == m.path && ck.source != dest {
        eprintln!(
            "convert: {} is no longer read (model.safetensors comes first) and may be removed",
            ck.source.display()
        );
    }
    crate::cli::say(out.display())
}
