// SPDX-License-Identifier: GPL-2.0

//! Node identities.

/// Most nodes a cluster can have. Node ids are `0..SSI_MAX_NODES`.
pub const SSI_MAX_NODES: u32 = 64;

/// A node id that has been checked to be in range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeId(u32);

/// Why a value is not a node id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeIdError {
    /// Negative, or `SSI_MAX_NODES` or more.
    OutOfRange,
}

impl NodeId {
    /// Checks a node id given as a module parameter or by userspace.
    pub fn new(raw: i64) -> Result<Self, NodeIdError> {
        if raw < 0 || raw >= i64::from(SSI_MAX_NODES) {
            return Err(NodeIdError::OutOfRange);
        }
        // The range check above makes the conversion lossless.
        Ok(Self(raw as u32))
    }

    /// The id as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_node_id))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_id_in_range() {
        assert_eq!(NodeId::new(0).map(NodeId::get), Ok(0));
        assert_eq!(NodeId::new(1).map(NodeId::get), Ok(1));
        let last = i64::from(SSI_MAX_NODES) - 1;
        assert_eq!(NodeId::new(last).map(NodeId::get), Ok(SSI_MAX_NODES - 1));
    }

    #[test]
    fn rejects_out_of_range() {
        assert_eq!(NodeId::new(-1), Err(NodeIdError::OutOfRange));
        assert_eq!(
            NodeId::new(i64::from(SSI_MAX_NODES)),
            Err(NodeIdError::OutOfRange)
        );
        assert_eq!(NodeId::new(i64::MAX), Err(NodeIdError::OutOfRange));
        assert_eq!(NodeId::new(i64::MIN), Err(NodeIdError::OutOfRange));
    }
}
