//! The embed pipeline's batches run through the training engine's encoder (`train::encoder`)
//! on any `Backend`: how `embed --device cuda` runs on a GPU. On the CPU backend it is the check
//! of this path against tract (`plugin/tests/it/embed_matches_hf.rs`), since both must give
//! Hugging Face's numbers.

use anyhow::Result;

use crate::config::BertConfig;
use crate::engine::{Hidden, Infer};
use crate::layout::Layout;
use crate::model_dir::ModelDir;
use crate::train::backend::{Backend, Dropout};
use crate::train::encoder::{self, Tokens};
use crate::train::params::Params;
use crate::train::store;

pub struct BackendEngine<B: Backend> {
    be: B,
    config: BertConfig,
    params: Params<B>,
}

impl<B: Backend + Send> BackendEngine<B> {
    /// The model folder's encoder weights (any head the checkpoint has is not loaded).
    pub fn new(be: B, model: &ModelDir) -> Result<Self> {
        let (host, _) = store::load(model, Layout::Encoder, |_| false)?;
        Ok(Self {
            params: host.to_backend(&be),
            config: model.config.clone(),
            be,
        })
    }
}

impl<B: Backend + Send> Infer for BackendEngine<B> {
    fn hidden(&self) -> usize {
        self.config.hidden_size
    }

    fn run(&self, tokens: &Tokens) -> Result<Hidden> {
        let acts = encoder::forward(&self.be, &self.config, &self.params, tokens, &Dropout::OFF);
        Ok(Hidden {
            data: self.be.download(&acts.hidden),
            seq: tokens.seq,
        })
    }
}
