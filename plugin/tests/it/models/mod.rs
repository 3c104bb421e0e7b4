//! Real models in and out: checkpoints in every form DNABERT users have them (safetensors,
//! `pytorch_model.bin` in both torch.save formats, shards, f16/bf16), hostile ones refused;
//! models from the Hugging Face Hub through a stand-in on 127.0.0.1; and our folders as
//! `transformers` reads them.

pub mod checkpoints;
pub mod hub;
pub mod roundtrip;
