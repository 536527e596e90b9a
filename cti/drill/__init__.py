"""Reliability drills (issue 16): faults thrown at the whole CTI during a rehearsal, measured from
outside it. `runner` has the drills, `proxy` breaks links, `ledger` counts AMI frames on the wire."""
