#![no_main]
//! The pretrain and finetune YAML configs (alias bombs included), loaded and range-checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = dnabert_fuzz::as_file("config.yaml", data);
    if let Ok(c) = dnabert::train::pretrain::PretrainConfig::load(&path) {
        let _ = c.check();
    }
    if let Ok(c) = dnabert::train::finetune::FinetuneConfig::load(&path) {
        let _ = c.check();
    }
});
