//! The tensor names of a DNABERT model, in one place: the encoder, the MLM head, the `[CLS]`
//! head and the centre-token head, each spelling its own names (as candle's `vb.pp("encoder")`
//! and llm.c's `ParameterTensors` do). Every reader, writer, engine and backend asks here.
//!
//! Names are Hugging Face's, in their canonical form: the encoder and pooler under `bert.`
//! (`BertForMaskedLM` / `BertForSequenceClassification`), heads at the top level. A checkpoint
//! whose names differ in form (a bare `BertModel`, TensorFlow-era `gamma`/`beta`) is brought to
//! this form by the reader (`checkpoint::normalise`).

use serde::{Deserialize, Serialize};

use crate::config::BertConfig;

/// A tensor's name and shape.
pub type Named = (String, Vec<usize>);

/// The embeddings' tables and LayerNorm.
pub mod embeddings {
    pub const WORD: &str = "bert.embeddings.word_embeddings.weight";
    pub const POSITION: &str = "bert.embeddings.position_embeddings.weight";
    pub const TOKEN_TYPE: &str = "bert.embeddings.token_type_embeddings.weight";
    pub const LAYER_NORM: &str = "bert.embeddings.LayerNorm";
}

/// One transformer layer's linear layers and LayerNorms (each `{name}.weight`, `{name}.bias`).
pub struct LayerNames {
    pub query: String,
    pub key: String,
    pub value: String,
    pub attention_output: String,
    pub attention_layer_norm: String,
    pub intermediate: String,
    pub output: String,
    pub output_layer_norm: String,
}

/// The names of layer `l`.
pub fn layer(l: usize) -> LayerNames {
    let n = |s: &str| format!("bert.encoder.layer.{l}.{s}");
    LayerNames {
        query: n("attention.self.query"),
        key: n("attention.self.key"),
        value: n("attention.self.value"),
        attention_output: n("attention.output.dense"),
        attention_layer_norm: n("attention.output.LayerNorm"),
        intermediate: n("intermediate.dense"),
        output: n("output.dense"),
        output_layer_norm: n("output.LayerNorm"),
    }
}

/// `BertPooler`: dense + tanh over `[CLS]` (the `[CLS]` head's first layer).
pub const POOLER: &str = "bert.pooler.dense";

/// `BertForMaskedLM`'s head: dense → GELU → LayerNorm → decoder tied to the word embeddings.
pub mod mlm {
    pub const TRANSFORM: &str = "cls.predictions.transform.dense";
    pub const TRANSFORM_LAYER_NORM: &str = "cls.predictions.transform.LayerNorm";
    /// The decoder's bias.
    pub const BIAS: &str = "cls.predictions.bias";
    /// The decoder's weight: the word embedding table itself (tied), so never stored by us;
    /// checkpoints that carry a copy have it checked and dropped on reading.
    pub const DECODER: &str = "cls.predictions.decoder.weight";
    /// Newer `transformers` keep the decoder's bias under this name too, tied to [`BIAS`].
    pub const DECODER_BIAS: &str = "cls.predictions.decoder.bias";
}

/// A sequence classifier's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Head {
    /// DNABERT's and `BertForSequenceClassification`'s: `[CLS]` → pooler (dense + tanh) →
    /// dropout → `classifier`.
    Cls,
    /// BioNeMo's splice-site head: the centre token → `classifier.dense` (`hidden` units) +
    /// ReLU → dropout → `classifier.out_proj`.
    Centre { hidden: usize },
}

impl Head {
    /// The tensor names of the head's two linear layers.
    pub fn layers(&self) -> (&'static str, &'static str) {
        match self {
            Head::Cls => (POOLER, "classifier"),
            Head::Centre { .. } => ("classifier.dense", "classifier.out_proj"),
        }
    }

    /// The first layer's output width.
    pub fn width(&self, config: &BertConfig) -> usize {
        match self {
            Head::Cls => config.hidden_size,
            Head::Centre { hidden } => *hidden,
        }
    }

    /// The `architectures` entry of `config.json`. The centre head has no `transformers`
    /// class: its folders carry `modeling_dnabert.py`, named in `auto_map`.
    pub fn architecture(&self) -> &'static str {
        match self {
            Head::Cls => "BertForSequenceClassification",
            Head::Centre { .. } => "DnabertForCentreTokenClassification",
        }
    }
}

/// What a checkpoint holds besides the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The encoder alone (`BertModel`, its pooler not used).
    Encoder,
    /// `BertForMaskedLM`.
    Mlm,
    /// A sequence classifier with `labels` classes.
    Classifier { labels: usize, head: Head },
}

