//! PNG metadata chunks checked before decoding, with Pillow's caps.
//!
//! Pillow inflates `iCCP`, `zTXt` and compressed `iTXt` chunks at most to `MAX_TEXT_CHUNK` (1 MiB)
//! and all text to `MAX_TEXT_MEMORY` (64 MiB), refusing the file past either. The `png` crate would
//! inflate an ICC profile without bound (a few KB of zeros inflate to gigabytes), so the chunks are
//! walked here first: the reference keeps and drops the same files, and memory stays bounded. Written
//! by hand because it is a 40-line walk over length-prefixed chunks that no decoder exposes.

use std::io::Read;

use super::decode::DecodeError;

/// Pillow's `PngImagePlugin.MAX_TEXT_CHUNK`.
pub const MAX_CHUNK: u64 = 1 << 20;
/// Pillow's `PngImagePlugin.MAX_TEXT_MEMORY`.
pub const MAX_TEXT: u64 = 64 * MAX_CHUNK;

fn bomb(chunk: &str, limit: u64) -> DecodeError {
    DecodeError::MetadataBomb {
        format: "PNG",
        chunk: chunk.to_string(),
        limit,
    }
}

/// Inflated size of a zlib stream, stopping one byte past `cap`. A corrupt stream counts what
/// inflated before the error (the decoder reports corruption in chunks it reads itself).
fn inflated_len(zlib: &[u8], cap: u64) -> u64 {
    let mut dec = flate2::read::ZlibDecoder::new(zlib).take(cap + 1);
    std::io::copy(&mut dec, &mut std::io::sink()).unwrap_or(0)
}

/// The data after a keyword (1–79 bytes) and its NUL, or `None` when there is no NUL.
fn after_keyword(data: &[u8]) -> Option<&[u8]> {
    let nul = data.iter().take(80).position(|&b| b == 0)?;
    Some(&data[nul + 1..])
}

/// Refuses a PNG whose metadata Pillow would refuse for size: an `iCCP`, `zTXt` or compressed `iTXt`
/// chunk that inflates past [`MAX_CHUNK`], or text chunks past [`MAX_TEXT`] in total. Malformed chunk
/// framing is left to the decoder, which names it.
pub fn check_metadata(png: &[u8]) -> Result<(), DecodeError> {
    let mut at = 8; // signature
    let mut text = 0u64;
    while let Some(head) = png.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        let Some(data) = png.get(at + 8..(at + 8).saturating_add(len)) else {
            break;
        };
        let inflated = match kind {
            b"iCCP" | b"zTXt" => after_keyword(data)
                .and_then(|rest| rest.get(1..)) // compression method byte
                .map(|z| inflated_len(z, MAX_CHUNK)),
            // keyword NUL, compression flag, method, language NUL, translated keyword NUL, text
            b"iTXt" => after_keyword(data).and_then(|rest| {
                let compressed = *rest.first()? == 1;
                let rest = after_keyword(rest.get(2..)?)?;
                let rest = after_keyword(rest)?;
                Some(if compressed {
                    inflated_len(rest, MAX_CHUNK)
                } else {
                    rest.len() as u64
                })
            }),
            b"tEXt" => after_keyword(data).map(|v| v.len() as u64),
            b"IEND" => break,
            _ => None,
        };
        if let Some(n) = inflated {
            let name = String::from_utf8_lossy(kind);
            if n > MAX_CHUNK && kind != b"tEXt" {
                return Err(bomb(&name, MAX_CHUNK));
            }
            text += if kind == b"iCCP" { 0 } else { n };
            if text > MAX_TEXT {
                return Err(bomb("text chunks in total", MAX_TEXT));
            }
        }
        at += 12 + len; // length, type, data, CRC
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend(kind);
        c.extend(data);
        c.extend([0; 4]); // CRC: not checked here
        c
    }

    fn zlib(n: usize) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; n]).unwrap();
        e.finish().unwrap()
    }

    fn png(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
        for c in chunks {
            p.extend(c);
        }
        p.extend(chunk(b"IEND", b""));
        p
    }

    fn with_prefix(prefix: &[u8], z: &[u8]) -> Vec<u8> {
        [prefix, z].concat()
    }

    #[test]
    fn caps_are_pillows_one_mebibyte_inclusive() {
        let at_cap = zlib(MAX_CHUNK as usize);
        let over = zlib(MAX_CHUNK as usize + 1);
        assert!(check_metadata(&png(&[chunk(b"iCCP", &with_prefix(b"icc\0\0", &at_cap))])).is_ok());
        for (kind, prefix) in [
            (b"iCCP", &b"icc\0\0"[..]),
            (b"zTXt", &b"Comment\0\0"[..]),
            (b"iTXt", &b"Comment\0\x01\0\0\0"[..]),
        ] {
            let err = check_metadata(&png(&[chunk(kind, &with_prefix(prefix, &over))]));
            assert_eq!(
                err,
                Err(bomb(std::str::from_utf8(kind).unwrap(), MAX_CHUNK)),
                "{kind:?}"
            );
        }
        // an uncompressed iTXt is just its length
        assert!(check_metadata(&png(&[chunk(b"iTXt", b"Comment\0\0\0\0\0hello")])).is_ok());
    }

    #[test]
    fn text_is_capped_in_total() {
        let one = chunk(
            b"zTXt",
            &with_prefix(b"Comment\0\0", &zlib(MAX_CHUNK as usize)),
        );
        let chunks = vec![one; 65];
        assert_eq!(
            check_metadata(&png(&chunks)),
            Err(bomb("text chunks in total", MAX_TEXT))
        );
        assert!(check_metadata(&png(&chunks[..64])).is_ok());
    }

    #[test]
    fn truncated_framing_is_left_to_the_decoder() {
        let mut p = png(&[chunk(b"iCCP", &with_prefix(b"icc\0\0", &zlib(10)))]);
        p.truncate(20);
        assert!(check_metadata(&p).is_ok());
        assert!(check_metadata(b"\x89PNG").is_ok());
    }
}
