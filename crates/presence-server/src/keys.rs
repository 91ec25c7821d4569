//! API keys: how they are made, stored and compared.
//!
//! A key is 32 random ASCII letters and digits (about 190 bits), shown once
//! when made. Only its SHA-256 is stored: a key that random needs no slow
//! password hash, and a stolen database then grants nobody access.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// The length of an API key, in characters.
pub const API_KEY_LEN: usize = 32;

/// A new random API key.
pub fn generate() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(API_KEY_LEN)
        .map(char::from)
        .collect()
}

/// Whether `key` has the shape of an API key: exactly 32 ASCII letters and digits.
pub fn is_well_formed(key: &str) -> bool {
    key.len() == API_KEY_LEN && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The stored form of a key.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Compares two key ids (or hashes) in time that does not depend on where
/// they differ.
pub fn ids_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = generate();
        let b = generate();
        assert!(is_well_formed(&a), "{a}");
        assert!(is_well_formed(&b), "{b}");
        assert_ne!(a, b);
    }

    #[test]
    fn shape_check_rejects_wrong_length_and_characters() {
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&"a".repeat(33)));
        assert!(!is_well_formed(&format!("{}-", "a".repeat(31))));
        assert!(is_well_formed("abcdefghijklmnopqrstuvwxyzABC123"));
    }

    #[test]
    fn hashes_compare_by_value() {
        assert!(ids_equal(&hash("k"), &hash("k")));
        assert!(!ids_equal(&hash("k"), &hash("K")));
        assert!(!ids_equal(&hash("k")[..16], &hash("k")));
    }
}