impl Layout {
    /// Every tensor of this layout, in the order of the flat parameter buffer.
    pub fn names(&self, config: &BertConfig) -> Vec<Named> {
        let h = config.hidden_size;
        let mut names = encoder(config);
        let linear = |names: &mut Vec<Named>, name: &str, out: usize, inp: usize| {
            names.push((format!("{name}.weight"), vec![out, inp]));
            names.push((format!("{name}.bias"), vec![out]));
        };
        match *self {
            Layout::Encoder => {}
            Layout::Mlm => {
                linear(&mut names, mlm::TRANSFORM, h, h);
                names.push((format!("{}.weight", mlm::TRANSFORM_LAYER_NORM), vec![h]));
                names.push((format!("{}.bias", mlm::TRANSFORM_LAYER_NORM), vec![h]));
                names.push((mlm::BIAS.into(), vec![config.vocab_size]));
            }
            Layout::Classifier { labels, head } => {
                let (first, second) = head.layers();
                let width = head.width(config);
                linear(&mut names, first, width, h);
                linear(&mut names, second, labels, width);
            }
        }
        names
    }

    /// The layout a checkpoint's (canonical) tensor names and shapes describe: a classifier
    /// by its head's tensors, an MLM by its transform, else the encoder alone.
    pub fn detect(shape: impl Fn(&str) -> Option<Vec<usize>>) -> Layout {
        let rows = |n: &str| shape(n).and_then(|s| s.first().copied());
        if let Some(labels) = rows("classifier.weight") {
            return Layout::Classifier {
                labels,
                head: Head::Cls,
            };
        }
        if let (Some(labels), Some(hidden)) = (
            rows("classifier.out_proj.weight"),
            rows("classifier.dense.weight"),
        ) {
            return Layout::Classifier {
                labels,
                head: Head::Centre { hidden },
            };
        }
        if shape(&format!("{}.weight", mlm::TRANSFORM)).is_some() {
            return Layout::Mlm;
        }
        Layout::Encoder
    }

    /// Whether a tensor of this layout belongs to its head (not to the encoder).
    pub fn is_head(name: &str) -> bool {
        !name.starts_with("bert.") || name.starts_with("bert.pooler.")
    }
}

/// The encoder's tensors: embeddings, then each layer.
pub fn encoder(config: &BertConfig) -> Vec<Named> {
    let (h, i, v) = (
        config.hidden_size,
        config.intermediate_size,
        config.vocab_size,
    );
    let mut names: Vec<Named> = vec![
        (embeddings::WORD.into(), vec![v, h]),
        (
            embeddings::POSITION.into(),
            vec![config.max_position_embeddings, h],
        ),
        (
            embeddings::TOKEN_TYPE.into(),
            vec![config.type_vocab_size, h],
        ),
        (format!("{}.weight", embeddings::LAYER_NORM), vec![h]),
        (format!("{}.bias", embeddings::LAYER_NORM), vec![h]),
    ];
    for l in 0..config.num_hidden_layers {
        let n = layer(l);
        for (name, out, inp) in [
            (n.query, h, Some(h)),
            (n.key, h, Some(h)),
            (n.value, h, Some(h)),
            (n.attention_output, h, Some(h)),
            (n.attention_layer_norm, h, None),
            (n.intermediate, i, Some(h)),
            (n.output, h, Some(i)),
            (n.output_layer_norm, h, None),
        ] {
            let weight = match inp {
                Some(inp) => vec![out, inp],
                None => vec![out],
            };
            names.push((format!("{name}.weight"), weight));
            names.push((format!("{name}.bias"), vec![out]));
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BertConfig {
        BertConfig {
            vocab_size: 69,
            hidden_size: 8,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 16,
            max_position_embeddings: 12,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
        }
    }

    #[test]
    fn each_layout_is_detected_from_its_own_names() {
        let c = config();
        for layout in [
            Layout::Encoder,
            Layout::Mlm,
            Layout::Classifier {
                labels: 3,
                head: Head::Cls,
            },
            Layout::Classifier {
                labels: 3,
                head: Head::Centre { hidden: 5 },
            },
        ] {
            let names = layout.names(&c);
            let found =
                Layout::detect(|n| names.iter().find(|(m, _)| m == n).map(|(_, s)| s.clone()));
            assert_eq!(found, layout);
        }
    }

    #[test]
    fn the_encoder_has_bert_s_sixteen_tensors_a_layer() {
        let c = config();
        let names = encoder(&c);
        assert_eq!(names.len(), 5 + 16 * c.num_hidden_layers);
        assert!(names.iter().all(|(n, _)| n.starts_with("bert.")));
        assert!(names.iter().all(|(n, _)| !Layout::is_head(n)));
        let cls = Layout::Classifier {
            labels: 2,
            head: Head::Cls,
        };
        let heads: Vec<_> = cls
            .names(&c)
            .into_iter()
            .filter(|(n, _)| Layout::is_head(n))
            .collect();
        assert_eq!(heads.len(), 4, "pooler and classifier: {heads:?}");
    }
}
