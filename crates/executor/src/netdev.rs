//! `linux.netDevices`: host network interfaces moved into the container's network namespace
//! (and renamed there), with one rtnetlink request each. Hand-written: the message is two
//! attributes long, and the netlink crates would add a tokio stack to a synchronous binary.
//!
//! When the container's network namespace goes away, the kernel moves physical devices back
//! to the host and destroys virtual ones (a veth end takes its peer with it).

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use oci_spec::runtime::LinuxNetDevice;

use crate::error::{Error, Result};

const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_ERROR: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;

/// Checks names before anything is created: interface names are at most 15 bytes, without '/'
/// or whitespace, and the devices need the container's own network namespace.
pub fn validate(devices: &HashMap<String, LinuxNetDevice>, new_netns: bool) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    if !new_netns {
        return Err(Error::spec(
            "linux.netDevices",
            "moving devices needs a new network namespace",
        ));
    }
    let bad = |n: &str| {
        n.is_empty()
            || n.len() > 15
            || n == "."
            || n == ".."
            || n.contains(['/', ':'])
            || n.contains(char::is_whitespace)
    };
    for (host, d) in devices {
        if bad(host) {
            return Err(Error::spec(
                format!("linux.netDevices.{host}"),
                "not a valid interface name",
            ));
        }
        if let Some(name) = d.name().as_deref().filter(|n| bad(n)) {
            return Err(Error::spec(
                format!("linux.netDevices.{host}.name"),
                format!("{name:?} is not a valid interface name"),
            ));
        }
    }
    Ok(())
}

/// Moves each device into the network namespace of `pid`, under its new name if one is given.
pub fn move_into(devices: &HashMap<String, LinuxNetDevice>, pid: i32) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let ns_path = format!("/proc/{pid}/ns/net");
    let netns = std::fs::File::open(&ns_path).map_err(|e| Error::io("open", &ns_path, e))?;
    let sock = socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(|e| Error::sys("netlink socket", e))?;
    socket::bind(sock.as_raw_fd(), &NetlinkAddr::new(0, 0))
        .map_err(|e| Error::sys("bind netlink socket", e))?;
    for (seq, (host, d)) in devices.iter().enumerate() {
        let field = format!("linux.netDevices.{host}");
        let index = nix::net::if_::if_nametoindex(host.as_str())
            .map_err(|e| Error::spec(&field, format!("no such host interface: {e}")))?;
        let name = d.name().as_deref().unwrap_or(host);
        let msg = newlink_message(
            seq as u32 + 1,
            index,
            netns.as_fd().as_raw_fd() as u32,
            name,
        );
        socket::send(sock.as_raw_fd(), &msg, MsgFlags::empty())
            .map_err(|e| Error::sys("netlink send", e))?;
        let mut buf = [0u8; 1024];
        let n = socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())
            .map_err(|e| Error::sys("netlink recv", e))?;
        let errno =
            ack_error(&buf[..n]).ok_or_else(|| Error::spec(&field, "malformed netlink answer"))?;
        if errno != 0 {
            return Err(Error::spec(
                field,
                format!(
                    "move into the container as {name}: {}",
                    std::io::Error::from_raw_os_error(errno)
                ),
            ));
        }
    }
    Ok(())
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// RTM_NEWLINK { ifinfomsg { index }, IFLA_NET_NS_FD, IFLA_IFNAME } with an ack requested.
fn newlink_message(seq: u32, index: u32, netns_fd: u32, name: &str) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    // struct ifinfomsg: family, pad, type, index, flags, change
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&(index as i32).to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    push_attr(&mut m, IFLA_NET_NS_FD, &netns_fd.to_ne_bytes());
    let mut cname = name.as_bytes().to_vec();
    cname.push(0);
    push_attr(&mut m, IFLA_IFNAME, &cname);
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

/// The (positive) errno of a netlink ack, 0 for success.
fn ack_error(buf: &[u8]) -> Option<i32> {
    if buf.len() < 20 || u16::from_ne_bytes([buf[4], buf[5]]) != NLMSG_ERROR {
        return None;
    }
    Some(-i32::from_ne_bytes(buf[16..20].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlink_message_layout() {
        let m = newlink_message(7, 3, 9, "eth1");
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWLINK);
        assert_eq!(
            i32::from_ne_bytes(m[20..24].try_into().unwrap()),
            3,
            "ifindex"
        );
        // first attribute: IFLA_NET_NS_FD = 9
        assert_eq!(u16::from_ne_bytes([m[34], m[35]]), IFLA_NET_NS_FD);
        assert_eq!(u32::from_ne_bytes(m[36..40].try_into().unwrap()), 9);
        assert_eq!(&m[44..49], b"eth1\0");
        assert_eq!(m.len() % 4, 0);
    }

    #[test]
    fn names_are_checked() {
        let mut d = HashMap::new();
        d.insert("eth0".to_owned(), LinuxNetDevice::default());
        assert!(validate(&d, false).is_err(), "needs a new netns");
        assert!(validate(&d, true).is_ok());
        d.insert("a/b".to_owned(), LinuxNetDevice::default());
        assert!(
            validate(&d, true)
                .unwrap_err()
                .to_string()
                .contains("linux.netDevices.a/b")
        );
    }
}
