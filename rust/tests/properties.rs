//! Property tests of the shared logic (host only).

use proptest::prelude::*;
use ssi_shared::ioctl::{fill_str, name_str, SSI_NAME_LEN, SSI_STATE_LEN};
use ssi_shared::transport::{validate_name, TransportTable, SSI_TRANSPORT_OPS_VERSION};

#[derive(Clone, Debug)]
enum Op {
    Register {
        version: u32,
        kind: u32,
        name: [u8; SSI_NAME_LEN],
    },
    Unregister(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let name = prop_oneof![
        // Mostly short valid-looking names from a tiny alphabet, so duplicates happen.
        "[ab-]{0,3}".prop_map(|s| ssi_shared::transport::make_name(&s)),
        any::<[u8; SSI_NAME_LEN]>(),
    ];
    prop_oneof![
        (
            prop_oneof![Just(SSI_TRANSPORT_OPS_VERSION), any::<u32>()],
            0u32..4,
            name
        )
            .prop_map(|(version, kind, name)| Op::Register {
                version,
                kind,
                name
            }),
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

mod wire_props {
    use proptest::prelude::*;
    use ssi_shared::wire::*;

    fn message() -> impl Strategy<Value = (u8, Vec<u8>, Vec<u8>, u64, u64, u32, u32)> {
        (
            1u8..=20,
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..MAX_PING + 8),
                prop::collection::vec(any::<u8>(), PAGE_DATA_LEN..=PAGE_DATA_LEN),
            ],
            prop::collection::vec(any::<u8>(), 0..MAX_VALUE + 8),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
        )
    }

    fn build<'a>(t: u8, a: &'a [u8], b: &'a [u8], x: u64, y: u64, p: u32, q: u32) -> Message<'a> {
        match t {
            1 => Message::Hello {
                abi_version: p,
                incarnation: q,
            },
            2 => Message::Heartbeat {
                incarnation: p,
                leader: q as u16,
                kv_version: x,
            },
            3 => Message::Ping { data: a },
            4 => Message::PageQuery { handle: x },
            5 => Message::PageInfo {
                handle: x,
                addr: y,
                rkey: p,
                len: q,
            },
            6 => Message::KvPut {
                key: &a[..a.len().min(MAX_KEY + 2)],
                value: b,
            },
            7 => Message::KvUpdate {
                prev_version: y,
                version: x,
                key: &a[..a.len().min(MAX_KEY + 2)],
                value: b,
            },
            8 => Message::KvSync { from_version: y },
            9 => Message::Error { errno: p % 5000 },
            10 => Message::Service {
                service: q as u16,
                data: a,
            },
            11 => Message::KvCreate {
                key: &a[..a.len().min(MAX_KEY + 2)],
                value: b,
            },
            12 => Message::PageFault {
                region: x,
                page: p,
                write: q & 1 == 1,
            },
            13 => Message::PagePlan {
                downgrade: p as u16,
                source: match q % 4 {
                    0 => PlanSource::Zero,
                    1 => PlanSource::Local,
                    2 => PlanSource::Node((q >> 8) as u16),
                    _ => PlanSource::Inline,
                },
                owner: (p >> 16) as u16,
                invalidate: y,
                writable: x & 1 == 1,
                alone: x & 2 == 2,
                data: a,
            },
            14 => Message::PageDone {
                region: x,
                page: p,
                ok: q & 1 == 1,
                dropped: y,
            },
            15 => Message::PageFetch {
                region: x,
                page: p,
                downgrade: q & 1 == 1,
                revoke: (y >> 32) as u32,
            },
            16 => Message::PageData { data: a },
            17 => Message::PageInvalidate { region: x, page: p },
            18 => Message::RegionGone { region: x },
            19 => Message::PageRelease {
                region: x,
                page: p,
                tag: q,
            },
            _ => Message::PageWritten { region: x, page: p },
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random bytes never panic the decoder.
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..MAX_FRAME + 64)) {
            let _ = decode(&bytes);
        }

        /// Random bytes behind a valid header prefix (so decoding gets past the magic)
        /// never panic, and whatever decodes re-encodes to the same bytes.
        #[test]
        fn mutated_frames_are_canonical(
            t in 1u8..=9, flags in 0u16..2, len in 0u32..300,
            body in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut frame = Vec::new();
            frame.extend_from_slice(b"SSI1");
            frame.extend_from_slice(&[WIRE_VERSION, t]);
            frame.extend_from_slice(&flags.to_le_bytes());
            frame.extend_from_slice(&[1, 0, 2, 0, 9, 0, 0, 0]);
            frame.extend_from_slice(&len.to_le_bytes());
            frame.extend_from_slice(&[0; 4]);
            frame.extend_from_slice(&body);
            if let Ok((h, m)) = decode(&frame) {
                let mut out = vec![0u8; MAX_FRAME];
                let n = encode(&m, h.flags, h.src, h.dst, h.seq, &mut out).expect("decoded => encodable");
                prop_assert_eq!(&out[..n], &frame[..]);
            }
        }

        /// encode -> decode gives the message back, or encode refuses it cleanly.
        #[test]
        fn encode_decode_round_trips((t, a, b, x, y, p, q) in message(), seq in any::<u32>()) {
            let msg = build(t, &a, &b, x, y, p, q);
            let mut buf = vec![0u8; MAX_FRAME];
            match encode(&msg, 0, 4, 5, seq, &mut buf) {
                Ok(n) => {
                    let (h, m) = decode(&buf[..n]).expect("what we encode decodes");
                    prop_assert_eq!(m, msg);
                    prop_assert_eq!((h.src, h.dst, h.seq, h.flags), (4, 5, seq, 0));
                }
                Err(e) => prop_assert!(matches!(e, WireError::TooLong | WireError::BadField), "{:?}", e),
            }
        }
    }
}

