// SPDX-License-Identifier: GPL-2.0

//! The bus device's platform driver: binds to the `ssi,gpio-bus` device-tree node (the
//! Pi overlay) or to the `ssi_gpio_bus` device made from `gpio_chip`, and takes the
//! cable's lines.

use kernel::{
    device::{self, Core},
    of, platform,
    prelude::*,
};

use crate::lines::{self, Lines};
use crate::link::Running;

/// A bound bus device: the link running over its lines.
pub(crate) struct BusDriver {
    _link: Running,
}

kernel::of_device_table!(
    OF_TABLE,
    MODULE_OF_TABLE,
    <BusDriver as platform::Driver>::IdInfo,
    [(of::DeviceId::new(c"ssi,gpio-bus"), ())]
);

impl platform::Driver for BusDriver {
    type IdInfo = ();
    type Data<'bound> = Self;
    const OF_ID_TABLE: Option<of::IdTable<Self::IdInfo>> = Some(&OF_TABLE);

    fn probe<'bound>(
        pdev: &'bound platform::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self, Error> + 'bound {
        let dev: &device::Device<Core<'_>> = pdev.as_ref();
        let lines = Lines::get(dev)?;
        lines::set_bound(Some(&lines));
        let idle = lines.sample()?;
        lines::with_bound(|text| {
            dev_info!(
                dev,
                "cable lines bound: {} (now reading {:#05x})\n",
                text,
                idle
            )
        });
        let link = Running::start(crate::core_client::node_id(), crate::peer(), lines)?;
        Ok(Self { _link: link })
    }
}

impl Drop for BusDriver {
    fn drop(&mut self) {
        // The link (thread, interrupt) stops as `_link` drops, after this; the
        // descriptors go with the device's managed resources after that.
        lines::set_bound(None);
    }
}
