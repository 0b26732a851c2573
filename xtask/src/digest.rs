//! Hex and SHA-256, for generated credentials, archive checksums and
//! comparing credentials without showing them.

use sha2::Digest as _;

/// Lowercase hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// SHA-256 of `bytes`, in lowercase hexadecimal.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

/// A running SHA-256, for data streamed through it.
pub type Sha256 = sha2::Sha256;

/// The hexadecimal digest a running SHA-256 ends with.
pub fn finish(hasher: Sha256) -> String {
    hex(&hasher.finalize())
}