mod kv_props {
    use proptest::prelude::*;
    use ssi_shared::kv::{Applied, KvError, KvStore};
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    enum Op {
        /// Leader write of key index to value (empty = delete); delivered to follower i
        /// unless bit i of `lost` is set.
        Put { key: u8, value: Vec<u8>, lost: u8 },
        /// Follower i resyncs.
        Sync(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..6, prop::collection::vec(any::<u8>(), 0..4), any::<u8>())
                .prop_map(|(key, value, lost)| Op::Put { key, value, lost }),
            1 => (0u8..3).prop_map(Op::Sync),
        ]
    }

    fn resync(
        leader: &KvStore<Vec<Option<ssi_shared::kv::KvEntry>>>,
        f: &mut KvStore<Vec<Option<ssi_shared::kv::KvEntry>>>,
    ) {
        let mut prev = f.version();
        while let Some(e) = leader.next_after(prev) {
            assert_eq!(
                f.apply(prev, e.version(), e.key(), e.value()),
                Ok(Applied::Applied)
            );
            prev = e.version();
        }
    }

    proptest! {
        /// With lost updates, gaps are always detected, and after a resync every
        /// follower holds exactly the leader's map (checked against a BTreeMap model).
        #[test]
        fn followers_converge_to_the_leader(ops in prop::collection::vec(op(), 0..80)) {
            let mut leader = KvStore::new(vec![None; 8]);
            let mut followers: Vec<_> = (0..3).map(|_| KvStore::new(vec![None; 8])).collect();
            let mut model = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Put { key, value, lost } => {
                        let k = [b'k', key];
                        let w = leader.put_as_leader(&k, &value).expect("6 keys fit in 8 slots");
                        if value.is_empty() { model.remove(k.as_slice()); } else { model.insert(k.to_vec(), value.clone()); }
                        for (i, f) in followers.iter_mut().enumerate() {
                            if lost & (1 << i) != 0 { continue; }
                            match f.apply(w.prev_version, w.version, &k, &value) {
                                Ok(Applied::Applied) => prop_assert_eq!(f.version(), w.version),
                                Ok(Applied::Duplicate) => prop_assert!(false, "fresh update seen as duplicate"),
                                Err(KvError::Gap { have }) => prop_assert!(have < w.prev_version),
                                Err(e) => prop_assert!(false, "{:?}", e),
                            }
                        }
                    }
                    Op::Sync(i) => resync(&leader, &mut followers[usize::from(i)]),
                }
                for (k, v) in &model {
                    prop_assert_eq!(leader.get(k), Some(&v[..]));
                }
                prop_assert_eq!(leader.iter().count(), model.len());
            }
            for f in followers.iter_mut() {
                resync(&leader, f);
                prop_assert_eq!(f.version(), leader.version());
                for (k, v) in &model {
                    prop_assert_eq!(f.get(k), Some(&v[..]));
                }
                prop_assert_eq!(f.iter().count(), model.len());
            }
        }
    }
}

