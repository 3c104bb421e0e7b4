//! A model folder in the Hugging Face layout: `config.json`, `vocab.txt`, the weights (any of
//! [`crate::checkpoint::WEIGHT_FILES`]), optionally `tokenizer_config.json` (its
//! `model_max_length` sets the default window) and a `model.onnx` (ours or exported from
//! PyTorch) that is then used as is. A model is named by a local folder or a Hugging Face Hub
//! id (`ORG/NAME[@REVISION]`, fetched into the Hub cache); a folder of that name wins, as in
//! `transformers`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
#[cfg(feature = "onnx")]
use tract_onnx::pb::ModelProto;
#[cfg(feature = "onnx")]
use tract_onnx::prelude::Framework;

use crate::checkpoint::{BertWeights, Checkpoint};
use crate::config::BertConfig;
#[cfg(feature = "onnx")]
use crate::onnx_export;
use crate::tokenizer::Tokenizer;
use crate::vocab::Vocab;

pub struct ModelDir {
    /// The local folder (for a Hub id, its snapshot in the cache).
    pub path: PathBuf,
    pub config: BertConfig,
    pub vocab: Vocab,
    pub tokenizer: Tokenizer,
    /// The longest input in tokens, `[CLS]` and `[SEP]` included, that the folder says the
    /// model was trained on (`tokenizer_config.json`), at most `max_position_embeddings`.
    pub model_max_length: usize,
    config_json: serde_json::Value,
}

/// Where the ONNX graph came from.
#[cfg(feature = "onnx")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphSource {
    FolderOnnx,
    BuiltFromWeights,
}

impl ModelDir {
    /// A model by name: a local folder, or else a Hub id resolved through the Hub cache
    /// (downloaded unless `HF_HUB_OFFLINE` is set).
    pub fn open(model: &Path) -> Result<Self> {
        if model.is_dir() {
            return Self::open_folder(model);
        }
        if model.exists() {
            bail!(
                "{}: a file, not a model folder; give the folder that holds config.json, vocab.txt and the weights",
                model.display()
            );
        }
        let name = model.to_string_lossy();
        match crate::hub::ModelRef::parse(&name) {
            Some(r) => {
                let dir = crate::hub::Hub::from_env()?
                    .snapshot(&r)
                    .with_context(|| format!("{name}: no such folder here, so it was taken as a Hugging Face Hub id"))?;
                Self::open_folder(&dir)
            }
            None => bail!(
                "{}: model folder not found (a folder with config.json, vocab.txt and weights, or a Hub id ORG/NAME[@REVISION])",
                model.display()
            ),
        }
    }

    /// A local folder.
    pub fn open_folder(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            bail!(
                "{}: model folder not found (expected config.json, vocab.txt and weights)",
                path.display()
            );
        }
        let config = BertConfig::load(&path.join("config.json"))?;
        let config_json = serde_json::from_str(
            &std::fs::read_to_string(path.join("config.json")).context("config.json")?,
        )
        .context("config.json")?;
        let vocab = Vocab::load(&path.join("vocab.txt"))?;
        if vocab.len() != config.vocab_size {
            bail!(
                "{}: vocab.txt has {} tokens but config.json says vocab_size = {}",
                path.display(),
                vocab.len(),
                config.vocab_size
            );
        }
        if Checkpoint::find(path).is_none() && !path.join("model.onnx").is_file() {
            bail!(
                "{}: no weights ({}, or model.onnx)",
                path.display(),
                crate::checkpoint::WEIGHT_FILES.join(", ")
            );
        }
        let model_max_length = crate::folder::model_max_length(path)?
            .unwrap_or(config.max_position_embeddings)
            .min(config.max_position_embeddings);
        let tokenizer = Tokenizer::new(&vocab);
        Ok(Self {
            path: path.to_owned(),
            config,
            vocab,
            tokenizer,
            model_max_length,
            config_json,
        })
    }

    pub fn k(&self) -> usize {
        self.vocab.k
    }

    /// The k-mer tokens of the longest window the model was trained on (the default window).
    pub fn trained_window(&self) -> usize {
        self.model_max_length - 2
    }

    /// The k-mer tokens of the longest window its position embeddings allow.
    pub fn max_window(&self) -> usize {
        self.config.max_position_embeddings - 2
    }

    /// The class names of `config.json` (`id2label`), if it names all `n`.
    pub fn labels(&self, n: usize) -> Vec<String> {
        crate::folder::labels(&self.config_json, n)
    }

    pub fn onnx_path(&self) -> PathBuf {
        self.path.join("model.onnx")
    }

    /// The folder's weights, through the one checkpoint reader.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        Checkpoint::read_folder(&self.path)
    }

    pub fn weights(&self) -> Result<BertWeights> {
        BertWeights::from_checkpoint(&self.checkpoint()?, &self.config)
    }

    /// The folder's `model.onnx` if there is one, else the graph built from the weights.
    #[cfg(feature = "onnx")]
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

    #[cfg(feature = "onnx")]
    pub fn build_graph(&self) -> Result<ModelProto> {
        let weights = self.weights()?;
        Ok(onnx_export::build(&self.config, &weights))
    }

    /// `dnabert export-onnx`: writes `model.onnx` into the folder, atomically.
    #[cfg(feature = "onnx")]
    pub fn export_onnx(&self) -> Result<PathBuf> {
        let proto = self.build_graph()?;
        let path = self.onnx_path();
        crate::io_util::write_atomic(&path, &onnx_export::to_bytes(&proto))
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(path)
    }
}
