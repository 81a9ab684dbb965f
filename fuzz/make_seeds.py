#!/usr/bin/env python3
"""Writes the generated seed corpora under fuzz/corpus/. Standard library only; run from anywhere.

- mavlink_receive/: hand-built v1/v2 frames of the messages the vehicle actor reads, unsigned and signed with the
  harness key (SHA-256 of "patrol-fuzz").
- photo_ingest/ and push_request/: drone photos built from a 543-byte baseline JPEG (fuzz/seed-base.jpg, CPython's
  test image) with a DJI-style EXIF block (GPS, time, focal length) and XMP packet, as `patrol ingest` and
  `POST /api/frames` receive them; push requests in the harness's `content-type \n metadata \n query \n body` form.

Signed seeds carry timestamps in the 2060s: the signing check rejects a new stream more than a minute older than
the receiver's clock, so seeds from "now" would stop covering the accept path once they age.
"""
import hashlib
import os
import struct

KEY = hashlib.sha256(b"patrol-fuzz").digest()
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "mavlink_receive")


def x25(data, crc=0xFFFF):
    for b in data:
        tmp = b ^ (crc & 0xFF)
        tmp = (tmp ^ (tmp << 4)) & 0xFF
        crc = ((crc >> 8) ^ (tmp << 8) ^ (tmp << 3) ^ (tmp >> 4)) & 0xFFFF
    return crc


# (id, crc_extra, payload) for the messages firmware-bridge's vehicle actor handles.
MESSAGES = {
    "heartbeat": (0, 50, struct.pack("<IBBBBB", 4, 2, 3, 0x81, 4, 3)),
    "sys_status": (1, 124, struct.pack("<IIIHHhHHHHHHb", 0, 0, 0, 500, 15800, 1200, 0, 0, 0, 0, 0, 0, 87)),
    "attitude": (30, 39, struct.pack("<I6f", 1000, 0.01, -0.02, 1.5, 0.0, 0.0, 0.0)),
    "global_position_int": (33, 104, struct.pack("<Iiiiihhhh", 1000, 225400000, 1138800000, 50000, 40000, 100, -50, 0, 9000)),
    "mission_current": (42, 28, struct.pack("<H", 3)),
    "mission_ack": (47, 153, struct.pack("<BBB", 255, 190, 0)),
    "mission_request_int": (51, 196, struct.pack("<HBBB", 2, 255, 190, 0)),
    "mission_count": (44, 221, struct.pack("<HBBB", 5, 255, 190, 0)),
    "command_ack": (77, 143, struct.pack("<HB", 400, 0)),
    "named_value_float": (251, 170, struct.pack("<If10s", 1000, 2.5, b"CH4")),
    "statustext": (253, 83, struct.pack("<B50s", 4, b"PreArm: Need 3D Fix")),
    "camera_image_captured": (
        263, 133,
        struct.pack("<QIiiii4fiBb205s", 1_700_000_000_000_000, 1000, 225400000, 1138800000, 50000, 40000,
                    1.0, 0.0, 0.0, 0.0, 7, 0, 1, b"http://192.168.1.10/DCIM/IMG_0007.JPG"),
    ),
}


def v2(msg_id, extra, payload, seq=0, sysid=1, compid=1, sign_ts=None, link_id=0):
    payload = payload.rstrip(b"\0") or b"\0"  # MAVLink 2 payload truncation
    flags = 0x01 if sign_ts is not None else 0
    header = bytes([0xFD, len(payload), flags, 0, seq, sysid, compid]) + struct.pack("<I", msg_id)[:3]
    crc = x25(header[1:] + payload + bytes([extra]))
    frame = header + payload + struct.pack("<H", crc)
    if sign_ts is not None:
        tail = bytes([link_id]) + struct.pack("<Q", sign_ts)[:6]
        frame += tail + hashlib.sha256(KEY + frame + tail).digest()[:6]
    return frame