mod migrate_wire {
    use proptest::prelude::*;
    use ssi_shared::migrate_wire::{
        page_from_source, vma_of, vmas_valid, MigMsg, Redirect, SnapshotLayout, VmaInfo, VERSION,
    };

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Hostile bytes from another node never panic the decoder.
        #[test]
        fn random_messages_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = MigMsg::decode(&bytes);
            let _ = Redirect::decode(&bytes);
            let _ = SnapshotLayout::parse(&bytes);
        }

        /// A decoded message encodes back to the same bytes (one encoding per message).
        #[test]
        fn decoded_messages_are_canonical(kind in 1u8..19, body in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = vec![0xA5, VERSION, kind, 0];
            bytes.extend_from_slice(&body);
            if let Ok(m) = MigMsg::decode(&bytes) {
                let mut out = [0u8; 256];
                let n = m.encode(&mut out).unwrap();
                prop_assert_eq!(&out[..n], &bytes[..]);
            }
        }

        /// VMA lookup agrees with a linear scan, and pages only come from the source VMA
        /// their mapping came from.
        #[test]
        fn vma_lookup_matches_a_scan(
            gaps in prop::collection::vec((0u64..4, 1u64..6), 1..12),
            probes in prop::collection::vec((0u64..100, 0u64..100), 1..40),
        ) {
            let mut at = 0x10u64;
            let mut vmas = Vec::new();
            for (gap, len) in gaps {
                at += gap;
                vmas.push(VmaInfo { start: at << 12, end: (at + len) << 12, pgoff: 0, flags: 1, name: [0; 32], region: 0, region_pages: 0, reserved: 0 });
                at += len;
            }
            prop_assert!(vmas_valid(&vmas, 1 << 47));
            for (a, b) in probes {
                let (a, b) = ((0x10 + a) << 12, (0x10 + b) << 12);
                let scan = vmas.iter().find(|v| v.start <= a && a < v.end);
                prop_assert_eq!(vma_of(&vmas, a).map(|v| v.start), scan.map(|v| v.start));
                let same = scan.is_some() && scan == vmas.iter().find(|v| v.start <= b && b < v.end);
                prop_assert_eq!(page_from_source(&vmas, a, b), same);
            }
        }
    }
}

mod address_space_props {
    use proptest::prelude::*;
    use ssi_shared::address_space::{
        shared_mapping, unmap_range, Placement, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE,
        MAP_PRIVATE, MAX_PAGES,
    };

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Whatever a program passes to mmap: no panic; a shared mapping covers the
        /// length asked for in whole pages within a region's size, is placed as the flags
        /// say, and at exactly the address asked for when fixed.
        #[test]
        fn mmap_arguments_are_decided_soundly(
            addr in prop_oneof![any::<u64>(), (0u64..1 << 35).prop_map(|p| p << 12)],
            len in prop_oneof![any::<u64>(), 0u64..1 << 33],
            prot in prop_oneof![0u32..8, any::<u32>()],
            flags in prop_oneof![
                Just(MAP_PRIVATE | MAP_ANONYMOUS),
                Just(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED),
                Just(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE),
                any::<u32>(),
            ],
        ) {
            match shared_mapping(addr, len, prot, flags) {
                None => prop_assert!(
                    flags & MAP_ANONYMOUS == 0 || flags & 0xf != MAP_PRIVATE || prot & !3 != 0
                        || flags & 0x4_0100 != 0
                ),
                Some(Err(_)) => {}
                Some(Ok(m)) => {
                    prop_assert!(m.bytes() >= len && m.bytes() - len < 4096);
                    prop_assert!(m.pages >= 1 && m.pages <= MAX_PAGES);
                    prop_assert_eq!(m.prot, prot);
                    let want = if flags & MAP_FIXED_NOREPLACE != 0 {
                        Placement::FixedNoReplace
                    } else if flags & MAP_FIXED != 0 {
                        Placement::Fixed
                    } else {
                        Placement::Anywhere
                    };
                    prop_assert_eq!(m.placement, want);
                    prop_assert_eq!(m.addr & 4095, 0);
                    if want != Placement::Anywhere {
                        prop_assert_eq!(m.addr, addr);
                    }
                }
            }
        }

