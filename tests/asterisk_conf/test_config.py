"""The Asterisk 22 configuration agrees with itself, with the policy, and with what the CTI expects.

No Asterisk binary here: asterisklint checks the dialplan syntax; the rest reads the files the way
Asterisk's config parser does (sections, `key = value`, `;` comments, templates)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from cti.policy import load_policy
from cti.routing.inbound import Route

ROOT = Path(__file__).resolve().parents[2]
DIALPLAN = ROOT / "dialplan" / "extensions.conf"
CONF = ROOT / "asterisk-conf"
POLICY = load_policy()


def _sections(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^\[([^\]]+)\]", line)
        if m:
            out.append((m.group(1), []))
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not key = value: {raw!r}"
        out[-1][1].append((key.strip().rstrip(">").strip(), value.strip()))
    return out


def _section(path: Path, name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for sec, items in _sections(path):
        if sec == name:
            for k, v in items:
                found.setdefault(k, []).append(v)
    assert found, f"{path.name}: no [{name}]"
    return found


def test_asterisklint_passes_the_dialplan() -> None:
    lint = Path(sys.executable).parent / "asterisklint"
    p = subprocess.run(
        [str(lint), "dialplan-check", str(DIALPLAN)], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == "" and p.stderr.strip() == ""


def test_dialplan_handles_every_route_value_and_checks_cti_route_not_only_agistatus() -> None:
    text = DIALPLAN.read_text(encoding="utf-8")
    contexts = {name for name, _ in _sections(DIALPLAN)}
    assert {"general", "globals", "from-trunk", "callback-did", "agents"} <= contexts
    inbound = text[text.index("[cti-inbound]") : text.index("[cti-fallback]")]
    assert "AGI(${CTI_AGI}/route)" in inbound
    assert '$["${CTI_ROUTE}" = ""]?cti-fallback,s,1' in inbound  # capture 08a: SUCCESS, no decision
    assert '$["${AGISTATUS}" = "FAILURE"]?degraded' in inbound
    for route in Route:
        if route is not Route.QUEUE:
            assert f'"${{CTI_ROUTE}}" = "{route.value}"' in inbound
    for target in re.findall(r"\b(cti-[a-z-]+),s,1", text):
        assert target in contexts, target


def test_agent_legs_are_masked_and_recorded() -> None:
    text = DIALPLAN.read_text(encoding="utf-8")
    queue = text[text.index("[cti-queue]") : text.index("[cti-agent-leg]")]
    # both the preferred-agent Dial and the Queue run the pre-dial handler with the masked number
    # (and ARG2, the transfer-to-survey key for the agent's leg: decision 0900)
    assert queue.count("b(cti-agent-leg^s^1(${CTI_MASKED}^cti-survey))") == 2
    assert "U(cti-agent-connect)" in queue and ",,cti-agent-connect)" in queue
    assert "Dial(PJSIP/${CTI_PREFERRED},${CTI_PREFERRED_TIMEOUT}," in queue
    leg = _section(DIALPLAN, "cti-agent-leg")["exten"] + _section(DIALPLAN, "cti-agent-leg")["same"]
    for needed in ("CONNECTEDLINE(num,i)=${ARG1}", "CONNECTEDLINE(name,i)=${ARG1}", "CALLERID(num)=${ARG1}"):
        assert any(needed in line for line in leg), needed
    assert any("CONNECTED_LINE_SEND_SUB=cti-mask-connected,s,1" in line for line in leg)
    connect = " ".join(_section(DIALPLAN, "cti-agent-connect")["exten"])
    assert "MixMonitor(${CTI_RECORD_FILE},b)" in connect


def test_callback_did_presents_the_did() -> None:
    cb = " ".join(_section(DIALPLAN, "callback-did")["same"])
    assert "Set(CALLERID(num)=${CTI_DID})" in cb and "Set(CALLERID(name)=)" in cb
    assert "Dial(PJSIP/${EXTEN}@${CTI_TRUNK}" in cb


def test_the_did_dialled_reaches_the_cdr_for_the_sweep() -> None:
    """dst is `s` in every inbound CDR row (captures 11-15): the DID must be copied into the cdr
    column the sweep reads (db/046), or a caller missed while no CTI watched is called back from the
    wrong DID."""
    trunk = " ".join(_section(DIALPLAN, "from-trunk")["same"])
    assert "Set(CDR(cti_did)=${EXTEN})" in trunk
    assert "cti_did" in (ROOT / "db" / "046_cdr_did.sql").read_text()


def test_queue_matches_the_ring_policy() -> None:
    sales = _section(CONF / "queues.conf", "sales")
    assert float(sales["timeout"][0]) == POLICY.ring.agent_timeout_s == 10
    assert float(sales["retry"][0]) == POLICY.ring.retry_s
    assert sales["autopause"] == ["yes"] and sales["ringinuse"] == ["no"]
    assert _section(CONF / "queues.conf", "general")["persistentmembers"] == ["no"]


def test_china_indications_match_the_cadence() -> None:
    assert _section(CONF / "indications.conf", "general")["country"] == ["cn"]
    on, off = _section(CONF / "indications.conf", "cn")["ringcadence"][0].split(",")
    assert (int(on) / 1000, int(off) / 1000) == (POLICY.ring.on_s, POLICY.ring.off_s)


def test_manager_user_has_what_the_listener_needs_and_no_real_secret() -> None:
    general = _section(CONF / "manager.conf", "general")
    assert general["timestampevents"] == ["yes"] and general["enabled"] == ["yes"]
    cti = _section(CONF / "manager.conf", "cti")
    read = set(cti["read"][0].split(","))
    # INDEX read-class table: queue/member (agent), channels/bridges/originate (call), VarSet CTI_DNIS
    # (dialplan), Cdr (cdr), FullyBooted/PeerStatus (system)
    assert {"agent", "call", "dialplan", "cdr", "system"} <= read and "all" not in read
    write = set(cti["write"][0].split(","))
    assert {"originate", "agent", "call", "system"} <= write
    assert re.fullmatch(r"@[A-Z_]+@", cti["secret"][0])  # a placeholder deployment replaces
    filters = [k for k in cti if k.startswith("eventfilter(")]
    assert "eventfilter(action(exclude),name(Newexten))" in filters
    # nothing the listener consumes is filtered out
    for used in ("QueueMember", "Agent", "Bridge", "VarSet", "Hangup", "Newchannel"):
        assert not any(used in f for f in filters)


def test_pjsip_only_with_agents_and_trunk_into_the_dialplan() -> None:
    sections = _sections(CONF / "pjsip.conf")
    names = {n.split("(")[0] for n, _ in sections}
    assert {"trunk", "transport-udp"} <= names
    # agents' phones are realtime rows (db/080, decision 0306), not sections here
    assert not any(n.startswith("agent") for n in names)
    contexts = {name for name, _ in _sections(DIALPLAN)}
    for _, items in sections:
        for k, v in items:
            if k == "context":
                assert v in contexts
            if k in ("password", "secret"):
                assert re.fullmatch(r"@[A-Z0-9_]+@", v), "credentials are placeholders"
    assert not (CONF / "sip.conf").exists()
    assert "chan_sip.so" not in _loaded_modules() and "chan_pjsip.so" in _loaded_modules()


def test_musiconhold_has_the_queue_class() -> None:
    assert _section(CONF / "musiconhold.conf", "default")["mode"] == ["files"]
    assert _section(CONF / "queues.conf", "sales")["musicclass"] == ["default"]


def test_deployment_replaces_every_placeholder_and_runs_the_degraded_script_that_exists() -> None:
    placeholders = set()
    for conf in CONF.glob("*.conf"):
        placeholders |= set(re.findall(r"@([A-Z0-9_]+)@", conf.read_text(encoding="utf-8")))
    entry = (CONF / "docker" / "entrypoint.sh").read_text(encoding="utf-8")
    (replaced,) = re.findall(r"for var in ([A-Z0-9_ ]+); do", entry)
    assert placeholders == set(replaced.split())
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for var in placeholders - {"CARRIER_PORT"}:
        assert f"{var}: ${{{var}:?" in compose, var  # compose refuses to start without it
    assert "CARRIER_PORT: ${CARRIER_PORT:-5060}" in compose  # the one with a default
    # the dialplan's degraded script is the one in this repository, mounted at /opt/cti
    (script,) = re.findall(r"^CTI_DEGRADED_AGI=/opt/cti/(\S+)$", DIALPLAN.read_text(), re.M)
    assert (ROOT / script).is_file() and (ROOT / script).stat().st_mode & 0o111
    assert "- ./:/opt/cti:ro" in compose and "CTI_SPOOL_DIR: /var/lib/cti/spool" in compose
    assert "CTI_DATA_DIR: /var/lib/cti" in compose  # cti's spool is <data_dir>/spool: the same directory


def _gotoif_taken(line: str, variables: dict[str, str]) -> bool:
    """Evaluate a dialplan `GotoIf($[<"a" = "b"> [& ...]]?label)` the way Asterisk's $[] would for
    the equality-and-& expressions our dialplan uses (unset variables are empty)."""
    expr = re.search(r"GotoIf\(\$\[(.*)\]\?", line)
    assert expr, line
    text = re.sub(r"\$\{([A-Z_]+)\}", lambda m: variables.get(m.group(1), ""), expr.group(1))
    terms = [t.strip() for t in text.split("&")]
    result = True
    for t in terms:
        m = re.fullmatch(r'"([^"]*)"\s*=\s*"([^"]*)"', t)
        assert m, t
        result = result and m.group(1) == m.group(2)
    return result


def test_night_script_ending_failure_on_a_cti_routed_call_is_not_degraded() -> None:
    """Issue 10 item 5 / capture 15: the CTI's night script ended with -1 (GET DATA on a missing prompt),
    AGISTATUS=FAILURE, and `[cti-night]` ran the degraded script on a call the CTI had routed, which
    spooled a bogus degraded_route. Only a call the degraded script routed (08b, 14) goes there."""
    night = _section(DIALPLAN, "cti-night")
    gotoif = next(v for v in night["same"] if "?degraded" in v)
    assert not _gotoif_taken(gotoif, {"AGISTATUS": "FAILURE", "CTI_ROUTE": "night"})  # 15
    assert not _gotoif_taken(gotoif, {"AGISTATUS": "HANGUP", "CTI_ROUTE": "night"})  # 19
    assert not _gotoif_taken(gotoif, {"AGISTATUS": "SUCCESS", "CTI_DEGRADED": "1"})
    inbound = _section(DIALPLAN, "cti-inbound")["same"]
    marks = [i for i, v in enumerate(inbound) if "Set(CTI_DEGRADED=1)" in v]
    runs = [i for i, v in enumerate(inbound) if "AGI(${CTI_DEGRADED_AGI})" in v]
    assert marks and runs and marks[0] < runs[0]  # the degraded route marks the call before its script
    assert _gotoif_taken(gotoif, {"AGISTATUS": "FAILURE", "CTI_DEGRADED": "1"})  # CTI still down (08b)


# -- modules.conf (issue 10 item 12): an explicit list, and everything the configuration uses in it --
# Asterisk 22 names. "core": built into the asterisk binary (main/pbx_builtins.c, pbx_variables.c,
# core_local.c), nothing to load. A name missing here fails the test below: look it up and add it.
APP_MODULE = {
    "Answer": "core", "Goto": "core", "GotoIf": "core", "Hangup": "core", "NoOp": "core",
    "Set": "core", "MSet": "core", "Wait": "core", "Progress": "core", "Ringing": "core",
    "Busy": "core", "Congestion": "core", "BackGround": "core", "SayDigits": "core",
    "SayNumber": "core", "WaitExten": "core",
    "AGI": "res_agi.so", "Dial": "app_dial.so", "Queue": "app_queue.so",
    "AddQueueMember": "app_queue.so", "RemoveQueueMember": "app_queue.so",
    "PauseQueueMember": "app_queue.so", "UnpauseQueueMember": "app_queue.so",
    "MixMonitor": "app_mixmonitor.so", "StopMixMonitor": "app_mixmonitor.so",
    "Gosub": "app_stack.so", "Return": "app_stack.so", "ExecIf": "app_exec.so", "Exec": "app_exec.so",
    "Log": "app_verbose.so", "Verbose": "app_verbose.so", "Echo": "app_echo.so",
    "Playback": "app_playback.so", "Read": "app_read.so", "ChanSpy": "app_chanspy.so",
}  # fmt: skip
FUNC_MODULE = {
    "CALLERID": "func_callerid.so", "CONNECTEDLINE": "func_callerid.so", "CHANNEL": "func_channel.so",
    "CDR": "func_cdr.so", "QUEUE_MEMBER": "app_queue.so", "PJSIP_HEADER": "res_pjsip_header_funcs.so",
    "DEVICE_STATE": "func_devstate.so", "STRFTIME": "func_strings.so", "LEN": "func_strings.so",
    "IF": "func_logic.so", "ISNULL": "func_logic.so", "DB": "func_db.so", "CUT": "func_cut.so",
    "SHARED": "func_global.so", "GLOBAL": "func_global.so",
}  # fmt: skip
# modules that refuse to load without others (their AST_MODULE_INFO .requires)
REQUIRES = {
    "res_pjsip.so": [
        "res_pjproject.so", "res_sorcery_config.so", "res_sorcery_memory.so", "res_sorcery_astdb.so"
    ],
    "res_pjsip_session.so": ["res_pjsip.so"],
    "chan_pjsip.so": ["res_pjsip.so", "res_pjsip_session.so", "res_pjsip_pubsub.so"],
    "res_agi.so": ["res_speech.so"],
}  # fmt: skip


def _loaded_modules() -> set[str]:
    general = _section(CONF / "modules.conf", "modules")
    assert general["autoload"] == ["no"]
    return set(general.get("load", []))


def _dialplan_uses() -> tuple[set[str], set[str]]:
    text = "\n".join(line.split(";", 1)[0] for line in DIALPLAN.read_text(encoding="utf-8").splitlines())
    apps = set(re.findall(r"=>\s*(?:[^,\n]+,)?(?:n|\d+)(?:\([\w-]+\))?,(\w+)\(", text))
    apps |= set(re.findall(r"[?:](\w+)\(", text)) - {"CALLERID", "CONNECTEDLINE", "CHANNEL"}
    # b()/U() may follow other option letters (`gb(...)`): letters only between the comma and b/U
    if re.search(r"Dial\([^)]*,[A-Za-z]*[bU]\(|Queue\([^)]*(?:,[^,)]*){5},[\w-]+\)", text):
        apps.add("Gosub")  # Dial b()/U() and Queue's gosub argument run subroutines
    funcs = set(re.findall(r"\$\{(\w+)\(", text)) | set(re.findall(r"Set\((\w+)\(", text))
    # and the functions our AGI scripts read and set (GET VARIABLE "CHANNEL(linkedid)" ...)
    for script in [
        *(ROOT / "cti" / "agi" / "handlers").glob("*.py"),
        ROOT / "cti" / "degraded" / "route_agi.py",
    ]:
        funcs |= set(re.findall(r"\b([A-Z_]{4,})\([a-z]+\)", script.read_text(encoding="utf-8")))
    # features.conf [applicationmap]: `name => keys,on,App(args)` or `name => keys,on,App,args` runs App
    for _, value in _section(CONF / "features.conf", "applicationmap").items():
        apps |= {v.lstrip("> ").split(",")[2].split("(")[0].strip() for v in value}
    return apps, funcs


def _applicationmap() -> dict[str, tuple[str, str, str]]:
    """features.conf [applicationmap] as Asterisk 22 reads it: name => DTMF, ActivateOn[/ActivatedBy],
    Application(args) (the third syntax of the sample; the one our entries use)."""
    out = {}
    for name, values in _section(CONF / "features.conf", "applicationmap").items():
        value = values[0].lstrip("> ")
        assert len(values) == 1, f"features.conf: {name} twice"
        m = re.fullmatch(r"([0-9*#A-D]+),(self|peer)(?:/\w+)?,(\w+\(.*\))", value)
        assert m, f"features.conf {name}: not DTMF,self|peer,App(args): {value!r}"
        out[name] = (m.group(1), m.group(2), m.group(3))
    return out


def test_transfer_to_survey_key_is_the_agents_and_ends_only_the_agents_leg() -> None:
    """Issue 17: the agent keys *0 and the customer goes to the survey. The feature listens on the
    channel whose DYNAMIC_FEATURES names it (docs: ActivatedBy is no longer honored), so it is set on
    the agent's leg only: by the pre-dial handler for inbound calls, in [callback-did] (the agent's
    own channel) for callbacks, never with `__` on a customer's channel."""
    from cti.sim.inbound import InboundFlow

    keys, on, app = _applicationmap()["cti-survey"]
    assert keys == InboundFlow.SURVEY_KEY == "*0" and on == "self"
    assert app == "Gosub(cti-survey-key,s,1)"
    key_ctx = _section(DIALPLAN, "cti-survey-key")
    mark = " ".join(key_ctx["exten"] + key_ctx["same"])
    assert "Set(SHARED(CTI_SURVEY_VIA,${BRIDGEPEER})=key)" in mark and mark.endswith("Hangup()")
    leg = _section(DIALPLAN, "cti-agent-leg")["exten"]
    assert [v.lstrip("> ") for v in leg] == ["s,1,Set(DYNAMIC_FEATURES=${ARG2})"]
    callback = _section(DIALPLAN, "callback-did")["same"]
    sets = [i for i, v in enumerate(callback) if "Set(DYNAMIC_FEATURES=cti-survey)" in v]
    dial = [i for i, v in enumerate(callback) if "Dial(PJSIP/${EXTEN}@${CTI_TRUNK}" in v]
    assert sets and dial and sets[0] < dial[0]
    text = DIALPLAN.read_text(encoding="utf-8")
    assert "__DYNAMIC_FEATURES" not in text  # a customer keying *0 would hang themselves up
    # outbound campaign calls have no survey: their legs get no ARG2
    outbound = text[text.index("[cti-outbound]") :]
    assert "^cti-survey" not in outbound
    # the survey reads the mark: agi_arg_4
    survey = _section(DIALPLAN, "cti-survey")["exten"]
    via = [line.split("AGI(")[1].rstrip(")").split(",")[4] for line in survey]
    assert via == ["${SHARED(CTI_SURVEY_VIA)}"] * 2
    # the built-in featuremap keys stay off (no t/T/h/H/k/K/w/W/x/X on the agent's Dial/Queue), so
    # the default disconnect `*` cannot swallow the *0 prefix
    agent_calls = r"(?:Dial\(PJSIP/\$\{CTI_PREFERRED\},[^,]+|Queue\(\$\{CTI_QUEUE\}),([A-Za-z]*)b\("
    options = re.findall(agent_calls, text)
    assert len(options) == 4  # [cti-queue] and [cti-outbound], Dial and Queue each
    for opts in options:
        assert not set(opts) & set("tThHkKwWxX"), opts


