"""The callback Originate request, in the exact shape the dialplan and the simulator expect
(COMMON contract, capture 06d): agent first, customer dialed by context `callback-did` with
CALLERID(num) = CTI_DID, so the customer sees the number they called (R-OUT-CID)."""

from __future__ import annotations

from dataclasses import dataclass


class OriginateNotSent(Exception):
    """Raised by an injected `originate` callable when the action certainly did not leave this
    process (no AMI connection). Any other exception means: sent or not, unknown."""


@dataclass(frozen=True)
class OriginateRequest:
    callback_id: int
    attempt: int
    channel: str  # PJSIP/agent1
    exten: str  # the customer number
    did: str
    channel_id: str  # cti-cb-<id>-<attempt>
    timeout_ms: int  # how long the agent leg rings (R-RING2)
    context: str = "callback-did"
    extra_variables: tuple[tuple[str, str], ...] = ()
    # what the agent's phone shows while it rings (`回拨 138****5678`): the Originate's CallerID name
    # reaches the agent leg (06a/06d); the number stays the DID, which [callback-did] presents to the
    # customer. Never the full customer number (R-MASK).
    agent_display: str = ""

    def headers(self) -> dict[str, str]:
        """AMI headers after Action/ActionID (the AMI client adds those), in wire order."""
        variables = [f"CTI_DID={self.did}", f"CTI_CALLBACK_ID={self.callback_id}"]
        variables += [f"{k}={v}" for k, v in self.extra_variables]
        return {
            "Channel": self.channel,
            "Context": self.context,
            "Exten": self.exten,
            "Priority": "1",
            "CallerID": f'"{self.agent_display}" <{self.did}>' if self.agent_display else self.did,
            "Timeout": str(self.timeout_ms),
            "Variable": ",".join(variables),
            "Async": "true",
            "ChannelId": self.channel_id,
        }
