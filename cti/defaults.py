"""Policy defaults a deployment may override in its settings (`cti.config.Settings`): the one place
they are written. Standard library only, so the degraded script can read them too."""

from __future__ import annotations

TIMEZONE = "Asia/Shanghai"  # the call centers' local time (CTI_TIMEZONE)
QUEUE = "sales"  # the contract's default queue; the dialplan's [globals] names the same (CTI_QUEUE)
DID = "4008001234"  # the hotline presented on callbacks without a DID of their own (CTI_DEFAULT_DID)
