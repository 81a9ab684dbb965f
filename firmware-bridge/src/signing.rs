//! MAVLink 2 message signing (<https://mavlink.io/en/guide/message_signing.html>).
//!
//! A signed link signs every packet it sends (SHA-256 over key + frame, first 48 bits, with a 48-bit timestamp
//! in 10 µs units since 2015-01-01) and drops every packet it receives that is unsigned, wrongly signed, or
//! carries a timestamp not newer than the last one seen on the same (link id, system, component) stream
//! (replays). The signature maths and timestamp rules are the `mavlink` crate's `mav2-message-signing`.

use std::fmt;

use mavlink::{MAVLinkV2MessageRaw, SigningConfig, SigningData};
use sha2::{Digest, Sha256};

use crate::error::BridgeError;

/// A 32-byte MAVLink 2 signing secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey([u8; 32]);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key MAVProxy's and Mission Planner's `setup_signing <passphrase>` derive: SHA-256 of the passphrase.
    pub fn from_passphrase(passphrase: &str) -> Self {
        Self(Sha256::digest(passphrase.as_bytes()).into())
    }

    /// A key from 64 hex digits.
    ///
    /// # Errors
    /// [`BridgeError::InvalidSigningKey`] when the text is not exactly 64 hex digits.
    pub fn from_hex(hex: &str) -> Result<Self, BridgeError> {
        let hex = hex.trim();
        let invalid = || BridgeError::InvalidSigningKey { reason: "expected 64 hex digits (32 bytes)".into() };
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(invalid());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(Self(out))
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The result of checking one received frame on a signed link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureCheck {
    Valid,
    Unsigned,
    Invalid,
}

/// Signing state of one link: the key, our outgoing timestamp, and the last timestamp per incoming stream.
pub(crate) struct LinkSigning {
    data: SigningData,
}

impl fmt::Debug for LinkSigning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSigning(<redacted>)")
    }
}

impl LinkSigning {
    /// Signing with `key`; our packets carry `link_id`. Unsigned packets are never accepted.
    pub(crate) fn new(key: &SigningKey, link_id: u8) -> Self {
        Self { data: SigningData::from_config(SigningConfig::new(key.0, link_id, true, false)) }
    }

    pub(crate) fn check(&self, raw: &MAVLinkV2MessageRaw) -> SignatureCheck {
        if raw.incompatibility_flags() & mavlink::consts::v2::IFLAG_SIGNED == 0 {
            return SignatureCheck::Unsigned;
        }
        if self.data.verify_signature(raw) { SignatureCheck::Valid } else { SignatureCheck::Invalid }
    }

    /// Fills in the signature of a frame serialised with `serialize_message_for_signing`.
    pub(crate) fn sign(&self, raw: &mut MAVLinkV2MessageRaw) {
        self.data.sign_message(raw);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mavlink::dialects::ardupilotmega::HEARTBEAT_DATA;

    use super::*;
    use crate::frame::{FrameDecoder, FrameEncoder, LinkCounters, MavMessage};

    fn signed_frame(key: &SigningKey) -> Vec<u8> {
        let signing = Arc::new(LinkSigning::new(key, 1));
        let mut enc = FrameEncoder::new(7, 1, Some(signing));
        let mut raw = MAVLinkV2MessageRaw::new();
        enc.encode(&MavMessage::HEARTBEAT(HEARTBEAT_DATA::default()), &mut raw).to_vec()
    }

    fn receiver(key: &SigningKey) -> FrameDecoder {
        FrameDecoder::with_signing(Arc::new(LinkCounters::default()), Some(Arc::new(LinkSigning::new(key, 0))), false)
    }

    #[test]
    fn signed_packets_pass_and_replays_are_dropped() {
        let key = SigningKey::from_passphrase("patrol");
        let frame = signed_frame(&key);
        let mut rx = receiver(&key);
        rx.push(&frame);
        assert!(rx.next_frame().is_some());
        // The same packet again: its timestamp is not newer than the last one on this stream.
        rx.push(&frame);
        assert!(rx.next_frame().is_none());
        assert_eq!(rx.counters().snapshot().bad_signature_dropped, 1);
    }

    #[test]
    fn wrong_key_and_unsigned_are_dropped_and_counted() {
        let mut rx = receiver(&SigningKey::from_passphrase("right"));
        rx.push(&signed_frame(&SigningKey::from_passphrase("wrong")));
        assert!(rx.next_frame().is_none());
        let mut enc = FrameEncoder::new(7, 1, None);
        let mut raw = MAVLinkV2MessageRaw::new();
        rx.push(enc.encode(&MavMessage::HEARTBEAT(HEARTBEAT_DATA::default()), &mut raw));
        assert!(rx.next_frame().is_none());
        let stats = rx.counters().snapshot();
        assert_eq!((stats.bad_signature_dropped, stats.unsigned_dropped, stats.rx_packets), (1, 1, 0));
    }

    #[test]
    fn hex_keys_parse_and_debug_is_redacted() {
        let key = SigningKey::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(key.as_bytes()[0], 0xAB);
        assert!(SigningKey::from_hex("abc").is_err());
        assert!(SigningKey::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{key:?}"), "SigningKey(<redacted>)");
    }
}
