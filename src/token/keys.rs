//! Signing and verifying keys: generation, PKCS#8/SPKI PEM, and the `ed25519/<hex>` and
//! `secp256r1/<hex>` key strings used inside Hessra tokens and configuration.

use std::path::Path;

use biscuit_auth::builder::Algorithm;
use biscuit_auth::{KeyPair, PrivateKey, PublicKey};
use zeroize::Zeroizing;

/// Failures reading or writing keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key must be in the format 'algorithm/hexkey' (e.g. ed25519/3f1a…), got {0:?}")]
    NotAKeyString(String),
    #[error("unsupported key algorithm {0:?}: must be ed25519 or secp256r1")]
    UnsupportedAlgorithm(String),
    #[error("key {0:?} is not valid hex")]
    BadHex(String),
    #[error("not a valid {algorithm} public key: {detail}")]
    InvalidPublicKey {
        algorithm: &'static str,
        detail: String,
    },
    #[error(
        "not a public key: expected a PEM block '-----BEGIN PUBLIC KEY-----' or a key string such as ed25519/<hex> ({detail})"
    )]
    NotAPublicKey { detail: String },
    #[error(
        "not a private key: expected a PKCS#8 PEM block '-----BEGIN PRIVATE KEY-----' for Ed25519 or P-256 ({detail})"
    )]
    NotAPrivateKey { detail: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Which signature algorithm a key uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Ed25519,
    Secp256r1,
}

impl KeyAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::Secp256r1 => "secp256r1",
        }
    }

    fn biscuit(self) -> Algorithm {
        match self {
            KeyAlgorithm::Ed25519 => Algorithm::Ed25519,
            KeyAlgorithm::Secp256r1 => Algorithm::Secp256r1,
        }
    }

    fn parse(name: &str) -> Result<Self, KeyError> {
        match name {
            "ed25519" => Ok(KeyAlgorithm::Ed25519),
            "secp256r1" => Ok(KeyAlgorithm::Secp256r1),
            other => Err(KeyError::UnsupportedAlgorithm(other.to_string())),
        }
    }
}

/// A fresh key pair. Root keys default to Ed25519; P-256 is accepted wherever keys are read.
pub fn generate(algorithm: KeyAlgorithm) -> KeyPair {
    KeyPair::new_with_algorithm(algorithm.biscuit())
}

/// PKCS#8 PEM of a private key (zeroized on drop).
pub fn private_key_pem(key: &KeyPair) -> Result<Zeroizing<String>, KeyError> {
    key.to_private_key_pem()
        .map_err(|e| KeyError::NotAPrivateKey {
            detail: e.to_string(),
        })
}

/// Reads a PKCS#8 PEM private key of either algorithm.
pub fn parse_private_key_pem(pem: &str) -> Result<KeyPair, KeyError> {
    let pem = pem.trim();
    let first = KeyPair::from_private_key_pem(pem);
    let pair = match first {
        Ok(pair) => Ok(pair),
        Err(_) => KeyPair::from_private_key_pem_with_algorithm(pem, Algorithm::Secp256r1),
    };
    pair.map_err(|e| KeyError::NotAPrivateKey {
        detail: e.to_string(),
    })
}

/// Reads a private key file (PKCS#8 PEM, or an `ed25519-private/<hex>` string).
pub fn read_private_key_file(path: &Path) -> Result<KeyPair, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let trimmed = text.trim();
    if let Some((alg, hex)) = trimmed.split_once("-private/") {
        let algorithm = KeyAlgorithm::parse(alg)?;
        let private = PrivateKey::from_bytes_hex(hex, algorithm.biscuit()).map_err(|e| {
            KeyError::NotAPrivateKey {
                detail: e.to_string(),
            }
        })?;
        return Ok(KeyPair::from(&private));
    }
    parse_private_key_pem(trimmed)
}

/// SPKI PEM (`-----BEGIN PUBLIC KEY-----`), the form `/public_key` serves.
pub fn public_key_pem(key: &PublicKey) -> Result<String, KeyError> {
    key.to_pem().map_err(|e| KeyError::NotAPublicKey {
        detail: e.to_string(),
    })
}

