//! P-256 signature twins, offline. biscuit-auth 6.0.0 signs P-256 blocks without normalising `s`
//! (about half its signatures are high-S) and verifies with a parser that accepts both halves,
//! so any holder can turn a token's `(r, s)` into `(r, n − s)`: a token that verifies everywhere
//! (biscuit-auth, the published Hessra verifier, ours) under a different raw revocation id. Our
//! ids are canonical, so both twins show one id and a revocation of either refuses both.

mod support;

use biscuit_auth::Biscuit;
use hessra_console::policy::{self, NewRevocation, RevocationList};
use hessra_console::token::{
    self, Actor, IdentityClaims, IdentityVerification, KeyPair, clock::unix_now, keys,
};
use support::{is_high_s, p256_twin, published, raw_revocation_ids, with_signature};

const ALICE: &str = "uri:urn:company:alice";

fn p256_root() -> KeyPair {
    keys::generate(keys::KeyAlgorithm::Secp256r1)
}

fn mint(root: &KeyPair) -> String {
    token::mint_identity(
        root,
        &IdentityClaims {
            subject: ALICE.into(),
            expires_at: unix_now() + 3600,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap()
}

fn authority_signature(token: &str) -> Vec<u8> {
    hex::decode(&raw_revocation_ids(token)[0]).unwrap()
}

/// A token whose authority signature biscuit-auth made high-S, and how many mints it took.
fn high_s_token(root: &KeyPair) -> (String, usize) {
    // Each signature is high-S with probability 1/2: 64 mints all low-S has probability 2^-64.
    (1..=64)
        .map(|tries| (mint(root), tries))
        .find(|(token, _)| is_high_s(&authority_signature(token)))
        .expect("biscuit-auth emitted 64 low-S signatures in a row: it normalises after all")
}

fn verifies_with_biscuit_auth(token: &str, root: &KeyPair) -> bool {
    Biscuit::from(token::decode(token).unwrap(), root.public()).is_ok()
}

fn ours(token: &str, root: &KeyPair) -> Result<token::VerifiedIdentity, token::TokenError> {
    token::verify_identity(
        token,
        &root.public(),
        &IdentityVerification::new(Actor::Named(ALICE), unix_now()),
    )
}

#[test]
fn biscuit_auth_signs_high_s_and_the_twin_verifies_everywhere_under_another_raw_id() {
    let root = p256_root();
    let (token, tries) = high_s_token(&root);
    println!("high-S authority signature after {tries} mint(s)");
    let twin = p256_twin(&token, 0);
    assert!(!is_high_s(&authority_signature(&twin)));
    assert_ne!(token, twin);

    for candidate in [&token, &twin] {
        assert!(verifies_with_biscuit_auth(candidate, &root));
        assert!(ours(candidate, &root).is_ok());
        published(|| {
            hessra_token_identity::verify_identity_token(
                candidate.clone(),
                root.public(),
                ALICE.into(),
            )
        })
        .expect("the published Hessra verifier accepts both twins");
    }

    // What biscuit-auth and the published Hessra crates call the revocation id differs...
    let (raw, raw_twin) = (raw_revocation_ids(&token), raw_revocation_ids(&twin));
    assert_ne!(raw[0], raw_twin[0], "the dodge: another raw id");
    // ...ours is one canonical id, the low-S one, wherever it is read.
    let canonical = raw_twin[0].clone();
    for candidate in [&token, &twin] {
        assert_eq!(
            token::revocation_ids(candidate).unwrap().blocks[0],
            canonical
        );
        let inspection = token::inspect(candidate, Some(&root.public()), unix_now()).unwrap();
        assert_eq!(inspection.blocks[0].revocation_id, canonical);
        assert_eq!(ours(candidate, &root).unwrap().revocation_ids[0], canonical);
    }
}

/// DER has one encoding per value and the parser biscuit-auth uses holds to it: a longer
/// length, a padded integer or a trailing byte is refused, so `(r, n − s)` is the only twin.
#[test]
fn non_minimal_der_re_encodings_are_refused() {
    let root = p256_root();
    let token = mint(&root);
    let der = authority_signature(&token);
    let (r_len, s_len) = (der[3] as usize, der[5 + der[3] as usize] as usize);
    let r = der[4..4 + r_len].to_vec();
    let s = der[6 + r_len..6 + r_len + s_len].to_vec();
    let encode = |seq_len: Vec<u8>, r: &[u8], s: &[u8], tail: &[u8]| {
        let mut out = vec![0x30];
        out.extend(seq_len);
        out.extend([0x02, r.len() as u8]);
        out.extend(r);
        out.extend([0x02, s.len() as u8]);
        out.extend(s);
        out.extend(tail);
        out
    };
    let body = (4 + r.len() + s.len()) as u8;
    assert_eq!(
        encode(vec![body], &r, &s, &[]),
        der,
        "the decomposition is exact"
    );
    let padded_r: Vec<u8> = [&[0u8, 0u8][..], &r].concat();
    let variants = [
        ("long-form length", encode(vec![0x81, body], &r, &s, &[])),
        ("padded r", encode(vec![body + 2], &padded_r, &s, &[])),
        ("trailing byte", encode(vec![body], &r, &s, &[0])),
    ];
    for (what, variant) in variants {
        let altered = with_signature(&token, 0, |_| variant.clone());
        assert!(
            !verifies_with_biscuit_auth(&altered, &root),
            "{what} was accepted"
        );
        assert!(ours(&altered, &root).is_err(), "{what} was accepted");
    }
}

/// An entry written in either form — ours (low-S) or another tool's raw high-S id — revokes both
/// twins, and appending the other form of a revoked id is refused as a repeat.
#[test]
fn a_revocation_written_in_either_form_refuses_both_twins() {
    let root = p256_root();
    let (high, _) = high_s_token(&root);
    let low = p256_twin(&high, 0);
    let raw_high = raw_revocation_ids(&high)[0].clone();
    let raw_low = raw_revocation_ids(&low)[0].clone();
    for written in [&raw_high, &raw_low] {
        let entry = NewRevocation {
            id: written.clone(),
            reason: "laptop stolen".into(),
            by: None,
            at: unix_now(),
        };
        let text = policy::revocations::append(policy::revocations::HEADER, &entry).unwrap();
        assert!(
            text.contains(&raw_low) && !text.contains(&raw_high),
            "written in canonical form: {text}"
        );
        let by_hand = format!("[[revoked]]\nid = \"{written}\"\nreason = \"laptop stolen\"\n");
        for file in [text.as_str(), by_hand.as_str()] {
            let (list, findings) = RevocationList::load(file);
            assert!(findings.is_empty(), "{findings:?}");
            for twin in [&high, &low] {
                let ids = token::revocation_ids(twin).unwrap();
                let refusal = list.refusal(&ids).expect("both twins are refused");
                assert!(refusal.contains("block 0"), "{refusal}");
            }
        }
        let other = NewRevocation {
            id: if written == &raw_high {
                raw_low.clone()
            } else {
                raw_high.clone()
            },
            ..entry
        };
        let again = policy::revocations::append(&text, &other).unwrap_err();
        assert!(again.contains("already revoked"), "{again}");
    }
}
