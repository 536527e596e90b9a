"""Old home of the simulated PBX, split along Asterisk's own lines (issue 11): the scheduler
(cti.sim.sched), the core (cti.sim.core), app_queue (cti.sim.app_queue), MixMonitor
(cti.sim.recordings), the people on the phones (cti.sim.people), the dialplan flows (cti.sim.inbound,
cti.sim.originate, cti.sim.customer_first) and their assembly (cti.sim.pbx). The names below stay
importable from here for code written against the old module."""

from cti.sim.core import Core as Engine
from cti.sim.core import Stats
from cti.sim.inbound import InboundFlow as InboundCall
from cti.sim.model import CallSpec
from cti.sim.model import PbxEvent as Event
from cti.sim.recordings import write_wav
from cti.sim.sched import Timer

__all__ = ["CallSpec", "Engine", "Event", "InboundCall", "Stats", "Timer", "write_wav"]
