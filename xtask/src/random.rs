//! Random identifiers from the operating system's generator.

use std::fs::File;
use std::io::Read;

use anyhow::{Context, Result};

fn bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0; N];
    File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut buf))
        .context("could not read /dev/urandom")?;
    Ok(buf)
}

/// 32 lowercase hex characters.
pub fn hex_token() -> Result<String> {
    Ok(bytes::<16>()?.iter().map(|b| format!("{b:02x}")).collect())
}

/// A Kafka cluster id: 16 random bytes in unpadded URL-safe base64, like
/// `kafka-storage random-uuid` prints (which also never starts with '-').
pub fn kafka_cluster_id() -> Result<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    loop {
        let raw = bytes::<16>()?;
        let bits = u128::from_be_bytes(raw);
        // 128 bits as 22 sextets: the last one holds the low 2 bits, shifted up.
        let id: String = (0..22)
            .map(|i| {
                let sextet = if i < 21 {
                    bits >> (122 - 6 * i)
                } else {
                    bits << 4
                };
                char::from(ALPHABET[(sextet & 0x3f) as usize])
            })
            .collect();
        if !id.starts_with('-') && bits != 0 && bits != 1 {
            return Ok(id);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kafka_cluster_ids_are_22_url_safe_base64_chars() {
        for _ in 0..100 {
            let id = super::kafka_cluster_id().unwrap();
            assert_eq!(id.len(), 22);
            assert!(!id.starts_with('-'));
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            // 128 bits leave the last sextet's low 4 bits empty.
            assert!("AQgw".contains(id.chars().last().unwrap()));
        }
    }

    #[test]
    fn hex_tokens_are_32_lowercase_hex_chars() {
        let token = super::hex_token().unwrap();
        assert_eq!(token.len(), 32);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }
}