def test_modules_are_an_explicit_list_holding_everything_the_dialplan_uses() -> None:
    loaded = _loaded_modules()
    apps, funcs = _dialplan_uses()
    assert {"Queue", "Dial", "AGI", "MixMonitor", "Gosub", "ExecIf"} <= apps and {
        "CALLERID",
        "CHANNEL",
    } <= funcs
    for name in sorted(apps):
        assert name in APP_MODULE, f"dialplan application {name}: add its Asterisk 22 module to APP_MODULE"
        assert APP_MODULE[name] in loaded | {"core"}, f"{name} needs {APP_MODULE[name]} in modules.conf"
    for name in sorted(funcs):
        assert name in FUNC_MODULE, f"dialplan function {name}: add its Asterisk 22 module to FUNC_MODULE"
        assert FUNC_MODULE[name] in loaded, f"{name}() needs {FUNC_MODULE[name]} in modules.conf"
    for mod, needs in REQUIRES.items():
        if mod in loaded:
            assert set(needs) <= loaded, f"{mod} requires {set(needs) - loaded}"


def test_every_shipped_config_has_its_module_and_cdr_events_reach_the_manager() -> None:
    loaded = _loaded_modules()
    # PJSIP codecs, the prompts (sounds/zh/*.wav) and MixMonitor's .wav, the CDR backends
    assert {"codec_alaw.so", "codec_ulaw.so", "format_wav.so", "res_musiconhold.so"} <= loaded
    assert {"cdr_pgsql.so", "cdr_manager.so", "app_queue.so", "pbx_config.so"} <= loaded
    assert _section(CONF / "cdr.conf", "general")["enable"] == ["yes"]
    assert _section(CONF / "cdr_manager.conf", "general")["enabled"] == ["yes"]
    assert "cdr" in _section(CONF / "manager.conf", "cti")["read"][0].split(",")
    logger = _section(CONF / "logger.conf", "general")
    assert logger["queue_log"] == ["yes"]
    assert "console" in _section(CONF / "logger.conf", "logfiles")


