//! PyTorch checkpoints (`torch.save`, zip format since PyTorch 1.6) read without Python.
//!
//! The archive holds `<prefix>/data.pkl` (a pickle whose tensors are
//! `torch._utils._rebuild_tensor_v2(persistent_id('storage', <dtype>Storage, key, location, numel),
//! offset, size, stride, …)`) and one raw little-endian file per storage, `<prefix>/data/<key>`.

use std::io::Read;
use std::path::Path;

use tch::{Kind, Tensor};

use super::Value;
use crate::error::{Error, Result};

/// Tensors with their state-dict keys.
pub type NamedTensors = Vec<(String, Tensor)>;

/// A tensor inside a checkpoint, before its storage is read.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// Storage file key (`data/<key>`).
    pub storage_key: String,
    /// Element type.
    pub kind: Kind,
    /// Offset into the storage, in elements.
    pub offset: i64,
    /// Shape.
    pub size: Vec<i64>,
    /// Strides, in elements.
    pub stride: Vec<i64>,
}

fn storage_kind(class: &str) -> Option<Kind> {
    Some(match class {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

fn ints(v: &Value) -> Option<Vec<i64>> {
    v.as_items()?.iter().map(Value::as_int).collect()
}

/// Interprets `_rebuild_tensor_v2` / `_rebuild_parameter` calls; everything else stays generic.
fn torch_reducer(module: &str, name: &str, args: &Value) -> Option<Value> {
    let items = args.as_items()?;
    match (module, name) {
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            let Value::PersistentId(pid) = items.first()? else {
                return None;
            };
            let pid = pid.as_items()?;
            // ('storage', Global(torch, FloatStorage), key, location, numel)
            let Value::Global(_, class) = pid.get(1)? else {
                return None;
            };
            let kind = storage_kind(class)?;
            let storage_key = match pid.get(2)? {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                _ => return None,
            };
            Some(Value::Tensor(TensorRef {
                storage_key,
                kind,
                offset: items.get(1)?.as_int()?,
                size: ints(items.get(2)?)?,
                stride: ints(items.get(3)?)?,
            }))
        }
        ("torch._utils", "_rebuild_parameter")
        | ("torch._utils", "_rebuild_parameter_with_state") => match items.first()? {
            t @ Value::Tensor(_) => Some(t.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Checks a tensor's view against its storage of `numel` elements before libtorch sees it: sizes,
/// strides and offset non-negative, every index inside the storage (checked arithmetic: a wrapped
/// product would pass the bound), and no more elements than the storage holds (a stride-0 view of
/// a huge shape would otherwise be materialised by `contiguous()`).
fn check_view(t: &TensorRef, numel: i64) -> std::result::Result<(), String> {
    if t.size.len() != t.stride.len() {
        return Err(format!(
            "{} sizes but {} strides",
            t.size.len(),
            t.stride.len()
        ));
    }
    if t.offset < 0 || t.size.iter().chain(&t.stride).any(|&v| v < 0) {
        return Err("negative size, stride or offset".into());
    }
    let elements = t
        .size
        .iter()
        .try_fold(1i64, |acc, &s| acc.checked_mul(s))
        .ok_or("element count overflows")?;
    if elements == 0 {
        return Ok(());
    }
    if elements > numel {
        return Err(format!("{elements} elements from a storage of {numel}"));
    }
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&s, &st)| {
            (s - 1).checked_mul(st).and_then(|d| acc.checked_add(d))
        })
        .ok_or("index arithmetic overflows")?;
    if last >= numel {
        return Err(format!("reads element {last}"));
    }
    Ok(())
}

/// An opened checkpoint: the unpickled object tree plus access to the storages.
pub struct TorchCheckpoint {
    archive: zip::ZipArchive<fs_err::File>,
    prefix: String,
    /// The unpickled root object.
    pub root: Value,
    path: std::path::PathBuf,
}

impl TorchCheckpoint {
    /// Opens a `torch.save` zip file and unpickles `data.pkl`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = fs_err::File::open(path)?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| {
            Error::input_caused(
                format!("`{}` is not a PyTorch zip checkpoint", path.display()),
                e,
            )
            .with_hint(
                "files saved by PyTorch < 1.6 (legacy tar/pickle format): re-save with \
                 `torch.save(torch.load(f), g)` in a current PyTorch",
            )
        })?;
        let pkl_name = (0..archive.len())
            .filter_map(|i| {
                archive
                    .name_for_index(i)
                    .and_then(|r| r.ok())
                    .map(|n| n.into_owned())
            })
            .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
            .ok_or_else(|| Error::format(format!("`{}` has no data.pkl", path.display())))?;
        let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
        let mut bytes = Vec::new();
        archive
            .by_name(&pkl_name)
            .map_err(|e| Error::format_caused(format!("`{}`", path.display()), e))?
            .read_to_end(&mut bytes)?;
        let root = super::load(&bytes, &mut torch_reducer)
            .map_err(|e| Error::format_caused(format!("`{}`: data.pkl", path.display()), e))?;
        Ok(TorchCheckpoint {
            archive,
            prefix,
            root,
            path: path.to_path_buf(),
        })
    }

    /// Materialises a tensor (contiguous, on CPU).
    pub fn tensor(&mut self, t: &TensorRef) -> Result<Tensor> {
        let name = format!("{}data/{}", self.prefix, t.storage_key);
        let mut bytes = Vec::new();
        self.archive
            .by_name(&name)
            .map_err(|e| Error::format_caused(format!("`{}`: {name}", self.path.display()), e))?
            .read_to_end(&mut bytes)?;
        let elem = t.kind.elt_size_in_bytes();
        let numel = (bytes.len() / elem) as i64;
        if let Err(why) = check_view(t, numel) {
            return Err(Error::format(format!(
                "`{}`: tensor on storage {} ({numel} elements) is not a valid view: {why}",
                self.path.display(),
                t.storage_key
            )));
        }
        let storage = Tensor::f_from_data_size(&bytes, &[numel], t.kind)?;
        Ok(storage
            .f_as_strided(&t.size, &t.stride, t.offset)?
            .f_contiguous()?)
    }

    /// The state dict: `root['model']`, else `root['module']` (DeepSpeed), else `root` itself (a bare
    /// state dict), as the reference's loaders do. Returns `(key, tensor)` in file order, plus the names
    /// of non-tensor entries that were skipped.
    pub fn state_dict(&mut self) -> Result<(NamedTensors, Vec<String>)> {
        let dict = ["model", "module"]
            .iter()
            .find_map(|k| self.root.get(k))
            .unwrap_or_else(|| self.root.clone());
        let entries = dict.as_dict().ok_or_else(|| {
            Error::format(format!(
                "`{}`: expected a state dict (or a dict with `model`/`module`), found {}",
                self.path.display(),
                dict.type_name()
            ))
        })?;
        let mut tensors = Vec::new();
        let mut skipped = Vec::new();
        for (k, v) in entries {
            let Some(key) = k.as_str() else { continue };
            match &v {
                Value::Tensor(t) => tensors.push((key.to_string(), self.tensor(t)?)),
                _ => skipped.push(key.to_string()),
            }
        }
        Ok((tensors, skipped))
    }
}

#[cfg(test)]
mod view_tests {
    use super::*;

    fn view(size: &[i64], stride: &[i64], offset: i64) -> TensorRef {
        TensorRef {
            storage_key: "0".into(),
            kind: Kind::Float,
            offset,
            size: size.to_vec(),
            stride: stride.to_vec(),
        }
    }

    #[test]
    fn views_outside_their_storage_are_refused_without_overflow() {
        assert!(check_view(&view(&[2, 3], &[3, 1], 0), 6).is_ok());
        assert!(check_view(&view(&[3, 2], &[1, 3], 0), 6).is_ok()); // transposed
        assert!(check_view(&view(&[0, 5], &[5, 1], 0), 0).is_ok()); // empty
        assert!(check_view(&view(&[2, 3], &[3, 1], 1), 6).is_err()); // one past the end
        assert!(check_view(&view(&[4], &[-1], 3), 4).is_err()); // negative stride
        assert!(check_view(&view(&[1 << 40], &[0], 0), 4).is_err()); // stride-0 bomb
        let huge = view(&[i64::MAX / 2, 4], &[4, 1], 0);
        assert!(check_view(&huge, 8).is_err()); // element count overflows
        let wrap = view(&[2], &[i64::MAX], 0);
        assert!(check_view(&wrap, 8).is_err()); // one element past i64 would wrap
        assert!(check_view(&view(&[2], &[1, 1], 0), 8).is_err());
    }
}