def v1(msg_id, extra, payload, seq=0, sysid=1, compid=1):
    header = bytes([0xFE, len(payload), seq, sysid, compid, msg_id])
    return header + payload + struct.pack("<H", x25(header[1:] + payload + bytes([extra])))


def main():
    os.makedirs(OUT, exist_ok=True)
    ts = 140_000_000_000_000  # 10 us units since 2015: about 2059
    everything = b""
    for seq, (name, (msg_id, extra, payload)) in enumerate(MESSAGES.items()):
        with open(os.path.join(OUT, f"v2-{name}"), "wb") as f:
            f.write(v2(msg_id, extra, payload, seq=seq))
        with open(os.path.join(OUT, f"signed-{name}"), "wb") as f:
            f.write(v2(msg_id, extra, payload, seq=seq, sign_ts=ts + seq))
        everything += v2(msg_id, extra, payload, seq=seq, sign_ts=ts + seq)
    msg_id, extra, payload = MESSAGES["heartbeat"]
    with open(os.path.join(OUT, "v1-heartbeat"), "wb") as f:
        f.write(v1(msg_id, extra, payload))
    # A signed burst: every message in one datagram, in timestamp order.
    with open(os.path.join(OUT, "signed-burst"), "wb") as f:
        f.write(everything)
    # Garbage, a torn frame and a good frame: resynchronisation.
    good = v2(*MESSAGES["attitude"][:2], MESSAGES["attitude"][2])
    with open(os.path.join(OUT, "resync"), "wb") as f:
        f.write(b"\x00\xfd\x09garbage" + good[:7] + good + b"\xfe")


# ---- photos ------------------------------------------------------------------------------------------------

ASCII, SHORT, RATIONAL, BYTE, LONG = 2, 3, 5, 1, 4


def ifd(entries, offset, bo):
    """One TIFF IFD at `offset`: entries are (tag, type, count, value bytes); returns its bytes (data after it)."""
    entries = sorted(entries)
    size = 2 + 12 * len(entries) + 4
    table, data = struct.pack(bo + "H", len(entries)), b""
    for tag, typ, count, value in entries:
        if len(value) <= 4:
            table += struct.pack(bo + "HHI", tag, typ, count) + value.ljust(4, b"\0")
        else:
            table += struct.pack(bo + "HHII", tag, typ, count, offset + size + len(data))
            data += value + (b"\0" if len(value) % 2 else b"")
    return table + struct.pack(bo + "I", 0) + data


def exif_block(bo=">", lat=(47, 7, 244416, 10000), lat_ref=b"N", lon=(8, 39, 155556, 10000), lon_ref=b"E"):
    rat = lambda *pairs: b"".join(struct.pack(bo + "II", n, d) for n, d in pairs)
    asc = lambda text: text + b"\0"
    gps = [
        (1, ASCII, 2, asc(lat_ref)),
        (2, RATIONAL, 3, rat((lat[0], 1), (lat[1], 1), (lat[2], lat[3]))),
        (3, ASCII, 2, asc(lon_ref)),
        (4, RATIONAL, 3, rat((lon[0], 1), (lon[1], 1), (lon[2], lon[3]))),
        (5, BYTE, 1, b"\0"),
        (6, RATIONAL, 1, rat((512500, 1000))),
    ]
    exif = [
        (0x9003, ASCII, 20, asc(b"2026:05:04 10:02:01")),
        (0x9011, ASCII, 7, asc(b"+02:00")),
        (0x9291, ASCII, 3, asc(b"25")),
        (0x920A, RATIONAL, 1, rat((45, 10))),
        (0xA405, SHORT, 1, struct.pack(bo + "H", 24)),
    ]
    make, model = asc(b"DJI"), asc(b"FC3411")
    ifd0_entries = lambda exif_at, gps_at: [
        (0x010F, ASCII, len(make), make),
        (0x0110, ASCII, len(model), model),
        (0x8769, LONG, 1, struct.pack(bo + "I", exif_at)),
        (0x8825, LONG, 1, struct.pack(bo + "I", gps_at)),
    ]
    header = (b"MM" if bo == ">" else b"II") + struct.pack(bo + "HI", 42, 8)
    ifd0_len = len(ifd(ifd0_entries(0, 0), 8, bo))
    exif_at = 8 + ifd0_len
    exif_ifd = ifd(exif, exif_at, bo)
    gps_at = exif_at + len(exif_ifd)
    return header + ifd(ifd0_entries(exif_at, gps_at), 8, bo) + exif_ifd + ifd(gps, gps_at, bo)


