"""Feature codes dialed on an agent's phone and the prompt each result plays (one place, so the
prompt builder can generate every file; names are relative to the sounds directory, no extension)."""

from __future__ import annotations

# dialplan [agents] extension -> operation (the `[cti-agent-feature]` extension it goes to).
# `*13N` pauses with reason N (1-based in policy breaks.pause_reasons); `*13` alone pauses for "break".
FEATURE_CODES: dict[str, str] = {
    "*11": "login",
    "*12": "logout",
    "*13": "pause",
    "*14": "unpause",
    "*15": "status",
}

# result code (cti.agents.decide) -> prompt. Chinese text for the prompt builder.
PROMPTS: dict[str, tuple[str, str]] = {
    "logged_in": ("cti/agent-logged-in", "已登录, 您已加入队列"),
    "logged_out": ("cti/agent-logged-out", "已退出队列"),
    "paused": ("cti/agent-paused", "已暂停接听"),
    "unpaused": ("cti/agent-unpaused", "已恢复接听"),
    "already_logged_in": ("cti/agent-already-logged-in", "您已经登录"),
    "not_logged_in": ("cti/agent-not-logged-in", "您尚未登录"),
    "already_paused": ("cti/agent-already-paused", "您已经处于暂停状态"),
    "not_paused": ("cti/agent-not-paused", "您没有暂停"),
    "unknown_agent": ("cti/agent-unknown", "此分机不是坐席"),
    "unknown_reason": ("cti/agent-unknown-reason", "暂停原因无效"),
    "peak_mode": ("cti/agent-refused-peak", "电视广告高峰期间, 不允许暂停或退出"),
    "break_limit": ("cti/agent-refused-break-limit", "本组休息人数已满, 请稍后再试"),
    "pbx_error": ("cti/agent-pbx-error", "系统暂时无法处理, 请稍后再试"),
    "status_in": ("cti/agent-status-logged-in", "您已登录, 正在接听"),
    "status_paused": ("cti/agent-status-paused", "您已登录, 处于暂停状态"),
    "status_out": ("cti/agent-status-logged-out", "您未登录"),
}
# played by the dialplan itself when the CTI did not answer (no CTI_AGENT_RESULT)
CTI_UNAVAILABLE = ("cti/agent-cti-unavailable", "系统暂时不可用, 无法登录或暂停")


def prompt_for(code: str) -> str:
    return PROMPTS.get(code, PROMPTS["pbx_error"])[0]


def all_prompts() -> dict[str, str]:
    """Every prompt file this feature plays -> its Chinese text (for `cti prompts build`)."""
    out = {name: text for name, text in PROMPTS.values()}
    out[CTI_UNAVAILABLE[0]] = CTI_UNAVAILABLE[1]
    return out
