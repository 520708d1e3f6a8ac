//! The virtio-gpio wire format (`include/uapi/linux/virtio_gpio.h`) and the mapping
//! of requestq requests onto the cable. Pure: no guest memory here.

use crate::cable::{Cable, Completion, Direction, IrqType, Side};

/// Virtio device id of a GPIO controller.
pub const VIRTIO_ID_GPIO: u32 = 41;
/// Feature bit: the device supports interrupts (the eventq).
pub const VIRTIO_GPIO_F_IRQ: u32 = 0;

pub const MSG_GET_NAMES: u16 = 0x0001;
pub const MSG_GET_DIRECTION: u16 = 0x0002;
pub const MSG_SET_DIRECTION: u16 = 0x0003;
pub const MSG_GET_VALUE: u16 = 0x0004;
pub const MSG_SET_VALUE: u16 = 0x0005;
pub const MSG_IRQ_TYPE: u16 = 0x0006;

pub const STATUS_OK: u8 = 0;
pub const STATUS_ERR: u8 = 1;

pub const DIRECTION_NONE: u8 = 0;
pub const DIRECTION_OUT: u8 = 1;
pub const DIRECTION_IN: u8 = 2;

pub const IRQ_STATUS_INVALID: u8 = 0;
pub const IRQ_STATUS_VALID: u8 = 1;

/// `struct virtio_gpio_request` is 8 bytes: le16 type, le16 gpio, le32 value.
pub const REQUEST_LEN: usize = 8;
/// `struct virtio_gpio_response` is 2 bytes: status, value.
pub const RESPONSE_LEN: usize = 2;
/// `struct virtio_gpio_irq_request` is 2 bytes: le16 gpio.
pub const IRQ_REQUEST_LEN: usize = 2;

/// The most lines we serve: the guest queues one eventq buffer per line with its
/// interrupt enabled, so this must not exceed the VMM's eventq size.
pub const MAX_LINES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub kind: u16,
    pub gpio: u16,
    pub value: u32,
}

