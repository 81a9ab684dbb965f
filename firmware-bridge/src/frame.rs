//! MAVLink framing: finding v1/v2 frames in a byte stream, checking CRC and signatures, parsing payloads, and
//! serialising (and signing) outgoing messages.
//!
//! The decoder is allocation-free per frame and never panics or stalls on bad input: garbage bytes, CRC
//! failures, unknown message ids, payloads that do not parse and packets that fail signing are each counted in
//! [`LinkCounters`] and skipped. It uses the `mavlink` crate's raw frame types (`MAVLinkV2MessageRaw` for CRC and
//! signatures) and `MavMessage::parse`, but owns the resynchronisation so every failure can be classified.
//!
//! This module is shared by the bridge's links and the simulated vehicle; the `mavlink` types stay
//! `pub(crate)`. [`FrameDecoder`] is public (with an opaque [`DecodedFrame`]) for the decode benchmark.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mavlink::{MAVLinkV2MessageRaw, MavHeader, MavlinkVersion, Message};

use crate::signing::{LinkSigning, SignatureCheck, SigningKey};

/// The dialect every link speaks (ardupilotmega, which includes common).
pub(crate) type MavMessage = mavlink::dialects::ardupilotmega::MavMessage;

const STX_V1: u8 = 0xFE;
const STX_V2: u8 = 0xFD;
const V1_HEADER_LEN: usize = 6;
const V2_HEADER_LEN: usize = 10;
const CHECKSUM_LEN: usize = 2;
const SIGNATURE_LEN: usize = 13;
const IFLAG_SIGNED: u8 = 0x01;
/// The largest frame: v2 header, 255 payload bytes, checksum, signature.
pub(crate) const MAX_FRAME_LEN: usize = V2_HEADER_LEN + 255 + CHECKSUM_LEN + SIGNATURE_LEN;

/// Counters of one link, shared between its I/O task and whoever shows them. All counters only grow.
#[derive(Debug, Default)]
pub struct LinkCounters {
    rx_bytes: AtomicU64,
    rx_packets: AtomicU64,
    parse_errors: AtomicU64,
    crc_errors: AtomicU64,
    unknown_messages: AtomicU64,
    garbage_bytes: AtomicU64,
    truncated_frames: AtomicU64,
    unsigned_dropped: AtomicU64,
    bad_signature_dropped: AtomicU64,
    tx_packets: AtomicU64,
    tx_errors: AtomicU64,
    unroutable: AtomicU64,
}

/// A snapshot of a link's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames received that passed CRC (and signing, on a signed link) and parsed.
    pub rx_packets: u64,
    /// Frames with a valid CRC whose payload did not parse (bad enum values and the like).
    pub parse_errors: u64,
    /// Frames whose checksum did not match.
    pub crc_errors: u64,
    /// Frames with a message id this dialect does not know (their CRC cannot be checked).
    pub unknown_messages: u64,
    /// Bytes skipped while looking for a frame start.
    pub garbage_bytes: u64,
    /// Frames cut short (a datagram ended, or a stream closed, mid-frame).
    pub truncated_frames: u64,
    /// Unsigned packets dropped on a signed link.
    pub unsigned_dropped: u64,
    /// Packets dropped on a signed link because the signature or its timestamp was wrong (replays included).
    pub bad_signature_dropped: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Frames that could not be sent (socket errors).
    pub tx_errors: u64,
    /// Outgoing frames for a system id no peer has been heard from (UDP server links).
    pub unroutable: u64,
}

