//! A model folder in the Hugging Face layout: `config.json`, `vocab.txt`, `model.safetensors`,
//! and optionally a `model.onnx` (ours or exported from PyTorch) that is then used as is.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::Framework;

use crate::checkpoint::BertWeights;
use crate::config::BertConfig;
use crate::onnx_export;
use crate::tokenizer::Tokenizer;
use crate::vocab::Vocab;

pub struct ModelDir {
    pub path: PathBuf,
    pub config: BertConfig,
    pub vocab: Vocab,
    pub tokenizer: Tokenizer,
}

/// Where the ONNX graph came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphSource {
    FolderOnnx,
    BuiltFromWeights,
}

impl ModelDir {
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            bail!(
                "{}: model folder not found (expected config.json, vocab.txt, model.safetensors)",
                path.display()
            );
        }
        let config = BertConfig::load(&path.join("config.json"))?;
        let vocab = Vocab::load(&path.join("vocab.txt"))?;
        if vocab.len() != config.vocab_size {
            bail!(
                "{}: vocab.txt has {} tokens but config.json says vocab_size = {}",
                path.display(),
                vocab.len(),
                config.vocab_size
            );
        }
        let tokenizer = Tokenizer::new(&vocab);
        Ok(Self {
            path: path.to_owned(),
            config,
            vocab,
            tokenizer,
        })
    }

    pub fn k(&self) -> usize {
        self.vocab.k
    }

    pub fn onnx_path(&self) -> PathBuf {
        self.path.join("model.onnx")
    }

    pub fn weights(&self) -> Result<BertWeights> {
        BertWeights::load(&self.path.join("model.safetensors"), &self.config)
    }

    /// The folder's `model.onnx` if there is one, else the graph built from the weights.
    pub fn graph(&self) -> Result<(ModelProto, GraphSource)> {
        let onnx = self.onnx_path();
        if onnx.exists() {
            let proto = tract_onnx::onnx()
                .proto_model_for_path(&onnx)
                .map_err(|e| {
                    anyhow::anyhow!("{}: not a readable ONNX model: {e}", onnx.display())
                })?;
            return Ok((proto, GraphSource::FolderOnnx));
        }
        Ok((self.build_graph()?, GraphSource::BuiltFromWeights))
    }

    pub fn build_graph(&self) -> Result<ModelProto> {
        let weights = self.weights()?;
        Ok(onnx_export::build(&self.config, &weights))
    }

    /// `dnabert export-onnx`: writes `model.onnx` into the folder, atomically.
    pub fn export_onnx(&self) -> Result<PathBuf> {
        let proto = self.build_graph()?;
        let path = self.onnx_path();
        crate::io_util::write_atomic(&path, &onnx_export::to_bytes(&proto))
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(path)
    }
}
