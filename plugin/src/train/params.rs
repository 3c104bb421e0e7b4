//! Named tensors in one flat buffer, under their Hugging Face names, so gradients and optimizer
//! moments share one layout and checkpoints are a walk over names.

use std::collections::HashMap;
use std::ops::Range;

use crate::config::BertConfig;

#[derive(Debug, Clone)]
pub struct Params {
    pub data: Vec<f32>,
    pub names: Vec<(String, Vec<usize>)>,
    ranges: HashMap<String, Range<usize>>,
}

impl Params {
    /// Zeros in the given layout.
    pub fn new(names: Vec<(String, Vec<usize>)>) -> Self {
        let mut ranges = HashMap::new();
        let mut at = 0;
        for (n, shape) in &names {
            let len: usize = shape.iter().product();
            ranges.insert(n.clone(), at..at + len);
            at += len;
        }
        Self {
            data: vec![0.0; at],
            names,
            ranges,
        }
    }

    /// Zeros in the layout of `BertForMaskedLM` for `config` (decoder weight tied).
    pub fn bert_mlm(config: &BertConfig) -> Self {
        let (h, v) = (config.hidden_size, config.vocab_size);
        let mut names = encoder_names(config);
        names.push(("cls.predictions.transform.dense.weight".into(), vec![h, h]));
        names.push(("cls.predictions.transform.dense.bias".into(), vec![h]));
        names.push(("cls.predictions.transform.LayerNorm.weight".into(), vec![h]));
        names.push(("cls.predictions.transform.LayerNorm.bias".into(), vec![h]));
        names.push(("cls.predictions.bias".into(), vec![v]));
        Self::new(names)
    }

    /// Zeros in the layout of `BertForSequenceClassification` with `labels` classes.
    pub fn bert_classifier(config: &BertConfig, labels: usize) -> Self {
        let h = config.hidden_size;
        let mut names = encoder_names(config);
        names.push(("bert.pooler.dense.weight".into(), vec![h, h]));
        names.push(("bert.pooler.dense.bias".into(), vec![h]));
        names.push(("classifier.weight".into(), vec![labels, h]));
        names.push(("classifier.bias".into(), vec![labels]));
        Self::new(names)
    }

    /// Zeros in the same layout.
    pub fn zeros_like(&self) -> Self {
        Self {
            data: vec![0.0; self.data.len()],
            names: self.names.clone(),
            ranges: self.ranges.clone(),
        }
    }

    pub fn range(&self, name: &str) -> Range<usize> {
        self.ranges
            .get(name)
            .unwrap_or_else(|| panic!("no parameter named {name}"))
            .clone()
    }

    pub fn get(&self, name: &str) -> &[f32] {
        &self.data[self.range(name)]
    }

    pub fn get_mut(&mut self, name: &str) -> &mut [f32] {
        let r = self.range(name);
        &mut self.data[r]
    }

    /// The gradients of a weight and its bias, `{name}.weight` and `{name}.bias`, at once.
    pub fn weight_and_bias_mut(&mut self, name: &str) -> (&mut [f32], &mut [f32]) {
        let (w, b) = (
            self.range(&format!("{name}.weight")),
            self.range(&format!("{name}.bias")),
        );
        assert!(
            w.end <= b.start,
            "{name}: a weight precedes its bias in every layout here"
        );
        let (lo, hi) = self.data.split_at_mut(b.start);
        (&mut lo[w], &mut hi[..b.len()])
    }

    /// `self += w · other`, tensor by tensor (same layout).
    pub fn add_scaled(&mut self, other: &Params, w: f32) {
        assert_eq!(self.data.len(), other.data.len(), "layouts differ");
        self.data
            .iter_mut()
            .zip(&other.data)
            .for_each(|(a, b)| *a += w * b);
    }

    /// Whether AdamW decays this tensor: not biases nor LayerNorm parameters (BERT's rule).
    pub fn decays(name: &str) -> bool {
        !(name.ends_with(".bias") || name.contains("LayerNorm"))
    }
}

/// The encoder's tensors, under `bert.`.
pub fn encoder_names(config: &BertConfig) -> Vec<(String, Vec<usize>)> {
    let (h, i, v) = (
        config.hidden_size,
        config.intermediate_size,
        config.vocab_size,
    );
    let mut names: Vec<(String, Vec<usize>)> = vec![
        ("bert.embeddings.word_embeddings.weight".into(), vec![v, h]),
        (
            "bert.embeddings.position_embeddings.weight".into(),
            vec![config.max_position_embeddings, h],
        ),
        (
            "bert.embeddings.token_type_embeddings.weight".into(),
            vec![config.type_vocab_size, h],
        ),
        ("bert.embeddings.LayerNorm.weight".into(), vec![h]),
        ("bert.embeddings.LayerNorm.bias".into(), vec![h]),
    ];
    for l in 0..config.num_hidden_layers {
        let p = format!("bert.encoder.layer.{l}");
        for (n, shape) in [
            ("attention.self.query", vec![h, h]),
            ("attention.self.key", vec![h, h]),
            ("attention.self.value", vec![h, h]),
            ("attention.output.dense", vec![h, h]),
            ("attention.output.LayerNorm", vec![h]),
            ("intermediate.dense", vec![i, h]),
            ("output.dense", vec![h, i]),
            ("output.LayerNorm", vec![h]),
        ] {
            let out = shape[0];
            names.push((format!("{p}.{n}.weight"), shape));
            names.push((format!("{p}.{n}.bias"), vec![out]));
        }
    }
    names
}
