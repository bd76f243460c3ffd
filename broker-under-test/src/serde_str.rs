//! Serde as a string, for the named types (probes, planted bugs, node names): they travel in
//! JSON as their names, and a name that does not parse is an error that says which, not a panic.

use serde::de::Error;
use serde::{Deserialize, Deserializer};
use std::fmt::Display;
use std::str::FromStr;

/// Reads a string and parses it with `FromStr`; the parse error becomes the deserializer's.
pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(D::Error::custom)
}