/// `ed25519/<hex>` or `secp256r1/<hex>` (compressed SEC1 point).
pub fn key_string(key: &PublicKey) -> String {
    format!("{}/{}", key.algorithm_string(), key.to_bytes_hex())
}

/// Parses `ed25519/<hex>` or `secp256r1/<hex>`.
pub fn parse_key_string(text: &str) -> Result<PublicKey, KeyError> {
    let text = text.trim();
    let parts: Vec<&str> = text.split('/').collect();
    let [alg, hex] = parts.as_slice() else {
        return Err(KeyError::NotAKeyString(text.to_string()));
    };
    let algorithm = KeyAlgorithm::parse(alg)?;
    let bytes = hex::decode(hex).map_err(|_| KeyError::BadHex(text.to_string()))?;
    PublicKey::from_bytes(&bytes, algorithm.biscuit()).map_err(|e| KeyError::InvalidPublicKey {
        algorithm: algorithm.name(),
        detail: e.to_string(),
    })
}

/// Reads a public key given either as SPKI PEM or as a key string.
pub fn parse_public_key(text: &str) -> Result<PublicKey, KeyError> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return PublicKey::from_pem(text)
            .or_else(|_| PublicKey::from_pem_with_algorithm(text, Algorithm::Secp256r1))
            .map_err(|e| KeyError::NotAPublicKey {
                detail: e.to_string(),
            });
    }
    if text.contains('/') {
        return parse_key_string(text);
    }
    Err(KeyError::NotAPublicKey {
        detail: "the text is neither".to_string(),
    })
}

/// Reads a public key file (PEM or key string).
pub fn read_public_key_file(path: &Path) -> Result<PublicKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_public_key(&text)
}

/// Writes a private key as PKCS#8 PEM, mode 0600, replacing the file atomically.
pub fn write_private_key_file(path: &Path, key: &KeyPair) -> Result<(), KeyError> {
    let pem = private_key_pem(key)?;
    crate::fsutil::write_private(path, pem.as_bytes()).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_strings_round_trip_for_both_algorithms() {
        for algorithm in [KeyAlgorithm::Ed25519, KeyAlgorithm::Secp256r1] {
            let key = generate(algorithm).public();
            let text = key_string(&key);
            assert!(text.starts_with(algorithm.name()));
            assert_eq!(parse_key_string(&text).unwrap(), key);
            assert_eq!(parse_public_key(&text).unwrap(), key);
        }
    }

    #[test]
    fn pem_round_trips_for_both_algorithms() {
        for algorithm in [KeyAlgorithm::Ed25519, KeyAlgorithm::Secp256r1] {
            let pair = generate(algorithm);
            let public_pem = public_key_pem(&pair.public()).unwrap();
            assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
            assert_eq!(parse_public_key(&public_pem).unwrap(), pair.public());
            let private_pem = private_key_pem(&pair).unwrap();
            let back = parse_private_key_pem(&private_pem).unwrap();
            assert_eq!(back.public(), pair.public());
        }
    }

    #[test]
    fn key_string_errors_say_what_is_wrong() {
        let err = parse_key_string("ed25519").unwrap_err().to_string();
        assert!(err.contains("algorithm/hexkey"), "{err}");
        let err = parse_key_string("rsa/00").unwrap_err().to_string();
        assert!(err.contains("must be ed25519 or secp256r1"), "{err}");
        let err = parse_key_string("ed25519/zz").unwrap_err().to_string();
        assert!(err.contains("not valid hex"), "{err}");
        let err = parse_key_string("ed25519/0011").unwrap_err().to_string();
        assert!(err.contains("not a valid ed25519 public key"), "{err}");
        let err = parse_public_key("hello").unwrap_err().to_string();
        assert!(err.contains("BEGIN PUBLIC KEY"), "{err}");
        let err =
            parse_private_key_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .unwrap_err()
                .to_string();
        assert!(err.contains("not a private key"), "{err}");
    }

    #[test]
    fn private_key_files_are_written_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        let pair = generate(KeyAlgorithm::Ed25519);
        write_private_key_file(&path, &pair).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            read_private_key_file(&path).unwrap().public(),
            pair.public()
        );
    }
}
