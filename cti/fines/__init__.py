"""Fines ledger (罚款台账): violations derived from facts and events, priced by the policy in force when
they happened, rebuilt idempotently (`cti fines rebuild --since T`)."""