        /// munmap's range is whole pages, covers what was asked and stays in bounds.
        #[test]
        fn unmap_ranges_stay_in_bounds(addr in any::<u64>(), len in any::<u64>()) {
            if let Ok((a, l)) = unmap_range(addr, len, 1 << 47) {
                prop_assert_eq!(a, addr);
                prop_assert!(l >= len && l - len < 4096 && l & 4095 == 0);
                prop_assert!(a + l <= 1 << 47);
            }
        }
    }
}

mod membership_props {
    use proptest::prelude::*;
    use ssi_shared::membership::{Event, Events, Membership, PeerState, DOWN_AFTER_MS};

    proptest! {
        /// With ticks at most half the failure timeout apart, a peer whose last frame
        /// came at `silent_from` is reported down by the first tick after
        /// `silent_from + DOWN_AFTER_MS`, never earlier, whatever stalls this node had
        /// before it went silent.
        #[test]
        fn down_on_time_after_real_silence(
            steps in prop::collection::vec((1u64..=DOWN_AFTER_MS / 2, any::<bool>()), 1..40),
            stall in prop::option::of(DOWN_AFTER_MS..5 * DOWN_AFTER_MS),
            silent_ticks in prop::collection::vec(1u64..=DOWN_AFTER_MS / 2, 1..20),
        ) {
            let mut m: Membership<4> = Membership::new(1, 7, DOWN_AFTER_MS);
            prop_assert!(m.add_peer(2).is_ok());
            prop_assert!(m.on_hello(2, 7, 1, 0).is_ok());
            let mut now = 0u64;
            let mut last_frame = 0u64;
            // A live phase, optionally with one stall of this node in it.
            for (i, (gap, frame)) in steps.iter().enumerate() {
                now += gap + if i == steps.len() / 2 { stall.unwrap_or(0) } else { 0 };
                if *frame {
                    prop_assert!(m.on_traffic(2, now));
                    last_frame = now;
                }
                let ev: Events<5> = m.tick(now);
                if now - last_frame <= DOWN_AFTER_MS {
                    prop_assert!(ev.is_empty(), "down at {} after a frame at {}", now, last_frame);
                }
                if m.peer(2).map(|p| p.state) != Some(PeerState::Up) {
                    return Ok(());
                }
            }
            // Then silence, with regular ticks, until well past the timeout.
            let silent_from = m.peer(2).map(|p| p.last_heard_ms).unwrap_or(0);
            let mut down_at = None;
            let mut ticks = silent_ticks.iter().cycle();
            while now <= silent_from + 2 * DOWN_AFTER_MS {
                now += ticks.next().copied().unwrap_or(1);
                let ev: Events<5> = m.tick(now);
                if ev.iter().any(|e| *e == Event::Down { id: 2 }) {
                    down_at = Some(now);
                    break;
                }
            }
            let down_at = down_at.expect("a silent peer goes down");
            prop_assert!(down_at > silent_from + DOWN_AFTER_MS);
            prop_assert!(down_at <= silent_from + DOWN_AFTER_MS + DOWN_AFTER_MS / 2);
        }
    }
}

mod text_props {
    use proptest::prelude::*;
    use ssi_shared::text::{I64, U64};

    proptest! {
        /// U64/I64 print exactly what core prints, with any width and alignment.
        #[test]
        fn u64_and_i64_print_like_core(v in any::<u64>(), w in 0usize..24, s in any::<i64>()) {
            prop_assert_eq!(format!("{}", U64(v)), format!("{}", v));
            prop_assert_eq!(format!("{:>w$}", U64(v), w = w), format!("{:>w$}", v, w = w));
            prop_assert_eq!(format!("{:<w$}", U64(v), w = w), format!("{:<w$}", v, w = w));
            prop_assert_eq!(format!("{}", I64(s)), format!("{}", s));
            prop_assert_eq!(format!("{:>w$}", I64(s), w = w), format!("{:>w$}", s, w = w));
        }
    }
}

