"""R-LINE-TEST: every DID test-called twice a day through the carrier (schedule, runner, inbound)."""
