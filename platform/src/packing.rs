//! How the JSON text of an item's `body` and `events` is stored: as text, or deflated when
//! that is smaller.
//!
//! DynamoDB bills a write by the KiB of the whole item (and a transaction twice), so every
//! byte counts at the 1 KiB boundary: an order carrying its `OrderCreated` was 1,459 bytes,
//! two units a write, and is about 975 deflated (ids repeat inside an item, and deflate
//! stores a repeat as a back-reference). Compressing long attributes into a binary value is
//! AWS's own advice for large items. Whichever form is smaller is written; both are read, so
//! items (and stream records) written as text before read as they were.
//!
//! [`Packing`] (`ITEM_PACKING`) says whether to deflate at all. Code that reads both forms must
//! be everywhere (every function, every relay's stream filter) before any writes binary: a
//! stack deployed before this deploys once with `text`, then with `deflate`; rolling back
//! past it needs `text` first, and items already deflated stay so.

use std::borrow::Cow;

use miniz_oxide::deflate::compress_to_vec;
use miniz_oxide::inflate::decompress_to_vec_with_limit;

use crate::config::{ConfigError, Env};

/// Whether long text is written deflated: `ITEM_PACKING`, `deflate` (the default) or `text`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Packing {
    #[default]
    Deflate,
    Text,
}

pub const ITEM_PACKING: &str = "ITEM_PACKING";

impl Packing {
    pub fn from_env(env: &dyn Env) -> Result<Packing, ConfigError> {
        match env.var(ITEM_PACKING).as_deref().map(str::trim) {
            None | Some("deflate") => Ok(Packing::Deflate),
            Some("text") => Ok(Packing::Text),
            Some(other) => Err(ConfigError::new(
                ITEM_PACKING,
                format!("{other:?} is neither \"deflate\" nor \"text\""),
            )),
        }
    }

    /// `text` as this packing stores it: with `Deflate`, the smaller of the text and its
    /// deflated bytes.
    pub fn pack(self, text: String) -> Packed {
        if self == Packing::Text {
            return Packed::Text(text);
        }
        let deflated = compress_to_vec(text.as_bytes(), LEVEL);
        if deflated.len() < text.len() {
            Packed::Deflated(deflated)
        } else {
            Packed::Text(text)
        }
    }
}

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

impl Packed {
    pub fn as_stored(&self) -> Stored<'_> {
        match self {
            Packed::Text(text) => Stored::Text(text),
            Packed::Deflated(bytes) => Stored::Deflated(bytes),
        }
    }
}

/// A stored value's form, borrowed from whichever attribute type its reader has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored<'a> {
    Text(&'a str),
    Deflated(&'a [u8]),
}

/// The text a stored value holds (borrowed when stored as text). An error says why it
/// cannot be read: the value is corrupt.
pub fn unpack(stored: Stored<'_>) -> Result<Cow<'_, str>, String> {
    match stored {
        Stored::Text(text) => Ok(Cow::Borrowed(text)),
        Stored::Deflated(bytes) => {
            let inflated = decompress_to_vec_with_limit(bytes, MAX_UNPACKED)
                .map_err(|e| format!("a deflated value that does not inflate: {e}"))?;
            String::from_utf8(inflated)
                .map(Cow::Owned)
                .map_err(|e| format!("a deflated value that is not UTF-8 text: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_stays_text() {
        let packed = Packing::Deflate.pack(r#"{"a":1}"#.to_owned());
        assert_eq!(packed, Packed::Text(r#"{"a":1}"#.to_owned()));
    }

    #[test]
    fn repetitive_json_is_deflated_smaller_and_reads_back_as_it_was() {
        let id = "62e489cd-6750-419b-b96e-051ee03ba19d";
        let text = format!(
            r#"{{"orderId":"{id}","aggregateId":"{id}","correlationId":"{id}","items":[{{"productId":"{id}","quantity":2}}]}}"#
        );
        let packed = Packing::Deflate.pack(text.clone());
        let Packed::Deflated(bytes) = &packed else {
            panic!("not deflated: {packed:?}");
        };
        assert!(
            bytes.len() < text.len() / 2,
            "{} of {}",
            bytes.len(),
            text.len()
        );
        assert_eq!(unpack(packed.as_stored()).as_deref(), Ok(text.as_str()));
    }

    #[test]
    fn the_setting_chooses_text_or_deflate_and_refuses_anything_else() {
        use std::collections::HashMap;
        let long = "0123456789".repeat(20);
        let of = |value: &'static str| Packing::from_env(&HashMap::from([(ITEM_PACKING, value)]));
        assert_eq!(of(""), Ok(Packing::Deflate));
        assert_eq!(of("deflate"), Ok(Packing::Deflate));
        assert_eq!(of("text"), Ok(Packing::Text));
        assert!(of("gzip").unwrap_err().to_string().contains(ITEM_PACKING));
        assert_eq!(Packing::Text.pack(long.clone()), Packed::Text(long.clone()));
        assert!(matches!(Packing::Deflate.pack(long), Packed::Deflated(_)));
    }

    #[test]
    fn text_reads_as_it_is() {
        assert_eq!(unpack(Stored::Text("[]")).as_deref(), Ok("[]"));
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        assert!(unpack(Stored::Deflated(&[0xff, 0x00, 0x13])).is_err());
        let not_utf8 = compress_to_vec(&[0xc3, 0x28], LEVEL);
        let error = unpack(Stored::Deflated(&not_utf8)).unwrap_err();
        assert!(error.contains("UTF-8"), "{error}");
    }
}