XMP = b"""<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="DJI Meta Data" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"
 drone-dji:AbsoluteAltitude="+572.80" drone-dji:RelativeAltitude="+60.30"
 drone-dji:GimbalRollDegree="0.00" drone-dji:GimbalYawDegree="+45.00"
 drone-dji:GimbalPitchDegree="-90.00" drone-dji:FlightRollDegree="+1.00"
 drone-dji:FlightYawDegree="+44.0" drone-dji:FlightPitchDegree="-2.00"/>
</rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""


def segment(marker, payload):
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def photo(base, exif=None, xmp=None):
    out = b"\xff\xd8"
    if exif is not None:
        out += segment(0xE1, b"Exif\0\0" + exif)
    if xmp is not None:
        out += segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + xmp)
    return out + base[2:]


def write(directory, name, data):
    os.makedirs(os.path.join(HERE, "corpus", directory), exist_ok=True)
    with open(os.path.join(HERE, "corpus", directory, name), "wb") as f:
        f.write(data)


def photos():
    base = open(os.path.join(HERE, "seed-base.jpg"), "rb").read()
    write("photo_ingest", "dji-exif-xmp.jpg", photo(base, exif_block(), XMP))
    write("photo_ingest", "exif-little-endian.jpg", photo(base, exif_block("<")))
    write("photo_ingest", "exif-south-west.jpg", photo(base, exif_block(lat_ref=b"S", lon_ref=b"W")))
    write("photo_ingest", "xmp-only.jpg", photo(base, None, XMP))
    write("photo_ingest", "plain.jpg", base)

    metadata = (b'{"drone_id":"d1","capture_time":"2026-05-04T08:02:01.25Z","lat_deg":47.123456,'
                b'"lon_deg":8.654321,"relative_alt_m":60.3,"gimbal":{"roll_deg":0,"pitch_deg":-90,"yaw_deg":45},'
                b'"intrinsics":{"width_px":4000,"height_px":3000,"fx_px":2900,"fy_px":2900}}')
    write("push_request", "header.req", b"image/jpeg\n" + metadata + b"\n\n" + base)
    quoted = metadata.replace(b'"', b"%22").replace(b"{", b"%7B").replace(b"}", b"%7D").replace(b":", b"%3A")
    write("push_request", "query.req", b"application/octet-stream\n\nmetadata=" + quoted + b"\n" + base)
    quaternion = metadata.replace(b'"gimbal":{"roll_deg":0,"pitch_deg":-90,"yaw_deg":45}', b'"quaternion":[0.7071,0,0.7071,0]')
    quaternion = quaternion.replace(b'"intrinsics":{"width_px":4000,"height_px":3000,"fx_px":2900,"fy_px":2900}', b'"camera":"FC3411"')
    write("push_request", "quaternion-camera.req", b"image/jpeg\n" + quaternion + b"\n\n" + base)
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n"
            + metadata + b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
            + b"Content-Type: image/jpeg\r\n\r\n" + base + b"\r\n--XyZ--\r\n")
    write("push_request", "multipart.req", b"multipart/form-data; boundary=XyZ\n\n\n" + body)


if __name__ == "__main__":
    main()
    photos()
