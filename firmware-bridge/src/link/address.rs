//! Link addresses as MAVSDK and mavlink-router spell them.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::BridgeError;

/// Where a link connects, parsed from `udpin:0.0.0.0:14550`, `udpout:host:port`, `tcpin:addr:port`,
/// `tcpout:host:port` or `serial:/dev/ttyUSB0:57600`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAddress {
    /// Listen for UDP packets on `host:port`; each vehicle is answered at the address it was last heard from.
    UdpIn(String),
    /// Send UDP packets to `host:port` (and read the answers).
    UdpOut(String),
    /// Accept a TCP connection on `host:port`.
    TcpIn(String),
    /// Connect over TCP to `host:port`.
    TcpOut(String),
    /// A serial device (telemetry radio) at a baud rate.
    Serial {
        /// The device, e.g. `/dev/ttyUSB0` or `COM3`.
        path: PathBuf,
        /// Baud rate, e.g. 57600.
        baud: u32,
    },
}

impl LinkAddress {
    /// Whether this is a server address that binds a local port (`udpin`, `tcpin`).
    pub fn is_server(&self) -> bool {
        matches!(self, LinkAddress::UdpIn(_) | LinkAddress::TcpIn(_))
    }
}

fn host_port(address: &str, rest: &str) -> Result<String, BridgeError> {
    let invalid = |reason: &str| BridgeError::InvalidAddress { address: address.to_string(), reason: reason.into() };
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| invalid("missing :PORT"))?;
    if host.is_empty() {
        return Err(invalid("missing host (use 0.0.0.0 to listen on every interface)"));
    }
    port.parse::<u16>().map_err(|_| invalid(&format!("port {port:?} is not a number from 0 to 65535")))?;
    Ok(rest.to_string())
}

impl FromStr for LinkAddress {
    type Err = BridgeError;

    fn from_str(address: &str) -> Result<Self, Self::Err> {
        let invalid =
            |reason: &str| BridgeError::InvalidAddress { address: address.to_string(), reason: reason.into() };
        let (scheme, rest) = address.trim().split_once(':').ok_or_else(|| invalid("missing scheme"))?;
        match scheme.to_ascii_lowercase().as_str() {
            "udpin" | "udp" => Ok(LinkAddress::UdpIn(host_port(address, rest)?)),
            "udpout" => Ok(LinkAddress::UdpOut(host_port(address, rest)?)),
            "tcpin" => Ok(LinkAddress::TcpIn(host_port(address, rest)?)),
            "tcpout" | "tcp" => Ok(LinkAddress::TcpOut(host_port(address, rest)?)),
            "serial" => {
                let (path, baud) = rest.rsplit_once(':').ok_or_else(|| invalid("missing :BAUD"))?;
                if path.is_empty() {
                    return Err(invalid("missing device path"));
                }
                let baud = baud
                    .parse::<u32>()
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| invalid(&format!("baud rate {baud:?} is not a positive number")))?;
                Ok(LinkAddress::Serial { path: PathBuf::from(path), baud })
            }
            other => Err(invalid(&format!("unknown scheme {other:?}"))),
        }
    }
}

impl fmt::Display for LinkAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkAddress::UdpIn(a) => write!(f, "udpin:{a}"),
            LinkAddress::UdpOut(a) => write!(f, "udpout:{a}"),
            LinkAddress::TcpIn(a) => write!(f, "tcpin:{a}"),
            LinkAddress::TcpOut(a) => write!(f, "tcpout:{a}"),
            LinkAddress::Serial { path, baud } => write!(f, "serial:{}:{baud}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_round_trips() {
        for text in [
            "udpin:0.0.0.0:14550",
            "udpout:192.168.1.10:14550",
            "tcpin:127.0.0.1:5760",
            "tcpout:sitl.local:5760",
            "serial:/dev/ttyUSB0:57600",
            "udpin:[::]:14550",
        ] {
            let address: LinkAddress = text.parse().unwrap();
            assert_eq!(address.to_string(), text);
        }
        assert_eq!(
            "serial:/dev/ttyACM0:115200".parse::<LinkAddress>().unwrap(),
            LinkAddress::Serial { path: PathBuf::from("/dev/ttyACM0"), baud: 115_200 }
        );
        assert!("udpin:0.0.0.0:14550".parse::<LinkAddress>().unwrap().is_server());
    }

    #[test]
    fn rejects_bad_addresses_with_a_helpful_message() {
        for (text, hint) in [
            ("14550", "missing scheme"),
            ("udpin:14550", "missing :PORT"),
            ("udpin::14550", "missing host"),
            ("udpin:0.0.0.0:99999", "port"),
            ("serial:/dev/ttyUSB0", "missing :BAUD"),
            ("serial:/dev/ttyUSB0:fast", "baud"),
            ("http://x:1", "unknown scheme"),
        ] {
            let err = text.parse::<LinkAddress>().unwrap_err().to_string();
            assert!(err.contains(hint), "{text}: {err}");
            assert!(err.contains("udpin:0.0.0.0:14550"), "the message shows an example: {err}");
        }
    }
}