impl LinkCounters {
    pub(crate) fn add_rx_bytes(&self, n: usize) {
        self.rx_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn tx_ok(&self) {
        self.tx_packets.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn tx_error(&self) {
        self.tx_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn unroutable(&self) {
        self.unroutable.fetch_add(1, Ordering::Relaxed);
    }

    /// A consistent-enough copy of every counter.
    pub fn snapshot(&self) -> LinkStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LinkStats {
            rx_bytes: get(&self.rx_bytes),
            rx_packets: get(&self.rx_packets),
            parse_errors: get(&self.parse_errors),
            crc_errors: get(&self.crc_errors),
            unknown_messages: get(&self.unknown_messages),
            garbage_bytes: get(&self.garbage_bytes),
            truncated_frames: get(&self.truncated_frames),
            unsigned_dropped: get(&self.unsigned_dropped),
            bad_signature_dropped: get(&self.bad_signature_dropped),
            tx_packets: get(&self.tx_packets),
            tx_errors: get(&self.tx_errors),
            unroutable: get(&self.unroutable),
        }
    }
}

/// One received, checked and parsed MAVLink frame.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) system_id: u8,
    pub(crate) component_id: u8,
    pub(crate) sequence: u8,
    pub(crate) message: MavMessage,
}

/// A decoded frame as the public decoder API shows it (the message itself stays inside the crate).
#[derive(Debug, Clone)]
pub struct DecodedFrame(pub(crate) Frame);

impl DecodedFrame {
    /// Sender system id.
    pub fn system_id(&self) -> u8 {
        self.0.system_id
    }

    /// Sender component id.
    pub fn component_id(&self) -> u8 {
        self.0.component_id
    }

    /// Packet sequence number.
    pub fn sequence(&self) -> u8 {
        self.0.sequence
    }

    /// MAVLink message id.
    pub fn message_id(&self) -> u32 {
        self.0.message.message_id()
    }

    /// MAVLink message name, e.g. `"HEARTBEAT"`.
    pub fn message_name(&self) -> &'static str {
        self.0.message.message_name()
    }
}

/// Incremental MAVLink v1/v2 frame decoder.
///
/// Feed bytes with [`FrameDecoder::push`] and take frames with [`FrameDecoder::next_decoded`] until it returns
/// `None`. A stream decoder (TCP, serial) keeps an incomplete frame until more bytes arrive. A datagram decoder
/// ([`FrameDecoder::datagrams`], for UDP) knows every push is a whole datagram (MAVLink frames never span
/// datagrams): an incomplete frame at its end is counted as truncated and scanning resumes after its marker, so
/// a fake frame start in garbage never hides the good frames after it.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    counters: Arc<LinkCounters>,
    signing: Option<Arc<LinkSigning>>,
    datagram: bool,
}

enum Scan {
    NeedMore,
    Skip(usize),
    Frame(usize, MavlinkVersion),
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(Arc::new(LinkCounters::default()))
    }
}

impl FrameDecoder {
    /// A decoder counting into `counters`, accepting unsigned packets.
    pub fn new(counters: Arc<LinkCounters>) -> Self {
        Self { buf: Vec::with_capacity(4096), start: 0, counters, signing: None, datagram: false }
    }

    /// A decoder for datagram transports: each [`FrameDecoder::push`] is one whole datagram.
    pub fn datagrams(counters: Arc<LinkCounters>) -> Self {
        Self { datagram: true, ..Self::new(counters) }
    }

    /// A decoder for a link signed with `key`, as the bridge's links build it: unsigned, wrongly signed and
    /// replayed packets are dropped and counted. `datagram` as for [`FrameDecoder::datagrams`].
    pub fn signed(counters: Arc<LinkCounters>, key: &SigningKey, datagram: bool) -> Self {
        Self::with_signing(counters, Some(Arc::new(LinkSigning::new(key, 0))), datagram)
    }

    /// A decoder that, with `signing`, drops unsigned and wrongly signed packets.
    pub(crate) fn with_signing(counters: Arc<LinkCounters>, signing: Option<Arc<LinkSigning>>, datagram: bool) -> Self {
        Self { signing, datagram, ..Self::new(counters) }
    }

    /// The counters this decoder updates.
    pub fn counters(&self) -> &Arc<LinkCounters> {
        &self.counters
    }

