// SPDX-License-Identifier: GPL-2.0

//! What the GPIO transport carries in the payload of the bus's DATA frames
//! ([`super::gpio_bus`]): the link's hello, the core's messages and the emulated
//! one-sided page reads.
//!
//! ```text
//! kind 1 HELLO       node u32, to u32, session u32, reply u8
//! kind 2 MESSAGE     one ssi wire frame (super::wire), as core sent it
//! kind 3 READ        id u32, addr u64, rkey u32, len u32
//! kind 4 READ_DATA   id u32, status i32 (0 or -errno), offset u32, data...
//! ```
//! All integers little endian. A READ is answered by READ_DATA chunks of at most
//! [`READ_CHUNK`] bytes in order (so the peer's own frames can go between them), or by
//! one READ_DATA with a negative status and no data.

use super::wire;

const KIND_HELLO: u8 = 1;
const KIND_MESSAGE: u8 = 2;
const KIND_READ: u8 = 3;
const KIND_READ_DATA: u8 = 4;

/// Largest page read, and largest data of all READ_DATA chunks of one read.
pub const MAX_READ: u32 = 4096;
/// Data bytes per READ_DATA chunk.
pub const READ_CHUNK: usize = 512;
/// Bytes before the data of a READ_DATA.
const READ_DATA_HEADER: usize = 13;
/// Largest encoded message.
pub const MAX_LEN: usize = 1 + wire::MAX_FRAME;