mod arith_props {
    use proptest::prelude::*;
    use ssi_shared::arith::{div_small, ns_to_ms};

    proptest! {
        #[test]
        fn div_small_agrees_with_u64_division(v in any::<u64>(), d in 1u16..) {
            prop_assert_eq!(div_small(v, d), (v / u64::from(d), (v % u64::from(d)) as u16));
            prop_assert_eq!(ns_to_ms(v), v / 1_000_000);
        }
    }
}

mod gpio_bus_props {
    //! Two bus endpoints on a simulated cable with random scheduling (late, missing and
    //! spurious interrupts), stale strobe samples, bit flips, stuck lines and a peer
    //! that goes away: every frame is delivered exactly once, in order and intact, or
    //! reported failed; nothing corrupt is ever delivered.
    use proptest::prelude::*;
    use ssi_shared::gpio_bus::{frame_len, Endpoint, Event, Levels, Side, Timing};

    const N: usize = frame_len(4096 + 64);
    const T: Timing = Timing {
        byte_timeout_us: 2_000,
        ack_timeout_us: 8_000,
        max_tries: 8,
    };

    #[derive(Clone, Debug)]
    struct Faults {
        /// Per mille of samples with one data bit flipped.
        flip_permille: u32,
        /// Per mille of samples that see the peer's strobe as it was one sample ago.
        stale_permille: u32,
        /// A data line held low from step `.1` to `.2` (mask, start, end).
        stuck: Option<(u8, u32, u32)>,
        /// Side 1 stops for good at this step.
        death: Option<u32>,
    }

