//! `pytorch_model.bin`, read without Python, in both formats `torch.save` writes:
//! - the zip format (PyTorch ≥ 1.6): `ARCHIVE/data.pkl`, the pickled state dict whose tensors
//!   point at storages `ARCHIVE/data/KEY`, stored uncompressed;
//! - the legacy format (before 1.6, and `_use_new_zipfile_serialization=False`; the 2020
//!   DNABERT checkpoints): a magic number, the protocol version and system info pickled one
//!   after the other, then the state dict, the list of storage keys, and each storage's
//!   element count (u64) followed by its bytes.
//!
//! The pickle goes through the restricted unpickler (`pickle.rs`), so no code runs. Every size
//! a file claims is checked against the bytes it has before anything is allocated for it: a
//! storage must be exactly as long as its element count says, and a tensor's view must lie
//! inside its storage.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::pickle::{self, Dtype, PidForm, TensorRef};
use super::RawTensor;

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// The legacy format's first pickle: protocol 2, LONG1 of 10 bytes, 0x1950a86a20f9469cfc6c.
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
const LEGACY_PROTOCOL: i64 = 1001;
/// `data.pkl` of a BERT state dict is tens of kilobytes; a larger one is not a state dict.
const MAX_PICKLE: u64 = 64 << 20;

/// Whether these first bytes open a `torch.save` file (either format).
pub fn is_torch(head: &[u8]) -> bool {
    head.starts_with(ZIP_MAGIC) || head.starts_with(&LEGACY_MAGIC[..4])
}

/// Every tensor of a `torch.save` file, by name, in the file's order.
pub fn read(path: &Path) -> Result<Vec<(String, RawTensor)>> {
    let head = crate::io_util::head(path, LEGACY_MAGIC.len())?;
    if head.starts_with(ZIP_MAGIC) {
        read_zip(path)
    } else if head.starts_with(LEGACY_MAGIC) {
        let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        read_legacy(&bytes)
    } else if is_tar(path) {
        bail!("a tar archive: torch.save before PyTorch 0.4 wrote this format, which is not read; re-save it with a recent PyTorch")
    } else {
        bail!("not a torch.save file (neither a zip archive nor the legacy pickle format)")
    }
    .with_context(|| format!("{}", path.display()))
}

fn is_tar(path: &Path) -> bool {
    crate::io_util::head(path, 263)
        .map(|h| h.len() == 263 && &h[257..262] == b"ustar")
        .unwrap_or(false)
}

fn read_zip(path: &Path) -> Result<Vec<(String, RawTensor)>> {
    let file = std::fs::File::open(path).context("cannot open")?;
    let file_len = file.metadata().context("cannot stat")?.len();
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| anyhow!("truncated or corrupt zip archive: {e}"))?;
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()?;
    let pkl = names
        .iter()
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .ok_or_else(|| anyhow!("a zip archive without data.pkl: not a torch.save checkpoint"))?
        .clone();
    let prefix = pkl.strip_suffix("data.pkl").unwrap_or(&pkl).to_owned();
    if let Some(order) = names.iter().find(|n| **n == format!("{prefix}byteorder")) {
        let order = read_entry(&mut zip, order, 16, file_len)?;
        if order != b"little" {
            bail!(
                "tensors stored {}-endian; only little-endian is read",
                String::from_utf8_lossy(&order)
            );
        }
    }
    let pickled = read_entry(&mut zip, &pkl, MAX_PICKLE, file_len)?;
    let state = pickle::load(&pickled, 0, PidForm::Zip).context("data.pkl")?;
    let tensors = state.tensors().context("data.pkl")?;
    // Each storage is read when first needed and dropped after its last tensor, so memory
    // holds one raw storage at a time beside the converted tensors.
    let mut uses: HashMap<String, usize> = HashMap::new();
    for (_, t) in &tensors {
        *uses.entry(t.storage.key.clone()).or_default() += 1;
    }
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let key = &t.storage.key;
        if !storages.contains_key(key) {
            let entry = format!("{prefix}data/{key}");
            let expected = storage_bytes(&t)?;
            let bytes = read_entry(&mut zip, &entry, expected as u64, file_len)
                .with_context(|| format!("storage of tensor '{name}'"))?;
            if bytes.len() != expected {
                bail!(
                    "tensor '{name}': storage {entry} holds {} bytes, but the pickle claims {expected}: truncated or hostile",
                    bytes.len()
                );
            }
            storages.insert(key.clone(), bytes);
        }
        let raw = view(&t, &storages[key]).with_context(|| format!("tensor '{name}'"))?;
        // Every key was counted in `uses` above; a missing one means "last use".
        let left = uses.get_mut(key).map_or(0, |n| {
            *n = n.saturating_sub(1);
            *n
        });
        if left == 0 {
            storages.remove(key);
        }
        out.push((name, raw));
    }
    Ok(out)
}

/// An entry's bytes, read only if it is stored uncompressed and no longer than `limit` and the
/// file itself (so a forged size allocates nothing). Reading to the end checks its CRC-32.
fn read_entry<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    limit: u64,
    file_len: u64,
) -> Result<Vec<u8>> {
    let mut entry = zip
        .by_name(name)
        .map_err(|e| anyhow!("zip entry {name}: {e}"))?;
    if entry.compression() != zip::CompressionMethod::Stored {
        bail!(
            "zip entry {name} is compressed ({:?}); torch.save stores entries uncompressed",
            entry.compression()
        );
    }
    let size = entry.size();
    if size > limit || size > file_len || entry.compressed_size() != size {
        bail!(
            "zip entry {name} claims {size} bytes (the file has {file_len}, at most {limit} expected): truncated or hostile"
        );
    }
    let mut buf = Vec::with_capacity(size as usize);
    entry
        .read_to_end(&mut buf)
        .map_err(|e| anyhow!("zip entry {name}: {e} (truncated or corrupt)"))?;
    Ok(buf)
}

