//! Property tests of the shared logic (host only).

use proptest::prelude::*;
use ssi_shared::ioctl::{fill_str, name_str, SSI_NAME_LEN, SSI_STATE_LEN};
use ssi_shared::transport::{validate_name, TransportTable, SSI_TRANSPORT_OPS_VERSION};

#[derive(Clone, Debug)]
enum Op {
    Register { version: u32, kind: u32, name: [u8; SSI_NAME_LEN] },
    Unregister(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let name = prop_oneof![
        // Mostly short valid-looking names from a tiny alphabet, so duplicates happen.
        "[ab-]{0,3}".prop_map(|s| ssi_shared::transport::make_name(&s)),
        any::<[u8; SSI_NAME_LEN]>(),
    ];
    prop_oneof![
        (prop_oneof![Just(SSI_TRANSPORT_OPS_VERSION), any::<u32>()], 0u32..4, name)
            .prop_map(|(version, kind, name)| Op::Register { version, kind, name }),
        (0u32..12).prop_map(Op::Unregister),
    ]
}

proptest! {
    /// Whatever the sequence of calls: at most N entries, unique names, unique ids that
    /// are never handed out twice, and only valid registrations succeed.
    #[test]
    fn transport_table_invariants(ops in prop::collection::vec(op(), 0..64)) {
        let mut t: TransportTable<(), 4> = TransportTable::new();
        let mut issued = std::collections::HashSet::new();
        for op in ops {
            match op {
                Op::Register { version, kind, name } => {
                    let before = t.len();
                    match t.register(version, kind, &name, ()) {
                        Ok(id) => {
                            prop_assert!(issued.insert(id), "id {} reused", id);
                            prop_assert_eq!(version, SSI_TRANSPORT_OPS_VERSION);
                            prop_assert!(validate_name(&name).is_ok());
                            prop_assert_eq!(t.len(), before + 1);
                        }
                        Err(_) => prop_assert_eq!(t.len(), before),
                    }
                }
                Op::Unregister(id) => {
                    let present = t.iter().any(|e| e.id == id);
                    prop_assert_eq!(t.unregister(id).is_some(), present);
                }
            }
            prop_assert!(t.len() <= 4);
            let names: std::collections::HashSet<_> = t.iter().map(|e| e.name).collect();
            prop_assert_eq!(names.len(), t.len());
        }
    }

    /// fill_str then name_str gives back the longest prefix that fits.
    #[test]
    fn fill_then_read_round_trips(s in "\\PC{0,120}") {
        let mut field = [0xaau8; SSI_STATE_LEN];
        fill_str(&mut field, &s);
        let back = name_str(&field).expect("always terminated and UTF-8");
        prop_assert!(s.starts_with(back));
        prop_assert!(back.len() < SSI_STATE_LEN);
        if s.len() < SSI_STATE_LEN && !s.contains('\0') {
            prop_assert_eq!(back, s.as_str());
        }
    }
}
