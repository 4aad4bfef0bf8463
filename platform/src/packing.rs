//! How the JSON text of an item's `body` and `events` is stored: as text, or deflated when
//! that is smaller.
//!
//! DynamoDB bills a write by the KiB of the whole item (and a transaction twice), so every
//! byte counts at the 1 KiB boundary: an order carrying its `OrderCreated` was 1.46 KiB,
//! two units a write, and is about 0.9 KiB deflated (ids repeat inside an item, and deflate
//! stores a repeat as a back-reference). Compressing long attributes into a binary value is
//! AWS's own advice for large items. Whichever form is smaller is written; both are read, so
//! items (and stream records) written as text before read as they were.

use miniz_oxide::deflate::compress_to_vec;
use miniz_oxide::inflate::decompress_to_vec_with_limit;

/// How hard deflate works: the most it can. A body is a KiB or two, a few tens of
/// microseconds at this level.
const LEVEL: u8 = 9;

/// Nothing we write comes near this unpacked (an item is at most 400 KB, and our JSON
/// deflates to no less than a tenth); it bounds what a corrupt value can make us allocate.
const MAX_UNPACKED: usize = 8 * 1024 * 1024;

/// JSON text as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packed {
    /// Short or incompressible text, stored as a string.
    Text(String),
    /// Raw deflate (RFC 1951, no zlib or gzip header) of the UTF-8 text, stored as binary.
    Deflated(Vec<u8>),
}

/// A stored value's form, borrowed from whichever attribute type its reader has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored<'a> {
    Text(&'a str),
    Deflated(&'a [u8]),
}

/// The smaller of `text` and its deflated bytes.
pub fn pack(text: String) -> Packed {
    let deflated = compress_to_vec(text.as_bytes(), LEVEL);
    if deflated.len() < text.len() {
        Packed::Deflated(deflated)
    } else {
        Packed::Text(text)
    }
}

/// The text a stored value holds. An error says why it cannot be read: the value is corrupt.
pub fn unpack(stored: Stored<'_>) -> Result<String, String> {
    match stored {
        Stored::Text(text) => Ok(text.to_owned()),
        Stored::Deflated(bytes) => {
            let inflated = decompress_to_vec_with_limit(bytes, MAX_UNPACKED)
                .map_err(|e| format!("a deflated value that does not inflate: {e}"))?;
            String::from_utf8(inflated)
                .map_err(|e| format!("a deflated value that is not UTF-8 text: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(packed: &Packed) -> Stored<'_> {
        match packed {
            Packed::Text(t) => Stored::Text(t),
            Packed::Deflated(b) => Stored::Deflated(b),
        }
    }

    #[test]
    fn short_text_stays_text() {
        let packed = pack(r#"{"a":1}"#.to_owned());
        assert_eq!(packed, Packed::Text(r#"{"a":1}"#.to_owned()));
    }

    #[test]
    fn repetitive_json_is_deflated_smaller_and_reads_back_as_it_was() {
        let id = "62e489cd-6750-419b-b96e-051ee03ba19d";
        let text = format!(
            r#"{{"orderId":"{id}","aggregateId":"{id}","correlationId":"{id}","items":[{{"productId":"{id}","quantity":2}}]}}"#
        );
        let packed = pack(text.clone());
        let Packed::Deflated(bytes) = &packed else {
            panic!("not deflated: {packed:?}");
        };
        assert!(
            bytes.len() < text.len() / 2,
            "{} of {}",
            bytes.len(),
            text.len()
        );
        assert_eq!(unpack(stored(&packed)), Ok(text));
    }

    #[test]
    fn text_reads_as_it_is() {
        assert_eq!(unpack(Stored::Text("[]")), Ok("[]".to_owned()));
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        assert!(unpack(Stored::Deflated(&[0xff, 0x00, 0x13])).is_err());
        let not_utf8 = compress_to_vec(&[0xc3, 0x28], LEVEL);
        let error = unpack(Stored::Deflated(&not_utf8)).unwrap_err();
        assert!(error.contains("UTF-8"), "{error}");
    }
}