/// The bytes a tensor's storage must have: its element count times the element size.
fn storage_bytes(t: &TensorRef) -> Result<usize> {
    t.storage
        .numel
        .checked_mul(t.storage.dtype.size())
        .ok_or_else(|| anyhow!("a storage of {} elements overflows", t.storage.numel))
}

/// The tensor's elements, contiguous, as f32 (floats widened or narrowed; integer tensors —
/// `position_ids` buffers — come back as [`RawTensor::NonFloat`], their bytes unread).
fn view(t: &TensorRef, storage: &[u8]) -> Result<RawTensor> {
    let numel = t
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| anyhow!("shape {:?} overflows", t.shape))?;
    let dtype = t.storage.dtype;
    let elems = storage.len() / dtype.size();
    let base = t
        .storage
        .offset
        .checked_add(t.offset)
        .ok_or_else(|| anyhow!("storage offset overflows"))?;
    if numel > 0 {
        // The last element the view touches must lie inside the storage.
        let last = t
            .shape
            .iter()
            .zip(&t.stride)
            .try_fold(base, |a, (&d, &s)| a.checked_add((d - 1).checked_mul(s)?))
            .ok_or_else(|| anyhow!("view overflows"))?;
        if last >= elems {
            bail!(
                "view (offset {base}, shape {:?}, stride {:?}) reaches element {last} of a storage of {elems}",
                t.shape,
                t.stride
            );
        }
    }
    if !dtype.is_float() {
        return Ok(RawTensor::NonFloat {
            shape: t.shape.clone(),
            dtype: format!("{dtype:?}"),
        });
    }
    let size = dtype.size();
    let at = |i: usize| -> f32 {
        let b = &storage[i * size..(i + 1) * size];
        match dtype {
            Dtype::F32 => b.first_chunk().map_or(f32::NAN, |c| f32::from_le_bytes(*c)),
            Dtype::F64 => b.first_chunk().map_or(f64::NAN, |c| f64::from_le_bytes(*c)) as f32,
            Dtype::F16 => super::f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            Dtype::Bf16 => super::bf16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            _ => unreachable!("integer dtypes returned above"),
        }
    };
    let contiguous = {
        let mut expect = 1;
        let mut ok = true;
        for (&d, &s) in t.shape.iter().zip(&t.stride).rev() {
            ok &= d <= 1 || s == expect;
            expect *= d;
        }
        ok
    };
    let data = if contiguous {
        // One pass over the bytes, as safetensors are read (the bulk of a checkpoint).
        let bytes = &storage[base * size..(base + numel) * size];
        let dtype = match dtype {
            Dtype::F32 => safetensors::Dtype::F32,
            Dtype::F64 => safetensors::Dtype::F64,
            Dtype::F16 => safetensors::Dtype::F16,
            _ => safetensors::Dtype::BF16,
        };
        super::to_f32(dtype, bytes)?
    } else {
        // A strided view (a transposed or sliced tensor saved as is): walk its indices.
        let mut data = Vec::with_capacity(numel);
        let mut idx = vec![0usize; t.shape.len()];
        for _ in 0..numel {
            let off: usize = base + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
            data.push(at(off));
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < t.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        data
    };
    Ok(RawTensor::Float {
        shape: t.shape.clone(),
        data,
    })
}

fn read_legacy(bytes: &[u8]) -> Result<Vec<(String, RawTensor)>> {
    let mut at = LEGACY_MAGIC.len();
    let protocol = pickle::load(bytes, at, PidForm::Legacy).context("protocol version")?;
    if protocol.int() != Some(LEGACY_PROTOCOL) {
        bail!(
            "legacy torch.save protocol {:?}; only {LEGACY_PROTOCOL} is read",
            protocol.int()
        );
    }
    at = protocol.end;
    let info = pickle::load(bytes, at, PidForm::Legacy).context("system info")?;
    if info.flag("little_endian") == Some(false) {
        bail!("saved on a big-endian machine; only little-endian checkpoints are read");
    }
    at = info.end;
    let state = pickle::load(bytes, at, PidForm::Legacy).context("state dict")?;
    let tensors = state.tensors().context("state dict")?;
    let dtypes: HashMap<&str, Dtype> = state
        .storages()
        .into_iter()
        .map(|s| (s.key.as_str(), s.dtype))
        .collect();
    at = state.end;
    let keys = pickle::load(bytes, at, PidForm::Legacy).context("storage keys")?;
    at = keys.end;
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for key in keys.strings()? {
        let dtype = *dtypes
            .get(key.as_str())
            .ok_or_else(|| anyhow!("storage {key} listed but never referred to"))?;
        let header = bytes
            .get(at..)
            .and_then(|b| b.first_chunk())
            .ok_or_else(|| anyhow!("storage {key}: the file ends before it (truncated)"))?;
        let numel = u64::from_le_bytes(*header);
        at += 8;
        let len = numel
            .checked_mul(dtype.size() as u64)
            .filter(|&n| n <= (bytes.len() - at) as u64)
            .ok_or_else(|| {
                anyhow!(
                    "storage {key} claims {numel} elements, more than the {} bytes left: truncated or hostile",
                    bytes.len() - at
                )
            })? as usize;
        storages.insert(key, &bytes[at..at + len]);
        at += len;
    }
    tensors
        .into_iter()
        .map(|(name, t)| {
            let storage = storages
                .get(&t.storage.key)
                .ok_or_else(|| anyhow!("tensor '{name}': storage {} is missing", t.storage.key))?;
            let raw = view(&t, storage).with_context(|| format!("tensor '{name}'"))?;
            Ok((name, raw))
        })
        .collect()
}
