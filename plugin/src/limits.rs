//! The bounds every number from a user's file is checked against before anything is allocated
//! or run: a model's size against the machine's memory, the training keys' ranges, the upper
//! bounds that keep a typo from becoming a hang. One place, so `dnabert config-reference` and
//! the errors agree. Each check names the key it read.

use std::fmt::Debug;

use anyhow::{bail, Result};

/// Upper bounds on counts (documented in the config reference): a value past one is a typo,
/// not a run, and would otherwise hang (a loop to 2^53) or abort (an allocation of terabytes).
pub const MAX_STEPS: u64 = 1_000_000_000;
pub const MAX_BATCH: usize = 65_536;
pub const MAX_THREADS: usize = 4_096;
pub const MAX_VALIDATION_BATCHES: usize = 1_000_000;
pub const MAX_LABELS: usize = 65_536;
pub const MAX_EPOCHS: usize = 1_000_000;

/// The machine's memory in bytes (`MemTotal` of /proc/meminfo), where it can be read.
pub fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuses `bytes` (None: past u128) for `what` when the machine has less memory than that.
pub fn check_memory(what: &str, bytes: Option<u128>) -> Result<()> {
    let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
    match (bytes, machine_memory().map(u128::from)) {
        (None, _) => bail!("{what}: the size overflows 128 bits"),
        (Some(b), Some(have)) if b > have => bail!(
            "{what} needs {:.1} GiB, more than this machine's {:.1} GiB",
            gib(b),
            gib(have)
        ),
        _ => Ok(()),
    }
}

/// `x` is finite and in `lo..=hi` (or `lo..hi` with `open_hi`), else an error naming `key`
/// and the value as the file gave it (`{:?}`: 1e30, not thirty digits).
pub fn in_range<T: Into<f64> + Debug + Copy>(
    key: &str,
    x: T,
    lo: f64,
    hi: f64,
    open_hi: bool,
) -> Result<()> {
    let v: f64 = x.into();
    let ok = v.is_finite() && v >= lo && if open_hi { v < hi } else { v <= hi };
    if !ok {
        let close = if open_hi { ")" } else { "]" };
        bail!("{key} = {x:?}: must be a finite number in [{lo}, {hi}{close}");
    }
    Ok(())
}

/// `x` is finite and > 0 and ≤ `hi`.
pub fn positive<T: Into<f64> + Debug + Copy>(key: &str, x: T, hi: f64) -> Result<()> {
    let v: f64 = x.into();
    if !(v.is_finite() && v > 0.0 && v <= hi) {
        bail!("{key} = {x:?}: must be a finite number in (0, {hi}]");
    }
    Ok(())
}

/// `1 ≤ n ≤ max`.
pub fn count(key: &str, n: u64, max: u64) -> Result<()> {
    if n == 0 || n > max {
        bail!("{key} = {n}: must be between 1 and {max}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_key_and_refuse_non_finite_numbers() {
        assert!(in_range("p", 0.5, 0.0, 1.0, true).is_ok());
        assert!(in_range("p", 1.0, 0.0, 1.0, true).is_err());
        let e = in_range("training.dropout", f64::NAN, 0.0, 1.0, true).unwrap_err();
        assert!(e.to_string().contains("training.dropout = NaN"), "{e}");
        let e = positive("lr", 1e30f32, 1.0).unwrap_err();
        assert!(e.to_string().starts_with("lr = 1e30:"), "{e}");
        assert!(positive("lr", 1e30, 1.0).is_err());
        assert!(positive("lr", 0.0, 1.0).is_err());
        assert!(positive("lr", f64::INFINITY, 1.0).is_err());
        assert!(positive("lr", 3e-4, 1.0).is_ok());
        assert!(count("steps", 0, 10).is_err());
        assert!(count("steps", 1 << 53, MAX_STEPS).is_err());
        assert!(count("steps", 10, 10).is_ok());
    }

    #[test]
    fn a_size_past_the_machine_or_past_64_bits_is_refused() {
        assert!(check_memory("x", None).is_err());
        if let Some(have) = machine_memory() {
            assert!(check_memory("x", Some(have as u128 + 1)).is_err());
            assert!(check_memory("x", Some(1 << 20)).is_ok());
        }
    }
}