def _entrypoint(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the container's entrypoint for real on temporary directories; `asterisk` is a stub that
    says how it was called."""
    etc, bin_ = tmp_path / "etc", tmp_path / "bin"
    etc.mkdir(parents=True)
    bin_.mkdir(parents=True)
    (bin_ / "asterisk").write_text('#!/bin/sh\necho "asterisk $*"\n')
    (bin_ / "asterisk").chmod(0o755)
    base = {"CTI_AMI_SECRET": "s1", "CARRIER_HOST": "203.0.113.7", "POSTGRES_PASSWORD": "pg"}
    full = {"PATH": f"{bin_}:/usr/bin:/bin", "CTI_SRC": str(ROOT), "ASTERISK_ETC": str(etc), **base, **env}
    p = subprocess.run(["sh", str(CONF / "docker" / "entrypoint.sh")], capture_output=True, text=True,
                       env=full, timeout=30)  # fmt: skip
    return p, etc


def test_the_carrier_port_is_a_setting_with_5060_as_default(tmp_path: Path) -> None:
    """Issue 10 (10): `contact = sip:@CARRIER_HOST@:5060` forced the carrier onto 5060."""
    p, etc = _entrypoint(tmp_path / "a", CARRIER_PORT="5080")
    assert p.returncode == 0 and p.stdout.strip() == "asterisk -f -vvv", p.stderr
    trunk = [
        items for name, items in _sections(etc / "pjsip.conf") if name == "trunk" and ("type", "aor") in items
    ]
    assert ("contact", "sip:203.0.113.7:5080") in trunk[0]
    p, etc = _entrypoint(tmp_path / "b")
    assert p.returncode == 0 and "contact = sip:203.0.113.7:5060" in (etc / "pjsip.conf").read_text()
    p, _ = _entrypoint(tmp_path / "c", CARRIER_PORT="50x0")
    assert p.returncode == 2 and "CARRIER_PORT must be a port number" in p.stderr


def test_compose_runs_cti_serve_with_an_environment_the_cti_accepts() -> None:
    """Issue 10 (9, 11): compose ran `cti agi` (no AMI listener, dispatcher, facts, peak mode), and
    its CTI_SPOOL_DIR stopped `cti serve`."""
    from cti.config import load_settings

    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    cti_service = compose.split("\n  cti:\n", 1)[1].split("\nvolumes:", 1)[0]
    assert re.search(r"exec cti serve\"", cti_service) and "cti agi" not in cti_service
    env_block = cti_service.split("environment:\n", 1)[1].split("\n    volumes:", 1)[0]
    env = {}
    for line in env_block.splitlines():
        key, _, value = line.strip().partition(": ")
        if key.startswith("CTI_"):
            env[key] = re.sub(r"\$\{[^}]+\}", "x", value).strip('"')
    s = load_settings(env=env)  # raises on a key the CTI does not know
    assert str(s.spool) == "/var/lib/cti/spool" and str(s.prompts.dir) == "/var/lib/asterisk/sounds/zh"
    asterisk = compose.split("\n  asterisk:\n", 1)[1].split("\n  cti:\n", 1)[0]
    assert "CTI_SPOOL_DIR: /var/lib/cti/spool" in asterisk  # the degraded script writes where the CTI reads
    assert "/var/lib/asterisk/sounds/zh:ro" in asterisk and "./sounds/zh" in asterisk


def test_applications_the_cti_originates_are_loaded() -> None:
    """AMI Originate with Application= runs an application no dialplan line names (the wallboard's
    ChanSpy): it must be loaded too, or the supervisor's phone rings into nothing."""
    loaded = _loaded_modules()
    apps = set()
    for path in (ROOT / "cti").rglob("*.py"):
        apps |= set(re.findall(r'"Application": "(\w+)"', path.read_text(encoding="utf-8")))
    assert "ChanSpy" in apps
    for name in sorted(apps):
        assert APP_MODULE.get(name) in loaded | {"core"}, f"{name} (originated by the CTI) needs its module"


def test_agents_phones_come_from_postgres_through_sorcery_realtime() -> None:
    """Decision 0306: res_pjsip's endpoint/auth/aor are pjsip.conf first (the trunk), then realtime
    families that extconfig.conf maps to res_config_pgsql tables db/080 creates; both modules load."""
    sorcery = _section(CONF / "sorcery.conf", "res_pjsip")
    ext = _section(CONF / "extconfig.conf", "settings")
    migration = (ROOT / "db" / "080_pjsip_realtime.sql").read_text(encoding="utf-8")
    for obj, table in (("endpoint", "ps_endpoints"), ("auth", "ps_auths"), ("aor", "ps_aors")):
        assert sorcery[obj] == [f"config,pjsip.conf,criteria=type={obj}", f"realtime,{table}"]
        assert [v.lstrip("> ") for v in ext[table]] == ["pgsql,general"]  # `=>` form
        assert f"CREATE TABLE {table} (" in migration
    pg = _section(CONF / "res_pgsql.conf", "general")
    cdr = _section(CONF / "cdr_pgsql.conf", "global")
    for k in ("hostname", "port", "dbname", "user", "password"):
        assert pg[k] == cdr[k], k  # the same database Asterisk already writes CDRs to
    assert {"res_config_pgsql.so", "res_sorcery_realtime.so"} <= _loaded_modules()