    fn faults() -> impl Strategy<Value = Faults> {
        (
            prop_oneof![Just(0u32), 0u32..20],
            0u32..300,
            prop::option::of((
                prop::sample::select(vec![1u8, 2, 4, 0x80]),
                0u32..50_000,
                0u32..20_000,
            )),
            prop::option::weighted(0.2, 0u32..100_000),
        )
            .prop_map(|(flip_permille, stale_permille, stuck, death)| Faults {
                flip_permille,
                stale_permille,
                stuck: stuck.map(|(m, s, len)| (m, s, s + len)),
                death,
            })
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 16) as u32
        }
    }

    fn payload(from: usize, n: usize, len: usize) -> Vec<u8> {
        (0..len)
            .map(|k| (k * 7 + n * 131 + from * 29) as u8 ^ 0x5a)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn delivered_exactly_once_in_order_or_failed(
            seed in 1u64..u64::MAX,
            sizes in prop::collection::vec(prop_oneof![0usize..=64, 0usize..=1024, Just(4096)], 1..5),
            f in faults(),
        ) {
            // Flipped bits hit nearly every transmission of a whole page: with flips,
            // frames stay below 1 KiB so that the retries fit the simulated time.
            let sizes: Vec<usize> = sizes
                .iter()
                .map(|&s| if f.flip_permille > 0 { s.min(1024) } else { s })
                .collect();
            let mut ends: [Box<Endpoint<N>>; 2] = [
                Box::new(Endpoint::new(Side::A, seed as u32 | 1, T)),
                Box::new(Endpoint::new(Side::B, (seed >> 32) as u32 | 2, T)),
            ];
            let mut rng = Rng(seed);
            let mut now = 0u64;
            let mut next = [0usize; 2];
            // Per side: frames it sent, with their fate.
            let mut sent_ok = [Vec::new(), Vec::new()];
            let mut failed = [Vec::new(), Vec::new()];
            // Per side: frames it received (sender's index), checked intact.
            let mut got: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
            let mut last_strobe = [false; 2];
            let mut dead = false;
            for step in 0..3_000_000u32 {
                if f.death == Some(step) {
                    dead = true;
                }
                for i in 0..2 {
                    if (i == 0 || !dead) && !ends[i].busy() && next[i] < sizes.len() {
                        let p = payload(i, next[i], sizes[next[i]]);
                        prop_assert!(ends[i].submit(&p).is_ok());
                        next[i] += 1;
                    }
                }
                now += u64::from(rng.next() % 20 + 1);
                let i = (rng.next() % 3) as usize;
                if i == 2 || (i == 1 && dead) {
                    continue;
                }
                for _ in 0..8 {
                    let mut data = ends[0].drive().data & ends[1].drive().data;
                    if let Some((mask, from, to)) = f.stuck {
                        if (from..to).contains(&step) {
                            data &= !mask;
                        }
                    }
                    if rng.next() % 1000 < f.flip_permille {
                        data ^= 1 << (rng.next() % 8);
                    }
                    if !ends[i].reads_data() && rng.next().is_multiple_of(2) {
                        // The endpoint said it does not look: anything goes.
                        data = rng.next() as u8;
                    }
                    let strobe = ends[1 - i].drive().strobe;
                    let seen = if rng.next() % 1000 < f.stale_permille { last_strobe[i] } else { strobe };
                    last_strobe[i] = strobe;
                    let p = ends[i].poll(now, Levels { data, peer_strobe: seen });
                    match p.event {
                        Some(Event::Delivered { len }) => {
                            // In order, each frame at most once: a frame after the last
                            // one delivered (frames in between failed), intact.
                            let first = got[i].last().map_or(0, |k| k + 1);
                            let k = (first..next[1 - i]).find(|&k| {
                                sizes[k] == len
                                    && ends[i].received() == &payload(1 - i, k, sizes[k])[..]
                            });
                            prop_assert!(k.is_some(), "side {} delivered a corrupt, repeated or unsent frame ({} bytes)", i, len);
                            got[i].push(k.unwrap_or(0));
                        }
                        Some(Event::Sent) => sent_ok[i].push(next[i] - 1),
                        Some(Event::Failed) => failed[i].push(next[i] - 1),
                        None => {}
                    }
                    if !p.again {
                        break;
                    }
                }
                let settled = |k: usize| next[k] == sizes.len() && !ends[k].busy();
                if settled(0) && (dead || settled(1)) {
                    break;
                }
            }
            // Without a death, stuck line or flips, everything gets through.
            for i in 0..2 {
                if i == 1 && dead {
                    continue;
                }
                prop_assert!(!ends[i].busy(), "side {} still busy", i);
                prop_assert_eq!(sent_ok[i].len() + failed[i].len(), sizes.len());
                // Acknowledged frames were delivered (exactly once: deliveries are
                // numbered and checked above).
                for &k in &sent_ok[i] {
                    prop_assert!(got[1 - i].contains(&k), "frame {} acknowledged, not delivered", k);
                }
                // A frame skipped by the receiver was reported failed to its sender.
                for k in 0..sizes.len() {
                    if !got[1 - i].contains(&k) {
                        prop_assert!(failed[i].contains(&k), "frame {} of side {} lost silently", k, i);
                    }
                }
            }
            if f.death.is_none() && f.stuck.is_none() && f.flip_permille == 0 {
                prop_assert_eq!(failed[0].len() + failed[1].len(), 0);
            }
        }
    }
}

/// The futex2 system calls as `futex(2)` calls (`rust/src/futex2.rs`): against the
/// kernel's own checks written out plainly, every call is either refused with `EINVAL`
/// exactly when the kernel refuses it, or decodes to the same wait, wake or requeue.
mod futex2 {
    use proptest::prelude::*;
    use ssi_shared::errno::EINVAL;
    use ssi_shared::futex::{decode, Command, Refusal};
    use ssi_shared::futex2::{self as f2, WaitvEntry};

    /// `futex2_to_flags` + `futex_flags_valid` for a 64-bit caller (NUMA/MPOL: refused here).
    fn flags_ok(flags: u32) -> bool {
        flags & !f2::FUTEX2_VALID_MASK == 0
            && flags & f2::FUTEX2_SIZE_MASK == f2::FUTEX2_SIZE_U32
            && flags & (f2::FUTEX2_NUMA | f2::FUTEX2_MPOL) == 0
    }

