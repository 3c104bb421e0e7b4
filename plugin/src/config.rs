//! `config.json` in Hugging Face's `BertConfig` form.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_hidden_act() -> String {
    "gelu".into()
}

/// The fields of `BertConfig` that fix the encoder's shape and numerics. Unknown fields in a
/// Hugging Face config (dropout, architectures, …) are accepted and ignored when reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
}

impl BertConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read model config", path.display()))?;
        let config: Self = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a BertConfig", path.display()))?;
        config
            .validate()
            .with_context(|| format!("{}: invalid config", path.display()))?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<()> {
        if self.hidden_size == 0 || self.num_attention_heads == 0 || self.num_hidden_layers == 0 {
            bail!("hidden_size, num_attention_heads and num_hidden_layers must be positive");
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            bail!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size,
                self.num_attention_heads
            );
        }
        if self.max_position_embeddings < 3 {
            bail!(
                "max_position_embeddings {} leaves no room for k-mers",
                self.max_position_embeddings
            );
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            bail!(
                "layer_norm_eps = {}: must be a finite number > 0",
                self.layer_norm_eps
            );
        }
        // Before anything is allocated: a shape whose weights cannot fit in this machine
        // would abort in the allocator, or overflow the size computation itself.
        crate::limits::check_memory(
            &format!(
                "a model of {} layers, hidden size {}, {} positions, {} tokens",
                self.num_hidden_layers,
                self.hidden_size,
                self.max_position_embeddings,
                self.vocab_size
            ),
            self.param_count().and_then(|n| n.checked_mul(4)),
        )?;
        if !matches!(self.hidden_act.as_str(), "gelu" | "gelu_python") {
            bail!(
                "hidden_act '{}' is not supported (DNABERT uses exact 'gelu')",
                self.hidden_act
            );
        }
        Ok(())
    }

    /// Parameters of the encoder with an MLM head (the largest layout but for a classifier's
    /// labels), None past u128.
    pub fn param_count(&self) -> Option<u128> {
        let u = |x: usize| x as u128;
        let (h, i) = (u(self.hidden_size), u(self.intermediate_size));
        let embeddings = u(self.vocab_size)
            .checked_add(u(self.max_position_embeddings))?
            .checked_add(u(self.type_vocab_size))?
            .checked_add(2)?
            .checked_mul(h)?;
        let attention = h
            .checked_mul(h)?
            .checked_mul(4)?
            .checked_add(h.checked_mul(6)?)?;
        let ffn = h
            .checked_mul(i)?
            .checked_mul(2)?
            .checked_add(i)?
            .checked_add(h.checked_mul(3)?)?;
        let layers = attention
            .checked_add(ffn)?
            .checked_mul(u(self.num_hidden_layers))?;
        let head = h
            .checked_mul(h)?
            .checked_add(h.checked_mul(3)?)?
            .checked_add(u(self.vocab_size))?;
        embeddings.checked_add(layers)?.checked_add(head)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The JSON that Hugging Face `transformers` reads as a `BertConfig` for `architecture`.
    #[allow(
        clippy::expect_used,
        clippy::unwrap_used,
        reason = "a plain struct serialises to an object"
    )]
    pub fn to_hf_json(&self, architecture: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("config serialises");
        let extra = serde_json::json!({
            "architectures": [architecture],
            "model_type": "bert",
            "attention_probs_dropout_prob": 0.1,
            "hidden_dropout_prob": 0.1,
            "initializer_range": 0.02,
            "pad_token_id": 0,
            "position_embedding_type": "absolute",
        });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    }
}
