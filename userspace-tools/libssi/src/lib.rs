//! libssi: safe userspace access to ssi regions, cluster-wide shared memory.
//!
//! A region is a named piece of memory that every node of an ssi cluster can map. Its
//! home node (the one that created it) keeps a directory of who holds each page; the
//! kernels move pages between nodes on faults and keep them coherent (one writer or
//! many readers per page; aligned words are sequentially consistent).
//!
//! ```no_run
//! use std::sync::atomic::Ordering;
//! use libssi::{Device, Region};
//!
//! # fn main() -> std::io::Result<()> {
//! let dev = Device::open()?;
//! let region = Region::create(&dev, "counters", 64 << 20, 0o600)?;
//! let map = region.map()?;
//! map.words()[0].fetch_add(1, Ordering::SeqCst);
//! // On another node: Region::open(&dev, "counters", true)?.map()?
//! for r in dev.regions()? {
//!     println!("{} {} bytes, home {}, {}", r.name, r.size, r.home, r.state);
//! }
//! dev.remove_region("counters")?;
//! # Ok(())
//! # }
//! ```
//!
//! Every error carries an errno ([`errno`]) and a message that says what failed and,
//! for the usual errnos (`ENOENT`, `EEXIST`, `EACCES`, `EHOSTDOWN`, `EINVAL`...), why.
//!
//! Accesses to a page whose contents were lost with a node, or to a removed region,
//! raise `SIGBUS` (see [`Mapping`]).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod device;
mod error;
mod mapping;
pub mod pattern;
mod region;
mod units;

pub use device::{Device, DEFAULT_DEVICE};
pub use error::{errno, Error};
pub use mapping::{Mapping, WORDS_PER_PAGE};
pub use pattern::{Checksum, Mismatch};
pub use region::{
    validate_mode, validate_name, validate_size, Region, RegionInfo, RegionList, RegionState,
    MAX_NAME_LEN, MAX_REGION_SIZE,
};
pub use units::{format_mode, format_size, parse_mode, parse_size};

/// Size of the pages regions are made of and move between nodes in.
pub const PAGE_SIZE: usize = ssi_shared::ioctl::SSI_PAGE_SIZE;
