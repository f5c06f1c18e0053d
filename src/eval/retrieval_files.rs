//! The inputs of `mplug score retrieval`: the two score matrices and which texts belong to which
//! image. The reference computes them in-process and never writes them; `mplug eval retrieval
//! --save-scores` writes `scores.safetensors` (`scores_i2t` `[images, texts]`, `scores_t2i`
//! `[texts, images]`) and `index.json` (`img2txt`, `txt2img`), and a user of the original code can
//! save its numpy matrices under the same names with `safetensors.numpy.save_file`.

use std::path::Path;

use serde_json::Value;

use super::results::{bad, read_json};
use crate::error::{Error, Result};

/// Score matrices, row per query.
#[derive(Debug, Clone)]
pub struct ScoreMatrices {
    /// `[images][texts]`.
    pub i2t: Vec<Vec<f64>>,
    /// `[texts][images]`.
    pub t2i: Vec<Vec<f64>>,
}

/// Which texts describe which image.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalIndex {
    /// Per text, its image.
    pub txt2img: Vec<usize>,
    /// Per image, its texts.
    pub img2txt: Vec<Vec<usize>>,
}

fn matrix(path: &Path, tensors: &[(String, tch::Tensor)], name: &str) -> Result<Vec<Vec<f64>>> {
    let t = tensors
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .ok_or_else(|| bad(path, format!("no tensor `{name}`")))?;
    let size = t.size();
    if size.len() != 2 {
        return Err(bad(path, format!("`{name}` has shape {size:?}, not 2-D")));
    }
    let flat = Vec::<f64>::try_from(t.to_kind(tch::Kind::Double).contiguous().view([-1]))
        .map_err(|e| Error::input_caused(format!("`{}`: `{name}`", path.display()), e))?;
    if flat.iter().any(|x| !x.is_finite()) {
        return Err(bad(path, format!("`{name}` holds NaN or infinite scores")));
    }
    Ok(flat
        .chunks(size[1].max(1) as usize)
        .map(<[f64]>::to_vec)
        .collect())
}

/// Reads `scores_i2t` and `scores_t2i` from a safetensors file.
pub fn read_scores(path: &Path) -> Result<ScoreMatrices> {
    let tensors = tch::Tensor::read_safetensors(path).map_err(|e| {
        Error::input_caused(
            format!("cannot read `{}` as safetensors", path.display()),
            e,
        )
    })?;
    Ok(ScoreMatrices {
        i2t: matrix(path, &tensors, "scores_i2t")?,
        t2i: matrix(path, &tensors, "scores_t2i")?,
    })
}

/// Reads the text/image correspondence: `index.json` (`{img2txt, txt2img}`) or a retrieval test
/// file of the reference (`[{image, caption: [...]}, …]`, texts numbered image after image as its
/// `re_eval_dataset` does; a single caption string counts as one).
pub fn read_index(path: &Path) -> Result<RetrievalIndex> {
    let root = read_json(path)?;
    if let Some(list) = root.as_array() {
        let mut index = RetrievalIndex {
            txt2img: Vec::new(),
            img2txt: Vec::new(),
        };
        for (i, e) in list.iter().enumerate() {
            let n = match e.get("caption") {
                Some(Value::Array(c)) => c.len(),
                Some(Value::String(_)) => 1,
                _ => return Err(bad(path, format!("[{i}] has no `caption` list"))),
            };
            let first = index.txt2img.len();
            index.img2txt.push((first..first + n).collect());
            index.txt2img.extend(std::iter::repeat_n(i, n));
        }
        return Ok(index);
    }
    let ids = |key: &str| -> Result<&Vec<Value>> {
        root.get(key).and_then(Value::as_array).ok_or_else(|| {
            bad(
                path,
                format!("neither a retrieval test list nor an index with `{key}`"),
            )
        })
    };
    let num = |v: &Value, what: &str| -> Result<usize> {
        v.as_u64()
            .map(|x| x as usize)
            .ok_or_else(|| bad(path, format!("a non-integer in `{what}`")))
    };
    let txt2img = ids("txt2img")?
        .iter()
        .map(|v| num(v, "txt2img"))
        .collect::<Result<Vec<_>>>()?;
    let img2txt = ids("img2txt")?
        .iter()
        .map(|l| {
            l.as_array()
                .ok_or_else(|| bad(path, "`img2txt` entries must be lists"))?
                .iter()
                .map(|v| num(v, "img2txt"))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RetrievalIndex { txt2img, img2txt })
}

/// Checks that the matrices and the index describe the same images and texts.
pub fn check_shapes(scores: &ScoreMatrices, index: &RetrievalIndex) -> Result<()> {
    let (images, texts) = (index.img2txt.len(), index.txt2img.len());
    let shape = |m: &Vec<Vec<f64>>| (m.len(), m.first().map_or(0, Vec::len));
    let i2t = shape(&scores.i2t);
    let t2i = shape(&scores.t2i);
    if i2t != (images, texts) || t2i != (texts, images) {
        return Err(Error::input(format!(
            "the annotations list {images} images and {texts} texts, but scores_i2t is {i2t:?} and \
             scores_t2i {t2i:?} (want ({images}, {texts}) and ({texts}, {images}))"
        )));
    }
    let bad_ref = index.txt2img.iter().any(|&i| i >= images)
        || index.img2txt.iter().flatten().any(|&t| t >= texts);
    if bad_ref {
        return Err(Error::input(
            "the index refers to an image or text out of range",
        ));
    }
    Ok(())
}