    /// Appends received bytes (a datagram decoder first drops what is left of the previous datagram).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.datagram {
            self.end_datagram();
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 8192 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
        self.counters.add_rx_bytes(bytes.len());
    }

    /// Drops what is left in the buffer, counting an incomplete frame as truncated (a stream that closed).
    pub fn end_datagram(&mut self) {
        let rest = &self.buf[self.start..];
        if !rest.is_empty() {
            if rest.iter().any(|b| *b == STX_V1 || *b == STX_V2) {
                self.counters.truncated_frames.fetch_add(1, Ordering::Relaxed);
            } else {
                self.counters.garbage_bytes.fetch_add(rest.len() as u64, Ordering::Relaxed);
            }
        }
        self.buf.clear();
        self.start = 0;
    }

    /// The next good frame, or `None` when more bytes are needed.
    pub fn next_decoded(&mut self) -> Option<DecodedFrame> {
        self.next_frame().map(DecodedFrame)
    }

    pub(crate) fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.scan() {
                Scan::NeedMore if self.datagram && self.start < self.buf.len() => {
                    // Nothing more will come for this datagram: the candidate is truncated (or was never a
                    // frame); look for another marker after it.
                    self.counters.truncated_frames.fetch_add(1, Ordering::Relaxed);
                    self.start += 1;
                }
                Scan::NeedMore => return None,
                Scan::Skip(n) => self.start += n,
                Scan::Frame(len, version) => {
                    let begin = self.start;
                    self.start += len;
                    if let Some(frame) = self.check_and_parse(begin, len, version) {
                        return Some(frame);
                    }
                }
            }
        }
    }

    fn scan(&mut self) -> Scan {
        let data = &self.buf[self.start..];
        let Some(pos) = data.iter().position(|b| *b == STX_V1 || *b == STX_V2) else {
            if !data.is_empty() {
                self.counters.garbage_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            return Scan::Skip(data.len()).none_if_empty();
        };
        if pos > 0 {
            self.counters.garbage_bytes.fetch_add(pos as u64, Ordering::Relaxed);
            return Scan::Skip(pos);
        }
        let (version, header_len) = if data.first() == Some(&STX_V1) {
            (MavlinkVersion::V1, V1_HEADER_LEN)
        } else {
            (MavlinkVersion::V2, V2_HEADER_LEN)
        };
        if data.len() < header_len {
            return Scan::NeedMore;
        }
        let payload_len = usize::from(data[1]);
        let mut len = header_len + payload_len + CHECKSUM_LEN;
        let msg_id = if version == MavlinkVersion::V2 {
            let incompat = data[2];
            if incompat & !IFLAG_SIGNED != 0 {
                // Unknown incompatibility flags: we cannot frame this; resynchronise after the marker.
                self.counters.garbage_bytes.fetch_add(1, Ordering::Relaxed);
                return Scan::Skip(1);
            }
            if incompat & IFLAG_SIGNED != 0 {
                len += SIGNATURE_LEN;
            }
            u32::from_le_bytes([data[7], data[8], data[9], 0])
        } else {
            u32::from(data[5])
        };
        if data.len() < len {
            return Scan::NeedMore;
        }
        let crc_end = header_len + payload_len;
        let extra = MavMessage::extra_crc(msg_id);
        let crc = mavlink::calculate_crc(&data[1..crc_end], extra);
        let got = u16::from_le_bytes([data[crc_end], data[crc_end + 1]]);
        if crc != got {
            if extra == 0 && MavMessage::default_message_from_id(msg_id).is_none() {
                self.counters.unknown_messages.fetch_add(1, Ordering::Relaxed);
            } else {
                self.counters.crc_errors.fetch_add(1, Ordering::Relaxed);
            }
            // The marker may have been a payload byte: look for the next one right after it.
            return Scan::Skip(1);
        }
        Scan::Frame(len, version)
    }

    fn check_and_parse(&mut self, begin: usize, len: usize, version: MavlinkVersion) -> Option<Frame> {
        let bytes = &self.buf[begin..begin + len];
        if let Some(signing) = &self.signing {
            let check = if version == MavlinkVersion::V2 {
                let mut raw = [0u8; mavlink::consts::MAX_FRAME_SIZE];
                raw[..len].copy_from_slice(bytes);
                signing.check(&MAVLinkV2MessageRaw::from_bytes_unparsed(raw))
            } else {
                SignatureCheck::Unsigned
            };
            match check {
                SignatureCheck::Valid => {}
                SignatureCheck::Unsigned => {
                    self.counters.unsigned_dropped.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                SignatureCheck::Invalid => {
                    self.counters.bad_signature_dropped.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let (sequence, system_id, component_id, msg_id, payload) = match version {
            MavlinkVersion::V1 => {
                (bytes[2], bytes[3], bytes[4], u32::from(bytes[5]), &bytes[6..6 + usize::from(bytes[1])])
            }
            MavlinkVersion::V2 => (
                bytes[4],
                bytes[5],
                bytes[6],
                u32::from_le_bytes([bytes[7], bytes[8], bytes[9], 0]),
                &bytes[10..10 + usize::from(bytes[1])],
            ),
        };
        match MavMessage::parse(version, msg_id, payload) {
            Ok(message) => {
                self.counters.rx_packets.fetch_add(1, Ordering::Relaxed);
                Some(Frame { system_id, component_id, sequence, message })
            }
            Err(_) => {
                self.counters.parse_errors.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

impl Scan {
    fn none_if_empty(self) -> Self {
        match self {
            Scan::Skip(0) => Scan::NeedMore,
            other => other,
        }
    }
}

/// Serialises outgoing messages as MAVLink 2 with our system/component id and a running sequence number,
/// signing them when the link has a key.
#[derive(Debug)]
pub(crate) struct FrameEncoder {
    system_id: u8,
    component_id: u8,
    sequence: u8,
    signing: Option<Arc<LinkSigning>>,
}

impl FrameEncoder {
    pub(crate) fn new(system_id: u8, component_id: u8, signing: Option<Arc<LinkSigning>>) -> Self {
        Self { system_id, component_id, sequence: 0, signing }
    }

    /// Serialises `message`; returns the frame bytes (valid until the next call).
    pub(crate) fn encode<'a>(&mut self, message: &MavMessage, raw: &'a mut MAVLinkV2MessageRaw) -> &'a [u8] {
        let header = MavHeader {
            system_id: u32::from(self.system_id),
            component_id: self.component_id,
            sequence: self.sequence,
        };
        self.sequence = self.sequence.wrapping_add(1);
        match &self.signing {
            Some(signing) => {
                raw.serialize_message_for_signing(header, message);
                signing.sign(raw);
            }
            None => {
                *raw.incompatibility_flags_mut() = 0;
                raw.serialize_message(header, message);
            }
        }
        raw.raw_bytes()
    }
}

#[cfg(test)]
mod tests {
    use mavlink::dialects::ardupilotmega::{HEARTBEAT_DATA, MavAutopilot, MavType, SYS_STATUS_DATA};
    use proptest::prelude::*;

    use super::*;

    fn heartbeat() -> MavMessage {
        MavMessage::HEARTBEAT(HEARTBEAT_DATA {
            autopilot: MavAutopilot::MAV_AUTOPILOT_ARDUPILOTMEGA,
            mavtype: MavType::MAV_TYPE_QUADROTOR,
            custom_mode: 5,
            ..HEARTBEAT_DATA::default()
        })
    }

    fn encode(sysid: u8, msg: &MavMessage) -> Vec<u8> {
        let mut enc = FrameEncoder::new(sysid, 1, None);
        let mut raw = MAVLinkV2MessageRaw::new();
        enc.encode(msg, &mut raw).to_vec()
    }

    fn encode_v1(sysid: u8, msg: &MavMessage) -> Vec<u8> {
        let mut out = Vec::new();
        let header = MavHeader { system_id: u32::from(sysid), component_id: 1, sequence: 7 };
        mavlink::write_v1_msg(&mut out, header, msg).unwrap();
        out
    }

    fn drain(dec: &mut FrameDecoder) -> Vec<Frame> {
        std::iter::from_fn(|| dec.next_frame()).collect()
    }

    #[test]
    fn decodes_v1_and_v2_frames_split_at_every_byte() {
        let mut stream = encode(3, &heartbeat());
        stream.extend(encode_v1(4, &MavMessage::SYS_STATUS(SYS_STATUS_DATA::default())));
        for split in 0..stream.len() {
            let mut dec = FrameDecoder::default();
            dec.push(&stream[..split]);
            let mut frames = drain(&mut dec);
            dec.push(&stream[split..]);
            frames.extend(drain(&mut dec));
            assert_eq!(frames.len(), 2, "split at {split}");
            assert_eq!(frames[0].system_id, 3);
            assert!(matches!(frames[0].message, MavMessage::HEARTBEAT(_)));
            assert_eq!(frames[1].system_id, 4);
            assert_eq!(frames[1].sequence, 7);
        }
    }

    #[test]
    fn garbage_and_bad_crc_are_counted_and_skipped() {
        let good = encode(1, &heartbeat());
        let mut corrupt = good.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xFF;
        let mut stream = vec![0x00, 0x11, 0x22];
        stream.extend(&corrupt);
        stream.extend(&good);
        let mut dec = FrameDecoder::datagrams(Arc::new(LinkCounters::default()));
        dec.push(&stream);
        let frames = drain(&mut dec);
        assert_eq!(frames.len(), 1);
        let stats = dec.counters().snapshot();
        assert_eq!(stats.crc_errors, 1);
        assert_eq!(stats.rx_packets, 1);
        assert!(stats.garbage_bytes >= 3);
    }

    #[test]
    fn truncated_datagram_is_counted_and_does_not_hide_the_next_frame() {
        let good = encode(1, &heartbeat());
        let mut dec = FrameDecoder::datagrams(Arc::new(LinkCounters::default()));
        dec.push(&good[..good.len() - 3]);
        assert!(dec.next_frame().is_none());
        dec.push(&good);
        assert_eq!(drain(&mut dec).len(), 1);
        assert!(dec.counters().snapshot().truncated_frames >= 1);
        // A fake frame start claiming 255 bytes right before a good frame in the same datagram.
        let mut datagram = vec![0xFD, 0xFF, 0x00];
        datagram.extend(&good);
        dec.push(&datagram);
        assert_eq!(drain(&mut dec).len(), 1);
    }

    #[test]
    fn a_stream_waits_for_the_rest_of_a_split_frame() {
        let good = encode(1, &heartbeat());
        let mut dec = FrameDecoder::default();
        dec.push(&good[..5]);
        assert!(dec.next_frame().is_none());
        dec.push(&good[5..]);
        assert_eq!(drain(&mut dec).len(), 1);
    }

    #[test]
    fn valid_crc_with_bad_enum_is_a_parse_error() {
        // HEARTBEAT with autopilot = 200 (not a MAV_AUTOPILOT value), CRC recomputed so only parsing fails.
        let mut frame = encode(1, &heartbeat());
        // v2 payload starts at 10: custom_mode(4) type(1) autopilot(1)...
        frame[10 + 5] = 200;
        let crc_end = 10 + usize::from(frame[1]);
        let crc = mavlink::calculate_crc(&frame[1..crc_end], MavMessage::extra_crc(0));
        frame[crc_end..crc_end + 2].copy_from_slice(&crc.to_le_bytes());
        let mut dec = FrameDecoder::default();
        dec.push(&frame);
        assert!(drain(&mut dec).is_empty());
        assert_eq!(dec.counters().snapshot().parse_errors, 1);
    }

    #[test]
    fn unknown_message_id_is_counted() {
        let mut frame = encode(1, &heartbeat());
        frame[7] = 0xEE;
        frame[8] = 0xEE;
        let mut dec = FrameDecoder::default();
        dec.push(&frame);
        assert!(drain(&mut dec).is_empty());
        assert_eq!(dec.counters().snapshot().unknown_messages, 1);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_and_good_frames_survive(noise in proptest::collection::vec(any::<u8>(), 0..2048),
                                                              split in 0usize..4096) {
            let good = encode(9, &heartbeat());
            let mut stream = noise.clone();
            // Good frames after random bytes: a fake frame start in the noise can delay decoding by at most
            // one maximum frame length, so with more than that many bytes of good frames, some come through.
            for _ in 0..(MAX_FRAME_LEN / good.len() + 2) {
                stream.extend(&good);
            }
            let mut dec = FrameDecoder::default();
            let split = split.min(stream.len());
            dec.push(&stream[..split]);
            let mut frames = drain(&mut dec);
            dec.push(&stream[split..]);
            frames.extend(drain(&mut dec));
            prop_assert!(frames.iter().any(|f| f.system_id == 9));
            let stats = dec.counters().snapshot();
            prop_assert_eq!(stats.rx_bytes, stream.len() as u64);
        }

        #[test]
        fn random_datagrams_never_panic_and_a_good_frame_after_noise_survives(
            datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)
        ) {
            let good = encode(9, &heartbeat());
            let mut dec = FrameDecoder::datagrams(Arc::new(LinkCounters::default()));
            for d in &datagrams {
                let mut d = d.clone();
                d.extend(&good);
                dec.push(&d);
                prop_assert!(drain(&mut dec).iter().any(|f| f.system_id == 9));
            }
        }
    }
}
