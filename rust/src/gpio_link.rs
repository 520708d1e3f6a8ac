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

use super::wire::{self, Reader, WireError, Writer};

const KIND_HELLO: u8 = 1;
const KIND_MESSAGE: u8 = 2;
const KIND_READ: u8 = 3;
const KIND_READ_DATA: u8 = 4;

/// Largest page read, and largest data of all READ_DATA chunks of one read.
pub const MAX_READ: u32 = 4096;
/// Data bytes per READ_DATA chunk.
pub const READ_CHUNK: usize = 512;
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

impl<'a> LinkMessage<'a> {
    /// Encodes into `out`; returns the length, or `None` if it does not fit (or a
    /// chunk or message is larger than allowed).
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let mut w = Writer::new(out);
        self.write(&mut w).ok()?;
        Some(w.len())
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        match *self {
            Self::Hello {
                node,
                to,
                session,
                reply,
            } => {
                w.u8(KIND_HELLO)?;
                w.u32(node)?;
                w.u32(to)?;
                w.u32(session)?;
                w.u8(u8::from(reply))
            }
            Self::Message(frame) => {
                if frame.len() > wire::MAX_FRAME {
                    return Err(WireError::TooLong);
                }
                w.u8(KIND_MESSAGE)?;
                w.bytes(frame)
            }
            Self::Read {
                id,
                addr,
                rkey,
                len,
            } => {
                w.u8(KIND_READ)?;
                w.u32(id)?;
                w.u64(addr)?;
                w.u32(rkey)?;
                w.u32(len)
            }
            Self::ReadData {
                id,
                status,
                offset,
                data,
            } => {
                if data.len() > READ_CHUNK || (status != 0 && !data.is_empty()) {
                    return Err(WireError::BadField);
                }
                w.u8(KIND_READ_DATA)?;
                w.u32(id)?;
                w.u32(status as u32)?;
                w.u32(offset)?;
                w.bytes(data)
            }
        }
    }

    /// Decodes one message; `None` for anything malformed (unknown kind, wrong
    /// length, a chunk past a page, data with an error status).
    pub fn decode(b: &'a [u8]) -> Option<Self> {
        Self::read(&mut Reader::new(b)).ok()
    }

    fn read(r: &mut Reader<'a>) -> Result<Self, WireError> {
        let [kind] = r.array::<1>()?;
        let m = match kind {
            KIND_HELLO => Self::Hello {
                node: r.u32()?,
                to: r.u32()?,
                session: r.u32()?,
                reply: match r.array::<1>()? {
                    [0] => false,
                    [1] => true,
                    _ => return Err(WireError::BadField),
                },
            },
            KIND_MESSAGE => {
                let frame = r.rest();
                if frame.is_empty() || frame.len() > wire::MAX_FRAME {
                    return Err(WireError::BadLength);
                }
                Self::Message(frame)
            }
            KIND_READ => Self::Read {
                id: r.u32()?,
                addr: r.u64()?,
                rkey: r.u32()?,
                len: r.u32()?,
            },
            KIND_READ_DATA => {
                let id = r.u32()?;
                let status = r.u32()? as i32;
                let offset = r.u32()?;
                let data = r.rest();
                let end = u64::from(offset) + data.len() as u64;
                if data.len() > READ_CHUNK
                    || end > u64::from(MAX_READ)
                    || status > 0
                    || (status != 0 && !data.is_empty())
                {
                    return Err(WireError::BadField);
                }
                Self::ReadData {
                    id,
                    status,
                    offset,
                    data,
                }
            }
            _ => return Err(WireError::UnknownType),
        };
        r.finish()?;
        Ok(m)
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
