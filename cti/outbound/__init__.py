"""Outbound campaigns (R-PACE, R-DNC, R-CAPS, R-OUT-CID, R-FUNNEL, R-DATA): contact import, the
eligibility query and pre-dial claim, the independent compliance audit and the pacing decisions."""
