//! The binary form of history entries that the trace hash is taken over: a serde serializer
//! that writes every value with a one-byte tag, little-endian numbers and length-prefixed
//! strings, so the hash follows the very data the JSON history shows, at a fraction of the
//! cost of writing JSON text (escaping, digits, key quoting).
//!
//! The encoding is self-delimiting (every string carries its length, every compound ends with
//! `END`), so two different entry sequences never give the same bytes. Struct fields keep their
//! names, as in the JSON, so a field skipped when empty cannot be mistaken for another. Numbers
//! are written at 64 bits whatever their Rust width, so widening a field changes no hash.
//! Like the JSON it replaces, it depends only on the types' serde derives: the same on every
//! machine, job count and Rust release.

use serde::ser::{self, Serialize};
use std::fmt;

const BOOL: u8 = 1;
const INT: u8 = 2;
const UINT: u8 = 3;
const FLOAT: u8 = 4;
const CHAR: u8 = 5;
const STR: u8 = 6;
const BYTES: u8 = 7;
const NONE: u8 = 8;
const SOME: u8 = 9;
const UNIT: u8 = 10;
const VARIANT: u8 = 11;
const SEQ: u8 = 12;
const MAP: u8 = 13;
const STRUCT: u8 = 14;
const END: u8 = 15;
const INT128: u8 = 16;
const UINT128: u8 = 17;

/// Appends the binary form of `value` to `out`.
pub fn encode(out: &mut Vec<u8>, value: &impl Serialize) {
    value
        .serialize(&mut Encoder { out })
        .expect("the binary encoding accepts every serde value");
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    fn tagged(&mut self, tag: u8, bytes: &[u8]) {
        self.out.push(tag);
        self.out.extend_from_slice(bytes);
    }

    fn text(&mut self, tag: u8, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("history strings are under 4 GiB");
        // One reservation and two copies: this runs for every key and string of every entry.
        let [a, b, c, d] = len.to_le_bytes();
        self.out.reserve(5 + bytes.len());
        self.out.extend_from_slice(&[tag, a, b, c, d]);
        self.out.extend_from_slice(bytes);
    }

    fn variant(&mut self, name: &str) {
        self.out.push(VARIANT);
        self.text(STR, name.as_bytes());
    }
}

/// Never produced by the encoder itself; serde needs the type for custom `Serialize` impls.
#[derive(Debug)]
pub struct EncodeError(String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        EncodeError(msg.to_string())
    }
}

type Done = Result<(), EncodeError>;

impl<'a, 'b> ser::Serializer for &'a mut Encoder<'b> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, v: bool) -> Done {
        self.tagged(BOOL, &[u8::from(v)]);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Done {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Done {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Done {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Done {
        self.tagged(INT, &v.to_le_bytes());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Done {
        self.tagged(INT128, &v.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Done {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Done {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Done {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Done {
        self.tagged(UINT, &v.to_le_bytes());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Done {
        self.tagged(UINT128, &v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Done {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Done {
        self.tagged(FLOAT, &v.to_bits().to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Done {
        self.tagged(CHAR, &u32::from(v).to_le_bytes());
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Done {
        self.text(STR, v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Done {
        self.text(BYTES, v);
        Ok(())
    }
    fn serialize_none(self) -> Done {
        self.out.push(NONE);
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Done {
        self.out.push(SOME);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        self.out.push(UNIT);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Done {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &str) -> Done {
        self.variant(variant);
        self.serialize_unit()
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Done {
        self.variant(variant);
        value.serialize(self)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self, EncodeError> {
        self.out.push(SEQ);
        Ok(self)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Self, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self, EncodeError> {
        self.variant(variant);
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self, EncodeError> {
        self.out.push(MAP);
        Ok(self)
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, EncodeError> {
        self.out.push(STRUCT);
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self, EncodeError> {
        self.variant(variant);
        self.out.push(STRUCT);
        Ok(self)
    }
}

/// The compounds whose items are written one after another and closed by `END`.
macro_rules! items {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for &mut Encoder<'_> {
            type Ok = ();
            type Error = EncodeError;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
                value.serialize(&mut **self)
            }
            fn end(self) -> Done {
                self.out.push(END);
                Ok(())
            }
        }
    };
}

items!(SerializeSeq, serialize_element);
items!(SerializeTuple, serialize_element);
items!(SerializeTupleStruct, serialize_field);
items!(SerializeTupleVariant, serialize_field);

/// The compounds whose fields are written with their names and closed by `END`.
macro_rules! named_fields {
    ($trait:ident) => {
        impl ser::$trait for &mut Encoder<'_> {
            type Ok = ();
            type Error = EncodeError;
            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Done {
                self.text(STR, key.as_bytes());
                value.serialize(&mut **self)
            }
            fn end(self) -> Done {
                self.out.push(END);
                Ok(())
            }
        }
    };
}

named_fields!(SerializeStruct);
named_fields!(SerializeStructVariant);

impl ser::SerializeMap for &mut Encoder<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Done {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        self.out.push(END);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeSet;

    #[derive(Serialize)]
    #[serde(tag = "event", rename_all = "kebab-case")]
    enum Event {
        Sent {
            id: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            note: Option<String>,
            size: u32,
        },
        Gone {
            id: String,
        },
    }

    #[derive(Serialize)]
    struct Entry {
        at: u64,
        #[serde(flatten)]
        event: Event,
    }

    fn bytes(value: &impl Serialize) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, value);
        out
    }

    #[test]
    fn values_are_tagged_little_endian_and_length_prefixed() {
        assert_eq!(bytes(&7u8), [UINT, 7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(&7u8), bytes(&7u64), "widths do not matter");
        assert_eq!(bytes(&-1i32), [INT, 255, 255, 255, 255, 255, 255, 255, 255]);
        assert_eq!(bytes(&"ab"), [STR, 2, 0, 0, 0, b'a', b'b']);
        assert_eq!(bytes(&Some(true)), [SOME, BOOL, 1]);
        assert_eq!(bytes(&Option::<u8>::None), [NONE]);
        assert_eq!(
            bytes(&vec![1u8]),
            [&[SEQ, UINT, 1][..], &[0; 7], &[END]].concat()
        );
    }

    /// Distinct values give distinct bytes, including the cases where a careless encoding
    /// would collide: a field moved between strings, a skipped optional, a flattened tag.
    #[test]
    fn the_encoding_tells_apart_what_the_json_tells_apart() {
        let sent = |id: &str, note: Option<&str>, size| Entry {
            at: 1,
            event: Event::Sent {
                id: id.into(),
                note: note.map(Into::into),
                size,
            },
        };
        let values = [
            bytes(&sent("a", None, 1)),
            bytes(&sent("a", Some(""), 1)),
            bytes(&sent("a", None, 2)),
            bytes(&sent("", Some("a"), 1)),
            bytes(&sent("ab", None, 1)),
            bytes(&Entry {
                at: 1,
                event: Event::Gone { id: "a".into() },
            }),
            bytes(&("a", "b")),
            bytes(&("ab", "")),
            bytes(&vec![vec!["a"], vec!["b"]]),
            bytes(&vec![vec!["a", "b"]]),
        ];
        let distinct: BTreeSet<&Vec<u8>> = values.iter().collect();
        assert_eq!(distinct.len(), values.len());
        // As in JSON, a tuple and a sequence of the same items are the same data.
        assert_eq!(bytes(&("a", "b")), bytes(&vec!["a", "b"]));
    }
}
