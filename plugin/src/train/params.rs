//! Named tensors in one flat buffer, under their Hugging Face names, so gradients and optimizer
//! moments share one layout and checkpoints are a walk over names.

use std::collections::HashMap;
use std::ops::Range;

use super::backend::Backend;
use super::cpu::Cpu;
use crate::config::BertConfig;
use crate::layout::{Head, Layout};

/// A model's tensors in one flat buffer of a backend (host memory for [`Cpu`]).
pub struct Params<B: Backend = Cpu> {
    pub data: B::Buf,
    pub names: Vec<(String, Vec<usize>)>,
    ranges: HashMap<String, Range<usize>>,
}

impl<B: Backend> Clone for Params<B> {
    fn clone(&self) -> Self {
        Self {
            data: self.data.clone(),
            names: self.names.clone(),
            ranges: self.ranges.clone(),
        }
    }
}

impl Params<Cpu> {
    /// Zeros in the given layout, on the host.
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

    /// Zeros in a model's layout ([`Layout::names`]).
    pub fn for_layout(layout: Layout, config: &BertConfig) -> Self {
        Self::new(layout.names(config))
    }

    /// Zeros in the layout of the encoder alone (`BertModel` without its pooler).
    pub fn bert_encoder(config: &BertConfig) -> Self {
        Self::for_layout(Layout::Encoder, config)
    }

    /// Zeros in the layout of `BertForMaskedLM` for `config` (decoder weight tied).
    pub fn bert_mlm(config: &BertConfig) -> Self {
        Self::for_layout(Layout::Mlm, config)
    }

    /// Zeros in the layout of a sequence classifier with `labels` classes and the given head:
    /// `BertForSequenceClassification`'s for [`Head::Cls`].
    pub fn bert_classifier(config: &BertConfig, labels: usize, head: Head) -> Self {
        Self::for_layout(Layout::Classifier { labels, head }, config)
    }

    /// Whether AdamW decays this tensor: not biases nor LayerNorm parameters (BERT's rule).
    pub fn decays(name: &str) -> bool {
        !(name.ends_with(".bias") || name.contains("LayerNorm"))
    }

    /// A copy in a backend's memory.
    pub fn to_backend<B: Backend>(&self, be: &B) -> Params<B> {
        Params {
            data: be.upload(&self.data),
            names: self.names.clone(),
            ranges: self.ranges.clone(),
        }
    }
}

impl<B: Backend> Params<B> {
    /// A host copy (for checkpoints).
    pub fn to_host(&self, be: &B) -> Params<Cpu> {
        Params {
            data: be.download(&self.data),
            names: self.names.clone(),
            ranges: self.ranges.clone(),
        }
    }

    /// Zeros in the same layout.
    pub fn zeros_like(&self, be: &B) -> Self {
        Self {
            data: be.zeros(B::len(&self.data)),
            names: self.names.clone(),
            ranges: self.ranges.clone(),
        }
    }

    pub fn len(&self) -> usize {
        B::len(&self.data)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn has(&self, name: &str) -> bool {
        self.ranges.contains_key(name)
    }

    // The names asked for here are the layout's own constants (a checkpoint's names are
    // checked against the layout when it is loaded), so an unknown one is a bug, not input.
    #[allow(clippy::panic, reason = "an unknown name is a bug in the caller")]
    pub fn range(&self, name: &str) -> Range<usize> {
        self.ranges
            .get(name)
            .unwrap_or_else(|| panic!("no parameter named {name}"))
            .clone()
    }

    pub fn get(&self, name: &str) -> B::View<'_> {
        B::slice(&self.data, self.range(name))
    }

    pub fn get_mut(&mut self, name: &str) -> B::ViewMut<'_> {
        let r = self.range(name);
        B::slice_mut(&mut self.data, r)
    }

    /// Several tensors at once, mutably; `names` must come in layout order.
    #[allow(clippy::panic, reason = "an unknown name is a bug in the caller")]
    pub fn many_mut(&mut self, names: &[&str]) -> Vec<B::ViewMut<'_>> {
        let mut out = Vec::with_capacity(names.len());
        let mut rest = B::all_mut(&mut self.data);
        let mut at = 0;
        for n in names {
            let r = self
                .ranges
                .get(*n)
                .unwrap_or_else(|| panic!("no parameter named {n}"));
            assert!(
                r.start >= at,
                "{n}: tensors must be asked for in layout order"
            );
            let (_, tail) = B::split_mut(rest, r.start - at);
            let (mid, tail) = B::split_mut(tail, r.len());
            out.push(mid);
            rest = tail;
            at = r.end;
        }
        out
    }

    /// The gradients of a weight and its bias, `{name}.weight` and `{name}.bias`, at once.
    pub fn weight_and_bias_mut(&mut self, name: &str) -> (B::ViewMut<'_>, B::ViewMut<'_>) {
        self.two_mut(&format!("{name}.weight"), &format!("{name}.bias"))
    }

    /// Two tensors at once, mutably, in layout order.
    pub fn two_mut(&mut self, a: &str, b: &str) -> (B::ViewMut<'_>, B::ViewMut<'_>) {
        let [a, b] = self.array_mut([a, b]);
        (a, b)
    }

    /// `N` tensors at once, mutably, in layout order.
    #[allow(clippy::expect_used, reason = "many_mut returns one view per name")]
    pub fn array_mut<const N: usize>(&mut self, names: [&str; N]) -> [B::ViewMut<'_>; N] {
        let views = self.many_mut(&names);
        views
            .try_into()
            .ok()
            .expect("many_mut returns one view per name")
    }

    /// `self += w · other` (same layout).
    pub fn add_scaled(&mut self, be: &B, other: &Params<B>, w: f32) {
        be.add_scaled(B::all_mut(&mut self.data), B::all(&other.data), w);
    }

    /// The L2 norm of all tensors together.
    pub fn norm(&self, be: &B) -> f32 {
        be.sum_squares(B::all(&self.data)).sqrt() as f32
    }

    pub fn scale(&mut self, be: &B, s: f32) {
        be.scale(B::all_mut(&mut self.data), s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `BertConfig::param_count`, which bounds a model before it is allocated, counts what
    /// the MLM layout allocates.
    #[test]
    fn the_config_counts_the_mlm_layouts_parameters() {
        let mut c = crate::cuda::selftest::bench::dnabert_base();
        assert_eq!(c.param_count(), Some(Params::bert_mlm(&c).len() as u128));
        c.num_hidden_layers = 2;
        c.max_position_embeddings = 100;
        assert_eq!(c.param_count(), Some(Params::bert_mlm(&c).len() as u128));
        c.hidden_size = usize::MAX;
        c.intermediate_size = usize::MAX;
        c.num_hidden_layers = usize::MAX;
        assert_eq!(c.param_count(), None);
    }
}
