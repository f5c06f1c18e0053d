//! SQL functions for vision-language data:
//!
//! * `hash_split(key, fraction)` → boolean: true for a stable `fraction` of keys. The same key always
//!   lands on the same side, on every machine and in every mplug version (blake3 of the key's text),
//!   so `WHERE hash_split(image_id, 0.1)` is a reproducible 10 % hold-out and `NOT hash_split(...)` its
//!   complement.
//! * `hash_unit(key)` → double in [0, 1): the number `hash_split` compares with `fraction`.
//! * `token_count(text)` → bigint: BERT WordPiece tokens of the text after the reference's
//!   `pre_caption` (no special tokens), i.e. what the model sees before truncation.
//!
//! Keys of any type are hashed by their text form (`CAST(key AS VARCHAR)`).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::text::{BertTokenizer, pre_caption};

/// `hash_unit(key)`: blake3 of the key's UTF-8 text, first 8 bytes little-endian, scaled to [0, 1).
pub fn hash_unit(key: &str) -> f64 {
    let h = blake3::hash(key.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

fn as_strings(v: &ColumnarValue, rows: usize) -> DfResult<StringArray> {
    let arr = v.clone().into_array(rows)?;
    let utf8 = cast(&arr, &DataType::Utf8)?;
    match utf8.as_any().downcast_ref::<StringArray>() {
        Some(s) => Ok(s.clone()),
        None => exec_err!("expected text"),
    }
}

fn scalar_f64(v: &ColumnarValue) -> DfResult<f64> {
    let ColumnarValue::Scalar(s) = v else {
        return exec_err!("the fraction must be a constant");
    };
    match s.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(Some(f)) if (0.0..=1.0).contains(&f) => Ok(f),
        other => exec_err!("the fraction must be a number in [0, 1], got {other}"),
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct HashSplit {
    signature: Signature,
}

impl ScalarUDFImpl for HashSplit {
    fn name(&self) -> &str {
        "hash_split"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        if args.len() != 2 {
            return plan_err!("hash_split(key, fraction) takes 2 arguments");
        }
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let keys = as_strings(&args.args[0], args.number_rows)?;
        let fraction = scalar_f64(&args.args[1])?;
        let out: BooleanArray = keys
            .iter()
            .map(|k| k.map(|k| hash_unit(k) < fraction))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct HashUnit {
    signature: Signature,
}

impl ScalarUDFImpl for HashUnit {
    fn name(&self) -> &str {
        "hash_unit"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let keys = as_strings(&args.args[0], args.number_rows)?;
        let out: Float64Array = keys.iter().map(|k| k.map(hash_unit)).collect();
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

struct TokenCount {
    signature: Signature,
    tokenizer: Option<Arc<BertTokenizer>>,
}

impl std::fmt::Debug for TokenCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCount")
    }
}
impl PartialEq for TokenCount {
    fn eq(&self, other: &Self) -> bool {
        self.signature == other.signature
    }
}
impl Eq for TokenCount {}
impl std::hash::Hash for TokenCount {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.signature.hash(state);
    }
}

impl ScalarUDFImpl for TokenCount {
    fn name(&self) -> &str {
        "token_count"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(tok) = &self.tokenizer else {
            return exec_err!(
                "token_count needs the BERT vocab: pass --vocab FILE or run scripts/setup.sh"
            );
        };
        let texts = as_strings(&args.args[0], args.number_rows)?;
        let mut out = Vec::with_capacity(texts.len());
        for t in texts.iter() {
            out.push(match t {
                Some(t) => match tok.encode(&pre_caption(t, 0)) {
                    Ok(ids) => Some(ids.len() as i64),
                    Err(e) => return exec_err!("{e}"),
                },
                None => None,
            });
        }
        Ok(ColumnarValue::Array(
            Arc::new(Int64Array::from(out)) as ArrayRef
        ))
    }
}

/// Every mplug UDF (`token_count` reports a missing vocab when called without a tokenizer).
pub fn mplug_udfs(tokenizer: Option<Arc<BertTokenizer>>) -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(HashSplit {
            signature: Signature::any(2, Volatility::Immutable),
        }),
        ScalarUDF::from(HashUnit {
            signature: Signature::any(1, Volatility::Immutable),
        }),
        ScalarUDF::from(TokenCount {
            signature: Signature::any(1, Volatility::Immutable),
            tokenizer,
        }),
    ]
}

/// Registers every mplug UDF on `ctx`.
pub fn register_all(ctx: &SessionContext, tokenizer: Option<Arc<BertTokenizer>>) {
    for udf in mplug_udfs(tokenizer) {
        ctx.register_udf(udf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, computed by hand from blake3's published test vector for the empty input
    /// (af1349b9f5f9a1a6…): first 8 bytes LE = 0xa6a1f9f5b94913af, >> 11, / 2^53.
    #[test]
    fn hash_unit_of_empty_string_matches_blake3_test_vector() {
        let expected = (0xa6a1_f9f5_b949_13afu64 >> 11) as f64 / (1u64 << 53) as f64;
        assert_eq!(hash_unit(""), expected);
    }

    #[test]
    fn hash_split_fraction_is_close_to_requested() {
        let n = 20_000;
        let hits = (0..n)
            .filter(|i| hash_unit(&format!("coco_{i}")) < 0.1)
            .count();
        let frac = hits as f64 / n as f64;
        assert!((frac - 0.1).abs() < 0.01, "{frac}");
    }
}
