"""A simulated Asterisk 22 PBX speaking real AMI (TCP) and FastAGI (as the client).

Use in-process::

    async with Simulator(scenario, ami_port=0, agi_url="agi://127.0.0.1:PORT") as sim:
        sim.add_agent("agent1", "Agent One"); sim.login("agent1")
        sim.place_call(caller="13812345678", did="4008001234", name="张三")
        await sim.advance(30)          # manual time; or speed="max" / a ScaledClock

or standalone: ``cti sim --scenario scenarios/tv_evening.toml --speed 10``.

Queue membership is Asterisk's: the simulator starts with an EMPTY queue and adds a member only on
AMI QueueAdd (persistentmembers = no). The CTI's login service does that (R-LOGIN); scenario runs
without a CTI have nobody in the queue (callers get JOINEMPTY). `login()` is a test helper that
applies the same QueueAdd directly; the simulator never calls it itself (`on_shift` listeners are
told when a scenario agent's phone registers or unregisters). `restart_asterisk()` replays capture 17.

Control and truth for tests (all on Simulator): add_agent, register(agent, on), login(agent, queue,
penalty), pause_at_phone(agent, paused, reason), restart_asterisk(modules_s), on_shift,
set_answer(agent, 'auto'|'never'|'manual', delay),
answer(agent), agent_presses(agent, '*0') (the transfer-to-survey key),
set_customer(number, 'answer'|'noanswer'|'busy'|'congestion', delay, talk_time),
set_carrier_loop('ok'|'congestion'|'lost') (a line test's call to our own DID, cti/sim/carrier_loop.py),
place_call(caller, did, name, behaviour={patience, dtmf, talk_time, hangup_first, message_s,
ivr_hangup_after}, at),
advance(s) / settle(), channels(), queue_members(q), queue_callers(q), agents (rows for the `agents`
table; `cti.sim.scenario.seed_agents(conn, scenario)` provisions them like `cti agents add`),
load_agents(conn) (the phones from the center's own tables, as Asterisk's realtime driver reads
them), subscribe(fn), events (with record_events=True), stats / summary(). Time modes: see cti.sim.simulator.

Modules, split as Asterisk splits them (each names the captures it follows):
sched (virtual-time timers) <- core (channels, bridges, PJSIP endpoints: registration, qualify, device
state; the event stream) <- people (when agents answer, pause, take breaks; how customers react; not
Asterisk) <- app_queue (queues, members, callers, strategy, autopause) and recordings (MixMonitor) <- the
dialplan flows behind `model.CallFlow`: inbound ([from-trunk] + FastAGI), originate (agent first),
customer_first, outbound_customers (the dialer's customers and [cti-outbound]), carrier_loop <- pbx
(the assembly). Around it: agi (FastAGI client), cdr (cdr_pgsql rows), ami_session / ami_actions (the
`ACTIONS` table) / ami (the server, which sees only an `AmiDriver`), console (CLI of Action: Command),
traffic (a scenario's arrivals and shifts), simulator (time driver, test controls), runner (`cti sim`).

Known differences from the captures (asterisk-captures/, kept on purpose or not yet modelled):
- Only the VarSets a CTI reads are emitted (__CTI_DNIS, CTI_* set over AGI, AGISTATUS, QUEUESTATUS,
  MEMBERINTERFACE/MEMBERNAME, QUEUEPOSITION, ANSWEREDTIME/DIALEDTIME, DIALSTATUS, MIXMONITOR_FILENAME);
  Asterisk's ~100 internal ones per call (RTPAUDIOQOS*, BRIDGEPEER, QUEUE* stats, SIPDOMAIN...) are not.
- No Cdr, RTCPSent, ChallengeSent or PJSIP SuccessfulAuth events (no SIP/RTP underneath; the project
  ships no cdr_manager.conf, so a real PBX sends no Cdr event either: captures 11-20).
- cdr_pgsql rows (cti/sim/cdr.py, an `on_call_record` hook) follow captures 12-14, 16, 18: context where
  the call ended, `dst = s`, ANSWERED for every inbound call, two rows for preferred Dial + queue. The
  simulator still hangs up after Queue() returns where the project's dialplan goes to `[cti-night]`, so
  such a row says `cti-queue`. While PostgreSQL is away, rows are dropped after one reconnect and retry
  (cdr_pgsql.c's behaviour, counted in `CdrWriter.dropped`; no capture of an outage).
- DeviceStateChange covers PJSIP/<endpoint> and the Queue:<q>, Queue:<q>_avail, Queue:<q>_pause_<iface>
  pseudo devices (sequence checked against 01-03), not Local/... devices.
- Cross-channel order is fixed (one of the orders seen in the captures); only per-channel order is
  guaranteed by Asterisk anyway. QueueMemberStatus(INUSE) always follows AgentConnect with InCall 1 (01).
- Virtual time stands still during a FastAGI session in manual/fast mode: prompts take no time, so
  WHEN a caller keys is scripted, not timed: a behaviour `dtmf` entry starting with `>` is keyed
  during the next playback (lost unless an escape digit stops it, capture 16), plain entries answer
  GET DATA / WAIT FOR DIGIT (cti.sim.agi). The sounds it has are the prompt manifest's (or a real
  `sounds_dir`) minus `missing_sounds`; a missing one answers -1 like capture 15. Prompt and recording
  lengths (endpos) are not Asterisk's. BEEP is not played (a missing `beep` is not modelled).
- MixMonitor writes silence for the whole recorded span (Asterisk writes only the frames that flowed;
  05b: 7.06 s of audio over 8.6 s).
- Local channel optimisation, transfers, AMI over HTTP, Async AGI are not modelled (nor captured).
- Redirect supports sending a waiting caller to `agents,<agentN>` only. Extension patterns are not
  evaluated: `agents,agentN` is reached for any N, where Asterisk applies `[agents]`' patterns (the
  `_age[n]tX.` bug of capture 18 is caught by tests/asterisk_conf, not by the simulator).
- Originate: agent-first (PJSIP/agentN or Local/agentN@agents, then `callback`/`callback-did`) and
  customer-first (PJSIP/<number>@pstn or @trunk, then `agents,agentN` or `[cti-outbound]`) are
  modelled, and a line test's `PJSIP/<our DID>@trunk` with an Application, which the carrier loops
  back in through [from-trunk] (no capture exists of that loop; the outbound leg writes no CDR row,
  Asterisk would: its linkedid is our `cti-lt-N`); other dial strings to the trunk fail with Reason 0.
  The callback leg dials `@pstn,15` (06d) where the project's `[callback-did]`
  dials `@trunk,30`. `set_trunk(False)` reproduces capture 18 (CHANUNAVAIL, no DialBegin/DialEnd, Cause
  3), except that the OriginateResponse comes before `[callback-did]`'s Newexten/VarSets, not after.
  `Async: false` replies at once (Asterisk waits for the answer) and sends no OriginateResponse.
- The preferred agent's Dial follows capture 12 on the wire (DialBegin `DialString: agent3`, no
  Agent*/QueueCaller* events, QueueMemberStatus following the device with CallsTaken unchanged); its
  Newexten AppData lacks the project dialplan's `b(...)U(...)` options.
- Patience counts from QueueCallerJoin (or the preferred agent's Dial). A caller can hang up during the
  FastAGI script after N commands (behaviour `ivr_hangup_after`, scenario `ivr_hangup_chance`): the
  server then reads `HANGUP`, later commands get 511, AGISTATUS=HANGUP (texts from res_agi; not captured).
- AMI Hangup on a ringing agent leg is handled like a ring timeout (AgentRingNoAnswer, autopause).
- AGI 520 usage texts other than SET VARIABLE's are approximations (only that one was captured).
- Qualify (captures 17, 19): a phone that registers (shift start, `register()`) or survives a restart
  is UNAVAILABLE until its first qualify, at a random moment within scenario qualify_frequency_s (30)
  or at once on PJSIPQualify; a phone added with `add_agent(registered=True)` counts as registered and
  qualified long ago. Only the first qualify is modelled: a phone that vanishes without unregistering
  never turns Unreachable (capture 17's stale agent3 contact). PeerStatus/ContactStatus/QueueMemberStatus
  follow capture 17's order for the timer too (capture 19 had ContactStatus last). The PJSIPQualify
  error text for an unknown endpoint is not captured.
- Agents' phones never dial: the feature codes (*11..*15 in `[agents]`) are not modelled; simulated
  agents join through the CTI's login service (cti/rehearsal.py) or a test's QueueAdd.
- Outbound (cti.sim.outbound_customers): busy and no answer replay 06c; congestion (503, Cause 34) has
  no capture and follows the busy shape; `[cti-outbound]` after the answer has no capture (its Dial
  looks like 12's preferred Dial, its Queue like 01-03's with the connect timeout), its Newexten
  AppData are abridged, no MixMonitor runs on outbound calls, the customer always hangs up first,
  and an unreachable trunk (set_trunk) does not stop a customer-first Originate. Simulated agents
  answer as their profile says; a Queue() connect timeout cuts the ring short at once (app_queue's
  timeoutpriority=app), where Asterisk checks it between ring polls.
- Restart (capture 17): channels are hung up with Cause 16 and `Event: Shutdown` follows at once
  (~1.1 s later on the real PBX); the AMI port keeps accepting connections (the capture cannot tell
  whether it was briefly closed); while booting, app_queue's actions answer `Invalid/unknown command`
  for `modules_s` of simulated time and a login gets no FullyBooted (not captured); AGI and CDR do
  not restart.
- Dialplan Hangup() on the inbound channel sends SoftHangupRequest 16 + Hangup 16, as Local;1 did in 06b
  (no capture shows it on a trunk channel). Challenge (MD5) login is not offered; plain Login only.
- The survey (issue 17, decision 0900): the project's Queue() has `c` and the preferred agent's Dial()
  `g`, so a caller the agent left goes on to [cti-survey] (QUEUESTATUS=CONTINUE, AGI survey with
  agi_arg_1..3, Hangup); without them (InboundFlow.QUEUE_CONTINUE / DIAL_CONTINUE false) the caller
  is hung up as in capture 04. No capture shows the `c` path: the events keep 04's order up to the
  agent's Hangup and leave out the caller's; the Newexten lines between Queue and AGI are abridged;
  cdr_pgsql rows of a surveyed call are not modelled (Asterisk starts a new CDR for dialplan run
  after a bridge). agi_arg_N lines follow res_agi.c's setup_env (no captured script had arguments).
  Callbacks: `[callback-did]`'s Dial `F(cti-survey^callback^1)` is not modelled: a simulated agent
  never hangs up a callback first (an AMI Hangup of the agent leg ends it as the customer's would).
- The transfer-to-survey key (features.conf `cti-survey => *0`, `agent_presses`): no capture. Modelled
  on inbound calls only (queue and preferred Dial; not after a Redirect to [agents], not callbacks,
  where `agent_presses` returns False): Newexten Set/Hangup of [cti-survey-key] on the agent's channel,
  its SoftHangupRequest (no HangupRequest), then the agent-left path with agi_arg_4 `key`. No
  DTMFBegin/DTMFEnd (the CTI's manager user has no `dtmf` read class; capture 16 shows their shape),
  other keys are ignored, and the 1000 ms featuredigittimeout between `*` and `0` takes no time.
"""

from cti.sim.scenario import Scenario, ScenarioError, load_scenario
from cti.sim.simulator import Simulator

__all__ = ["Scenario", "ScenarioError", "Simulator", "load_scenario"]
