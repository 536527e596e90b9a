"""Several CTI processes on one PostgreSQL (issue 18, decision 0110): process leases, the agent claim
every ringer shares, and the leader that runs the run-once parts."""