impl Request {
    pub fn decode(b: [u8; REQUEST_LEN]) -> Self {
        Request {
            kind: u16::from_le_bytes([b[0], b[1]]),
            gpio: u16::from_le_bytes([b[2], b[3]]),
            value: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// The `gpio_names` block: every name NUL-terminated, back to back.
pub fn names_block(names: &[String]) -> Vec<u8> {
    let mut v = Vec::new();
    for n in names {
        v.extend_from_slice(n.as_bytes());
        v.push(0);
    }
    v
}

/// `struct virtio_gpio_config`: le16 ngpio, 2 bytes padding, le32 gpio_names_size.
pub fn config_space(ngpio: u16, names_size: u32) -> [u8; 8] {
    let mut c = [0u8; 8];
    c[0..2].copy_from_slice(&ngpio.to_le_bytes());
    c[4..8].copy_from_slice(&names_size.to_le_bytes());
    c
}

/// The bytes `[offset, offset + size)` of `config`, or nothing if out of range.
pub fn config_read(config: &[u8], offset: u32, size: u32) -> Vec<u8> {
    let (Ok(start), Ok(size)) = (usize::try_from(offset), usize::try_from(size)) else {
        return Vec::new();
    };
    match start.checked_add(size) {
        Some(end) if end <= config.len() => config[start..end].to_vec(),
        _ => Vec::new(),
    }
}

pub fn direction_from_wire(v: u32) -> Option<Direction> {
    match v {
        0 => Some(Direction::None),
        1 => Some(Direction::Output),
        2 => Some(Direction::Input),
        _ => None,
    }
}

pub fn direction_to_wire(d: Direction) -> u8 {
    match d {
        Direction::None => DIRECTION_NONE,
        Direction::Output => DIRECTION_OUT,
        Direction::Input => DIRECTION_IN,
    }
}

pub fn irq_type_from_wire(v: u32) -> Option<IrqType> {
    match v {
        0x00 => Some(IrqType::None),
        0x01 => Some(IrqType::EdgeRising),
        0x02 => Some(IrqType::EdgeFalling),
        0x03 => Some(IrqType::EdgeBoth),
        0x04 => Some(IrqType::LevelHigh),
        0x08 => Some(IrqType::LevelLow),
        _ => None,
    }
}

/// The outcome of one requestq request.
#[derive(Debug)]
pub struct Served<T> {
    /// What to write into the request's device-writable buffer.
    pub response: Vec<u8>,
    /// Event buffers (of either side) completed as a side effect.
    pub completions: Vec<Completion<T>>,
    /// The request was GET_NAMES, which the Linux driver sends once, at probe: the
    /// side was reset (lines released, interrupts off) and its driver is ready.
    pub probed: bool,
}

fn err<T>() -> Served<T> {
    Served {
        response: vec![STATUS_ERR, 0],
        completions: Vec::new(),
        probed: false,
    }
}

fn ok<T>(value: u8, completions: Vec<Completion<T>>) -> Served<T> {
    Served {
        response: vec![STATUS_OK, value],
        completions,
        probed: false,
    }
}

/// Serves a requestq request from `side`. `req` is None when the driver-readable
/// part was shorter than a request; `writable` is the device-writable space. A
/// malformed request gets status ERR and changes nothing.
pub fn serve_request<T>(
    cable: &mut Cable<T>,
    side: Side,
    req: Option<Request>,
    writable: usize,
    names: &[u8],
) -> Served<T> {
    cable.count_request(side);
    let Some(req) = req else { return err() };
    if req.kind == MSG_GET_NAMES {
        // The driver sizes the buffer as 1 + gpio_names_size and checks the length.
        if writable < 1 + names.len() {
            return err();
        }
        let (_dropped, completions) = cable.reset_side(side);
        let mut response = Vec::with_capacity(1 + names.len());
        response.push(STATUS_OK);
        response.extend_from_slice(names);
        return Served {
            response,
            completions,
            probed: true,
        };
    }
    let line = usize::from(req.gpio);
    if writable < RESPONSE_LEN || line >= cable.lines() {
        return err();
    }
    let result = match req.kind {
        MSG_GET_DIRECTION => cable
            .direction(side, line)
            .map(|d| ok(direction_to_wire(d), Vec::new())),
        MSG_SET_DIRECTION => match direction_from_wire(req.value) {
            Some(d) => cable.set_direction(side, line, d).map(|c| ok(0, c)),
            None => return err(),
        },
        MSG_GET_VALUE => cable
            .get_value(side, line)
            .map(|v| ok(u8::from(v), Vec::new())),
        MSG_SET_VALUE => match req.value {
            0 | 1 => cable
                .set_value(side, line, req.value == 1)
                .map(|c| ok(0, c)),
            _ => return err(),
        },
        MSG_IRQ_TYPE => match irq_type_from_wire(req.value) {
            Some(t) => cable.set_irq_type(side, line, t).map(|c| ok(0, c)),
            None => return err(),
        },
        _ => return err(),
    };
    result.unwrap_or_else(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cable::IrqStatus;

    fn req(kind: u16, gpio: u16, value: u32) -> Option<Request> {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&kind.to_le_bytes());
        b[2..4].copy_from_slice(&gpio.to_le_bytes());
        b[4..8].copy_from_slice(&value.to_le_bytes());
        Some(Request::decode(b))
    }

    #[test]
    fn config_and_names() {
        let names = names_block(&["data0".into(), "".into(), "ready".into()]);
        assert_eq!(names, b"data0\0\0ready\0");
        let c = config_space(3, names.len() as u32);
        assert_eq!(c, [3, 0, 0, 0, 13, 0, 0, 0]);
        assert_eq!(config_read(&c, 4, 4), vec![13, 0, 0, 0]);
        assert_eq!(config_read(&c, 0, 8), c.to_vec());
        assert!(config_read(&c, 6, 4).is_empty());
        assert!(config_read(&c, u32::MAX, 2).is_empty());
    }

    #[test]
    fn requests_map_onto_the_cable() {
        let names = names_block(&["x".into(), "y".into()]);
        let mut c: Cable<u32> = Cable::new(2);
        let s = serve_request(&mut c, Side::A, req(MSG_GET_NAMES, 0, 0), 5, &names);
        assert_eq!(s.response, b"\0x\0y\0");
        assert!(s.probed);
        let s = serve_request(&mut c, Side::A, req(MSG_GET_DIRECTION, 1, 0), 2, &names);
        assert_eq!(s.response, vec![STATUS_OK, DIRECTION_NONE]);
        // direction_output: SET_VALUE then SET_DIRECTION out.
        let s = serve_request(&mut c, Side::A, req(MSG_SET_VALUE, 1, 0), 2, &names);
        assert_eq!(s.response, vec![STATUS_OK, 0]);
        assert!(c.level(1).unwrap());
        serve_request(&mut c, Side::A, req(MSG_SET_DIRECTION, 1, 1), 2, &names);
        assert!(!c.level(1).unwrap());
        let s = serve_request(&mut c, Side::A, req(MSG_GET_DIRECTION, 1, 0), 2, &names);
        assert_eq!(s.response, vec![STATUS_OK, DIRECTION_OUT]);
        let s = serve_request(&mut c, Side::B, req(MSG_GET_VALUE, 1, 0), 2, &names);
        assert_eq!(s.response, vec![STATUS_OK, 0]);
        let s = serve_request(&mut c, Side::B, req(MSG_GET_VALUE, 0, 0), 2, &names);
        assert_eq!(s.response, vec![STATUS_OK, 1]);
        // IRQ_TYPE level low on B fires on B's queued buffer.
        let s = serve_request(&mut c, Side::B, req(MSG_IRQ_TYPE, 1, 0x08), 2, &names);
        assert_eq!(s.response, vec![STATUS_OK, 0]);
        let out = c.queue_irq_buffer(Side::B, 1, 77).unwrap();
        assert_eq!(out[0].status, IrqStatus::Valid);
        assert!(c.stats_line().contains("requests_a=5 requests_b=3"));
    }

    #[test]
    fn malformed_requests_get_err_and_change_nothing() {
        let names = names_block(&["x".into()]);
        let mut c: Cable<u32> = Cable::new(1);
        let e = vec![STATUS_ERR, 0];
        let cases = [
            (None, 2),
            (req(MSG_SET_DIRECTION, 1, 1), 2), // no such line
            (req(MSG_SET_DIRECTION, 0, 3), 2), // bad direction
            (req(MSG_SET_VALUE, 0, 2), 2),     // bad value
            (req(MSG_IRQ_TYPE, 0, 5), 2),      // bad irq type
            (req(0x99, 0, 0), 2),              // bad type
            (req(MSG_SET_DIRECTION, 0, 1), 1), // response buffer too short
            (req(MSG_GET_NAMES, 0, 0), 2),     // names buffer too short
        ];
        for (r, w) in cases {
            let s = serve_request(&mut c, Side::A, r, w, &names);
            assert_eq!(s.response, e, "{r:?}");
            assert!(!s.probed);
        }
        assert!(c.level(0).unwrap());
        assert_eq!(c.direction(Side::A, 0).unwrap(), Direction::None);
        assert!(c.stats_line().contains("requests_a=8 "));
    }

    #[test]
    fn get_names_resets_the_side() {
        let names = names_block(&["x".into()]);
        let mut c: Cable<u32> = Cable::new(1);
        c.set_direction(Side::A, 0, Direction::Output).unwrap();
        c.set_irq_type(Side::B, 0, IrqType::EdgeRising).unwrap();
        c.queue_irq_buffer(Side::B, 0, 1).unwrap();
        let s = serve_request(&mut c, Side::A, req(MSG_GET_NAMES, 0, 0), 3, &names);
        assert!(s.probed);
        assert!(c.level(0).unwrap());
        assert_eq!(s.completions.len(), 1);
        assert_eq!(s.completions[0].side, Side::B);
    }
}
