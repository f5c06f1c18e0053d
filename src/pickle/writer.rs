//! Writing plain data as a protocol-2 pickle, for the synthetic RefCOCO `refs(unc).p` (what refer's
//! Python 2 `pickle.dump` wrote). Hand-written: only JSON-shaped data (None, bool, int, float, str,
//! list, dict) is needed, which takes a dozen opcodes; no crate writes pickles Python 2 and 3 read
//! alike without a serde model of the data.

use serde_json::Value;

/// `value` as a protocol-2 pickle: lists become Python lists, objects dicts (keys in their order),
/// integers `int`, other numbers `float`.
pub fn to_pickle(value: &Value) -> Vec<u8> {
    let mut out = vec![0x80, 2]; // PROTO 2
    write(value, &mut out);
    out.push(b'.'); // STOP
    out
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(b'N'),
        Value::Bool(true) => out.push(0x88),
        Value::Bool(false) => out.push(0x89),
        Value::Number(n) => match n.as_i64() {
            Some(i) => write_int(i, out),
            None => {
                out.push(b'G'); // BINFLOAT, big-endian
                out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_be_bytes());
            }
        },
        Value::String(s) => {
            out.push(b'X'); // BINUNICODE
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            out.push(b']'); // EMPTY_LIST
            if !items.is_empty() {
                out.push(b'('); // MARK
                items.iter().for_each(|v| write(v, out));
                out.push(b'e'); // APPENDS
            }
        }
        Value::Object(map) => {
            out.push(b'}'); // EMPTY_DICT
            if !map.is_empty() {
                out.push(b'(');
                for (k, v) in map {
                    write(&Value::String(k.clone()), out);
                    write(v, out);
                }
                out.push(b'u'); // SETITEMS
            }
        }
    }
}

fn write_int(i: i64, out: &mut Vec<u8>) {
    if (0..256).contains(&i) {
        out.extend([b'K', i as u8]); // BININT1
    } else if (0..65536).contains(&i) {
        out.push(b'M'); // BININT2
        out.extend_from_slice(&(i as u16).to_le_bytes());
    } else if let Ok(v) = i32::try_from(i) {
        out.push(b'J'); // BININT
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        out.extend([0x8a, 8]); // LONG1, 8 bytes two's complement
        out.extend_from_slice(&i.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Round trip through our reader; the bytes Python reads are checked by the synth test.
    #[test]
    fn reads_back_through_the_vm() {
        let v = serde_json::json!([
            {"ref_id": 0, "big": 70000, "neg": -3, "huge": 1i64 << 40, "f": 0.5, "s": "é x",
             "l": [], "d": {}, "n": null, "t": true, "sentences": [{"sent": "the red circle"}]}
        ]);
        let back = crate::pickle::load_plain(&to_pickle(&v)).unwrap();
        let items = back.as_items().unwrap();
        let r = &items[0];
        let int = |k: &str| r.get(k).and_then(|x| x.as_int());
        assert_eq!(int("ref_id"), Some(0));
        assert_eq!(int("big"), Some(70000));
        assert_eq!(int("neg"), Some(-3));
        assert_eq!(int("huge"), Some(1 << 40));
        assert_eq!(
            r.get("s").and_then(|x| x.as_str().map(String::from)),
            Some("é x".into())
        );
        let sents = r.get("sentences").and_then(|s| s.as_items()).unwrap();
        assert_eq!(
            sents[0]
                .get("sent")
                .and_then(|x| x.as_str().map(String::from)),
            Some("the red circle".into())
        );
    }
}
