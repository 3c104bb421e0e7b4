//! Checkpoint names brought to the canonical form of [`crate::layout`].

use std::collections::HashMap;

use anyhow::{bail, Result};

use super::{RawTensor, Tensor};
use crate::layout::{embeddings, mlm};

type Canonical = (
    HashMap<String, Tensor>,
    HashMap<String, (Vec<usize>, String)>,
);

/// The canonical name of a checkpoint's tensor, or `None` for a buffer that carries no weight.
fn canonical_name(name: &str) -> Option<String> {
    // `torch.nn.DataParallel` saves its module's tensors under `module.`.
    let name = name.strip_prefix("module.").unwrap_or(name);
    if name.ends_with("position_ids") {
        return None; // a buffer of 0..max_positions, rebuilt by every implementation
    }
    let mut n = if ["embeddings.", "encoder.", "pooler."]
        .iter()
        .any(|p| name.starts_with(p))
    {
        format!("bert.{name}") // a bare `BertModel`
    } else {
        name.to_owned()
    };
    if n.contains("LayerNorm") {
        // TensorFlow-era checkpoints name LayerNorm's parameters gamma and beta.
        if let Some(stem) = n.strip_suffix(".gamma") {
            n = format!("{stem}.weight");
        } else if let Some(stem) = n.strip_suffix(".beta") {
            n = format!("{stem}.bias");
        }
    }
    Some(n)
}

pub(super) fn canonical(raw: Vec<(String, RawTensor)>) -> Result<Canonical> {
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut non_float = HashMap::new();
    let mut origin: HashMap<String, String> = HashMap::new();
    for (name, t) in raw {
        let Some(canon) = canonical_name(&name) else {
            continue;
        };
        if let Some(first) = origin.insert(canon.clone(), name.clone()) {
            bail!("tensors '{first}' and '{name}' are both '{canon}'");
        }
        match t {
            RawTensor::Float { shape, data } => {
                tensors.insert(canon, Tensor { shape, data });
            }
            RawTensor::NonFloat { shape, dtype } => {
                non_float.insert(canon, (shape, dtype));
            }
        }
    }
    // The tied decoder: a stored copy of the word embeddings (and of the decoder's bias) is
    // dropped once checked equal; a decoder that differs stays, and the MLM loader refuses it.
    let same = |a: &str, b: &str, t: &HashMap<String, Tensor>| match (t.get(a), t.get(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    };
    if same(mlm::DECODER, embeddings::WORD, &tensors) {
        tensors.remove(mlm::DECODER);
    }
    if same(mlm::DECODER_BIAS, mlm::BIAS, &tensors) {
        tensors.remove(mlm::DECODER_BIAS);
    } else if !tensors.contains_key(mlm::BIAS) {
        if let Some(b) = tensors.remove(mlm::DECODER_BIAS) {
            tensors.insert(mlm::BIAS.into(), b);
        }
    }
    Ok((tensors, non_float))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(shape: &[usize], v: f32) -> RawTensor {
        RawTensor::Float {
            shape: shape.to_vec(),
            data: vec![v; shape.iter().product()],
        }
    }

    #[test]
    fn every_form_of_a_name_comes_to_the_canonical_one() {
        for (given, canon) in [
            (
                "bert.embeddings.LayerNorm.weight",
                Some("bert.embeddings.LayerNorm.weight"),
            ),
            (
                "embeddings.LayerNorm.gamma",
                Some("bert.embeddings.LayerNorm.weight"),
            ),
            (
                "encoder.layer.0.output.LayerNorm.beta",
                Some("bert.encoder.layer.0.output.LayerNorm.bias"),
            ),
            (
                "module.bert.pooler.dense.bias",
                Some("bert.pooler.dense.bias"),
            ),
            ("pooler.dense.weight", Some("bert.pooler.dense.weight")),
            ("classifier.weight", Some("classifier.weight")),
            ("bert.embeddings.position_ids", None),
            ("embeddings.position_ids", None),
        ] {
            assert_eq!(canonical_name(given).as_deref(), canon, "{given}");
        }
    }

    #[test]
    fn a_tied_decoder_is_dropped_and_an_untied_one_kept() {
        let raw = vec![
            (embeddings::WORD.to_string(), f(&[4, 2], 1.0)),
            (mlm::DECODER.to_string(), f(&[4, 2], 1.0)),
            (mlm::DECODER_BIAS.to_string(), f(&[4], 0.5)),
            (
                "bert.embeddings.position_ids".to_string(),
                RawTensor::NonFloat {
                    shape: vec![1, 8],
                    dtype: "I64".into(),
                },
            ),
        ];
        let (t, non_float) = canonical(raw).unwrap();
        assert!(!t.contains_key(mlm::DECODER));
        assert_eq!(
            t[mlm::BIAS].data,
            vec![0.5; 4],
            "the decoder's bias is the head's bias"
        );
        assert!(non_float.is_empty(), "position_ids dropped");
        let raw = vec![
            (embeddings::WORD.to_string(), f(&[4, 2], 1.0)),
            (mlm::DECODER.to_string(), f(&[4, 2], 2.0)),
        ];
        assert!(canonical(raw).unwrap().0.contains_key(mlm::DECODER));
    }

    #[test]
    fn two_names_for_one_tensor_are_refused() {
        let raw = vec![
            ("bert.pooler.dense.bias".to_string(), f(&[2], 0.0)),
            ("pooler.dense.bias".to_string(), f(&[2], 0.0)),
        ];
        let err = canonical(raw).err().unwrap().to_string();
        assert!(err.contains("'pooler.dense.bias'"), "{err}");
    }
}