/// One message on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkMessage<'a> {
    /// "I am `node`, linking to `to`, link session `session`." A side answers a hello
    /// of a new session with its own (`reply` set, which is not answered).
    Hello {
        /// The sender's node id.
        node: u32,
        /// The node it expects at the other end.
        to: u32,
        /// Random per link attempt of the sender: a new one means the peer restarted
        /// its side of the link.
        session: u32,
        /// An answer to the other side's hello.
        reply: bool,
    },
    /// A frame of the ssi wire protocol.
    Message(&'a [u8]),
    /// Read `len` bytes of the page exposed as `addr`/`rkey`.
    Read {
        /// Chosen by the reader; echoed in the data.
        id: u32,
        /// The exposure's address (the transport's cookie).
        addr: u64,
        /// The exposure's key.
        rkey: u32,
        /// Bytes to read from the start of the page.
        len: u32,
    },
    /// Part of the answer to read `id`: `data` at `offset`, or an error.
    ReadData {
        /// The read.
        id: u32,
        /// 0, or a negative errno (then `data` is empty).
        status: i32,
        /// Where `data` goes in the page.
        offset: u32,
        /// The bytes.
        data: &'a [u8],
    },
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> LinkMessage<'a> {
    /// Encodes into `out`; returns the length, or `None` if it does not fit (or a
    /// chunk or message is larger than allowed).
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let mut put = |at: usize, bytes: &[u8]| -> Option<()> {
            out.get_mut(at..at + bytes.len())?.copy_from_slice(bytes);
            Some(())
        };
        match *self {
            Self::Hello {
                node,
                to,
                session,
                reply,
            } => {
                put(0, &[KIND_HELLO])?;
                put(1, &node.to_le_bytes())?;
                put(5, &to.to_le_bytes())?;
                put(9, &session.to_le_bytes())?;
                put(13, &[u8::from(reply)])?;
                Some(14)
            }
            Self::Message(frame) => {
                if frame.len() > wire::MAX_FRAME {
                    return None;
                }
                put(0, &[KIND_MESSAGE])?;
                put(1, frame)?;
                Some(1 + frame.len())
            }
            Self::Read {
                id,
                addr,
                rkey,
                len,
            } => {
                put(0, &[KIND_READ])?;
                put(1, &id.to_le_bytes())?;
                put(5, &addr.to_le_bytes())?;
                put(13, &rkey.to_le_bytes())?;
                put(17, &len.to_le_bytes())?;
                Some(21)
            }
            Self::ReadData {
                id,
                status,
                offset,
                data,
            } => {
                if data.len() > READ_CHUNK || (status != 0 && !data.is_empty()) {
                    return None;
                }
                put(0, &[KIND_READ_DATA])?;
                put(1, &id.to_le_bytes())?;
                put(5, &status.to_le_bytes())?;
                put(9, &offset.to_le_bytes())?;
                put(READ_DATA_HEADER, data)?;
                Some(READ_DATA_HEADER + data.len())
            }
        }
    }

    /// Decodes one message; `None` for anything malformed (unknown kind, wrong
    /// length, a chunk past a page, data with an error status).
    pub fn decode(b: &'a [u8]) -> Option<Self> {
        match *b.first()? {
            KIND_HELLO if b.len() == 14 && b[13] <= 1 => Some(Self::Hello {
                node: u32_at(b, 1)?,
                to: u32_at(b, 5)?,
                session: u32_at(b, 9)?,
                reply: b[13] == 1,
            }),
            KIND_MESSAGE if b.len() > 1 && b.len() - 1 <= wire::MAX_FRAME => {
                Some(Self::Message(&b[1..]))
            }
            KIND_READ if b.len() == 21 => Some(Self::Read {
                id: u32_at(b, 1)?,
                addr: u64::from_le_bytes(b.get(5..13)?.try_into().ok()?),
                rkey: u32_at(b, 13)?,
                len: u32_at(b, 17)?,
            }),
            KIND_READ_DATA if b.len() >= READ_DATA_HEADER => {
                let status = u32_at(b, 5)? as i32;
                let offset = u32_at(b, 9)?;
                let data = &b[READ_DATA_HEADER..];
                let end = u64::from(offset) + data.len() as u64;
                if data.len() > READ_CHUNK
                    || end > u64::from(MAX_READ)
                    || status > 0
                    || (status != 0 && !data.is_empty())
                {
                    return None;
                }
                Some(Self::ReadData {
                    id: u32_at(b, 1)?,
                    status,
                    offset,
                    data,
                })
            }
            _ => None,
        }
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_gpio_link_wire))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    fn round_trip(m: LinkMessage<'_>) {
        let mut buf = [0u8; 1100];
        let n = m.encode(&mut buf).expect("fits");
        assert_eq!(LinkMessage::decode(&buf[..n]), Some(m));
        // No truncation reads as the message itself.
        for cut in 0..n {
            assert_ne!(LinkMessage::decode(&buf[..cut]), Some(m));
        }
    }

    #[test]
    fn every_kind_round_trips() {
        round_trip(LinkMessage::Hello {
            node: 3,
            to: 1,
            session: 0xdead_beef,
            reply: true,
        });
        round_trip(LinkMessage::Message(b"SSI1 frame bytes"));
        round_trip(LinkMessage::Read {
            id: 7,
            addr: 0x1234_5678_9abc,
            rkey: 99,
            len: 4096,
        });
        round_trip(LinkMessage::ReadData {
            id: 7,
            status: 0,
            offset: 3584,
            data: &[0x5a; 512],
        });
        round_trip(LinkMessage::ReadData {
            id: 8,
            status: -2,
            offset: 0,
            data: &[],
        });
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert_eq!(LinkMessage::decode(&[]), None);
        assert_eq!(LinkMessage::decode(&[9, 1, 2]), None);
        assert_eq!(LinkMessage::decode(&[KIND_MESSAGE]), None);
        // A hello with a reply flag other than 0/1, or a byte too many.
        let mut h = [0u8; 15];
        h[0] = KIND_HELLO;
        h[13] = 2;
        assert_eq!(LinkMessage::decode(&h[..14]), None);
        assert_eq!(LinkMessage::decode(&h), None);
        // A chunk that would end past the page, a positive status, data with an error.
        let mut d = [0u8; 13 + 8];
        d[0] = KIND_READ_DATA;
        d[9..13].copy_from_slice(&4092u32.to_le_bytes());
        assert_eq!(LinkMessage::decode(&d), None);
        d[9..13].copy_from_slice(&0u32.to_le_bytes());
        d[5..9].copy_from_slice(&5i32.to_le_bytes());
        assert_eq!(LinkMessage::decode(&d), None);
        d[5..9].copy_from_slice(&(-5i32).to_le_bytes());
        assert_eq!(LinkMessage::decode(&d), None);
        assert!(LinkMessage::decode(&d[..13]).is_some());
    }

    #[test]
    fn oversized_messages_are_not_encoded() {
        let mut buf = [0u8; 64];
        assert_eq!(LinkMessage::Message(&[0; 100]).encode(&mut buf), None);
        let big = [0u8; READ_CHUNK + 1];
        let mut out = [0u8; 1200];
        let m = LinkMessage::ReadData {
            id: 1,
            status: 0,
            offset: 0,
            data: &big,
        };
        assert_eq!(m.encode(&mut out), None);
    }
}
