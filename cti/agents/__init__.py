"""Agent login service (R-LOGIN): the CTI decides who is in which queue, and Asterisk follows.

- `decide`: pure decision functions (login, logout, pause with a reason, unpause) with injected time.
- `repo`: the `agent_logins` table (db/040), the source of truth for restore.
- `service.AgentService`: applies a decision over AMI (QueueAdd / QueueRemove / QueuePause,
  PJSIPQualify), records it, and puts every open session back after each AMI resync.
- `prompts`: the feature codes and the prompt each result plays on the phone.

Entry points: the softphone feature codes (cti/agi/handlers/agent_feature.py), `cti agents ...`
(cti/commands/agents.py) and `CtiServer.agents` for the web panel.
"""