    fn flags() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(f2::FUTEX2_SIZE_U32 | f2::FUTEX2_PRIVATE),
            Just(f2::FUTEX2_SIZE_U32),
            0u32..0x200,
            any::<u32>(),
        ]
    }

    fn value() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..4,
            Just(u64::from(u32::MAX)),
            any::<u32>().prop_map(u64::from),
            any::<u64>()
        ]
    }

    proptest! {
        #[test]
        fn wake_refuses_what_the_kernel_refuses(
            uaddr in prop_oneof![Just(0x1000u64), any::<u64>()],
            mask in value(),
            nr in prop_oneof![-2i32..3, any::<i32>()],
            flags in flags(),
        ) {
            let valid = flags_ok(flags) && mask <= u64::from(u32::MAX) && mask != 0
                && uaddr % 4 == 0;
            match f2::wake(uaddr, mask, nr, flags) {
                Err(r) => {
                    prop_assert!(!valid);
                    prop_assert_eq!(r.errno(), EINVAL);
                }
                Ok(None) => prop_assert!(valid && nr == 0),
                Ok(Some(c)) => {
                    prop_assert!(valid && nr != 0);
                    prop_assert_eq!(c.uaddr, uaddr);
                    let call = decode(c.op, c.val, c.val2, c.val3).unwrap();
                    prop_assert_eq!(call.private, flags & f2::FUTEX2_PRIVATE != 0);
                    match call.command {
                        Command::Wake { nr: n, bitset, robust_unlock: None } => {
                            prop_assert_eq!(n, nr);
                            prop_assert_eq!(u64::from(bitset), mask);
                        }
                        other => prop_assert!(false, "{:?}", other),
                    }
                }
            }
        }

        #[test]
        fn wait_keeps_value_mask_and_clock(
            val in value(),
            mask in value(),
            flags in flags(),
            timed in any::<bool>(),
            clockid in prop_oneof![0i32..3, any::<i32>()],
        ) {
            let valid = flags_ok(flags) && val <= u64::from(u32::MAX)
                && mask <= u64::from(u32::MAX) && (!timed || clockid == 0 || clockid == 1);
            match f2::wait(0x2000, val, mask, flags, timed, clockid) {
                Err(r) => {
                    prop_assert!(!valid);
                    prop_assert_eq!(r.errno(), EINVAL);
                }
                Ok(c) => {
                    prop_assert!(valid);
                    match decode(c.op, c.val, c.val2, c.val3) {
                        Ok(call) => {
                            prop_assert_eq!(call.realtime, timed && clockid == f2::CLOCK_REALTIME);
                            prop_assert_eq!(call.private, flags & f2::FUTEX2_PRIVATE != 0);
                            prop_assert_eq!(
                                call.command,
                                Command::Wait { val: val as u32, bitset: mask as u32, absolute: true }
                            );
                        }
                        // The kernel's wait refuses an empty mask too.
                        Err(r) => prop_assert!(mask == 0 && r == Refusal::EmptyBitset),
                    }
                }
            }
        }

        #[test]
        fn requeue_compares_the_first_entry(
            val in value(),
            flags in flags(),
            reserved in prop_oneof![Just(0u32), any::<u32>()],
            nr_wake in -1i32..3,
            nr_requeue in -1i32..3,
        ) {
            let from = WaitvEntry { val, uaddr: 0x3000, flags, reserved };
            let to = WaitvEntry { val: 0, uaddr: 0x4000, flags, reserved };
            let valid = flags_ok(flags) && reserved == 0 && val <= u64::from(u32::MAX);
            match f2::requeue(&from, &to, nr_wake, nr_requeue) {
                Err(r) => {
                    prop_assert!(!valid);
                    prop_assert_eq!(r.errno(), EINVAL);
                }
                Ok(c) => {
                    prop_assert!(valid);
                    prop_assert_eq!((c.uaddr, c.uaddr2), (0x3000, 0x4000));
                    match decode(c.op, c.val, c.val2, c.val3) {
                        Ok(call) => prop_assert_eq!(
                            call.command,
                            Command::Requeue { nr_wake, nr_requeue, cmp: Some(val as u32) }
                        ),
                        Err(r) => prop_assert!(
                            (nr_wake < 0 || nr_requeue < 0) && r == Refusal::NegativeCount
                        ),
                    }
                }
            }
        }
    }
}
