"""Read-only AMI actions over the simulated PBX: the list actions and friends.

Byte shapes copied from shared/ami-transcripts/a-initial-state.ami
(QueueStatus, QueueSummary, ExtensionStateList, ExtensionState,
CoreShowChannels, Status, DeviceStateList, CoreSettings, CoreStatus).
Pure functions of the PBX state; the caller holds ``pbx.lock``.
"""
from __future__ import annotations

import re
import time
from collections.abc import Sequence

from .frames import (
    AMI_VERSION,
    ASTERISK_VERSION,
    DEVICE_TO_EXTENSION,
    list_complete,
    list_item,
    response,
)
from .model import Channel
from .pbx import SimulatedPbx

__all__ = [
    "queue_status", "queue_summary", "device_state_list", "extension_state_list",
    "extension_state", "core_show_channels", "channel_status", "bridge_list", "bridge_info",
    "core_settings", "core_status", "getvar", "cli",
]


def _list(start_message: str, aid: str | None, items: list[bytes], complete: str,
          extra: Sequence[tuple[str, str]] = ()) -> list[bytes]:
    head = response("Success", aid, [("EventList", "start"), ("Message", start_message)])
    return [head, *items, list_complete(complete, aid, len(items), extra)]


def queue_status(pbx: SimulatedPbx, aid: str | None, queue: str = "",
                 member: str = "") -> list[bytes]:
    """QueueStatus: QueueParams, QueueMember (filtered by ``member``), QueueEntry."""
    items: list[bytes] = []
    now = pbx.sched.now
    for q in pbx.queues.values():
        if queue and q.name.lower() != queue.lower():
            continue
        perf = (100.0 * q.completed_in_sl / q.completed) if q.completed else 0.0
        total = q.completed + q.abandoned
        perf2 = (100.0 * q.completed_in_sl / total) if total and q.servicelevel else 0.0
        items.append(list_item("QueueParams", aid, [
            ("Queue", q.name), ("Max", str(q.maxlen)), ("Strategy", q.strategy),
            ("Calls", str(len(q.entries))), ("Holdtime", str(q.holdtime)),
            ("TalkTime", str(q.talktime)), ("Completed", str(q.completed)),
            ("Abandoned", str(q.abandoned)), ("ServiceLevel", str(q.servicelevel)),
            ("ServicelevelPerf", f"{perf:.1f}"), ("ServicelevelPerf2", f"{perf2:.1f}"),
            ("Weight", str(q.weight))], id_last=True))
        for m in q.members.values():
            if member and member not in (m.interface, m.name):
                continue
            items.append(list_item("QueueMember", aid, pbx.member_block(m, event=False),
                                   id_last=True))
        for pos, qc in enumerate(q.entries, 1):
            ch = qc.caller
            items.append(list_item("QueueEntry", aid, [
                ("Queue", q.name), ("Position", str(pos)), ("Channel", ch.name),
                ("Uniqueid", ch.uniqueid), ("CallerIDNum", ch.caller_num),
                ("CallerIDName", ch.caller_name),
                ("ConnectedLineNum", ch.connected_num.strip("<>")),
                ("ConnectedLineName", ch.connected_name.strip("<>")),
                ("Wait", str(int(now - qc.joined))), ("Priority", "0")], id_last=True))
    return _list("Queue status will follow", aid, items, "QueueStatusComplete")


def queue_summary(pbx: SimulatedPbx, aid: str | None, queue: str = "") -> list[bytes]:
    """QueueSummary: LoggedIn, Available, Callers, HoldTime, TalkTime, LongestHoldTime."""
    items: list[bytes] = []
    for q in pbx.queues.values():
        if queue and q.name.lower() != queue.lower():
            continue
        logged = avail = 0
        for m in q.members.values():
            state = pbx.member_device_state(m)
            if state not in ("UNAVAILABLE", "INVALID"):
                logged += 1
                if state in ("NOT_INUSE", "UNKNOWN") and not m.paused:
                    avail += 1
        longest = int(pbx.sched.now - q.entries[0].joined) if q.entries else 0
        items.append(list_item("QueueSummary", aid, [
            ("Queue", q.name), ("LoggedIn", str(logged)), ("Available", str(avail)),
            ("Callers", str(len(q.entries))), ("HoldTime", str(q.holdtime)),
            ("TalkTime", str(q.talktime)), ("LongestHoldTime", str(longest))], id_last=True))
    return _list("Queue summary will follow", aid, items, "QueueSummaryComplete")


def device_state_list(pbx: SimulatedPbx, aid: str | None) -> list[bytes]:
    items = [list_item("DeviceStateChange", aid, [("Device", dev), ("State", state)])
             for dev, state in pbx.devices.items()]
    return _list("Device State Changes will follow", aid, items, "DeviceStateListComplete")


def _ext_status(pbx: SimulatedPbx, exten: str) -> tuple[str, int, str]:
    phone = pbx.phones.get(exten)
    if phone is None:
        return "", -1, "Unknown"
    code, text = DEVICE_TO_EXTENSION[phone.device_state]
    return phone.interface, code, text


def extension_state_list(pbx: SimulatedPbx, aid: str | None) -> list[bytes]:
    items = []
    for ext in pbx.phones:
        hint, code, text = _ext_status(pbx, ext)
        items.append(list_item("ExtensionStatus", aid, [
            ("Exten", ext), ("Context", "default"), ("Hint", hint), ("Status", str(code)),
            ("StatusText", text)]))
    return _list("Extension Statuses will follow", aid, items, "ExtensionStateListComplete")


def extension_state(pbx: SimulatedPbx, aid: str | None, exten: str,
                    context: str) -> bytes:
    hint, code, text = _ext_status(pbx, exten)
    return response("Success", aid, [
        ("Message", "Extension Status"), ("Exten", exten), ("Context", context or "default"),
        ("Hint", hint), ("Status", str(code)), ("StatusText", text)])


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _channels(pbx: SimulatedPbx) -> list[Channel]:
    return list(reversed(list(pbx.channels.values())))


def core_show_channels(pbx: SimulatedPbx, aid: str | None) -> list[bytes]:
    items = [list_item("CoreShowChannel", aid, ch.block() + [
        ("Application", ch.application), ("ApplicationData", ch.app_data),
        ("Duration", _hms(pbx.sched.now - ch.created)),
        ("BridgeId", ch.bridge.uniqueid if ch.bridge else "")]) for ch in _channels(pbx)]
    return _list("Channels will follow", aid, items, "CoreShowChannelsComplete")


def channel_status(pbx: SimulatedPbx, aid: str | None,
                   channel: str = "", variables: str = "") -> list[bytes] | None:
    """Status (all channels, or one; None when that channel does not exist).

    ``variables`` ("QUEUENAME,BRIDGEPEER"): each item also carries one
    ``Variable: NAME=value`` header per name, after ``Seconds`` (manager.c
    action_status).
    """
    chans = _channels(pbx)
    if channel:
        chans = [ch for ch in chans if ch.name == channel]
        if not chans:
            return None
    names = [n.strip() for n in variables.split(",") if n.strip()]
    items = []
    for ch in chans:
        extra = [("Variable", f"{n}={getvar(pbx, ch.name, n)[1]}") for n in names]
        items.append(list_item("Status", aid, ch.block() + [
            ("Type", "PJSIP"), ("DNID", ch.dnid),
            ("EffectiveConnectedLineNum", ch.connected_num),
            ("EffectiveConnectedLineName", ch.connected_name), ("TimeToHangup", "0"),
            ("BridgeID", ch.bridge.uniqueid if ch.bridge else ""),
            ("Application", ch.application), ("Data", ch.app_data),
            ("Nativeformats", "(ulaw)"), ("Readformat", "ulaw"), ("Readtrans", ""),
            ("Writeformat", "ulaw"), ("Writetrans", ""), ("Callgroup", "0"),
            ("Pickupgroup", "0"), ("Seconds", str(int(pbx.sched.now - ch.created)))] + extra,
            id_last=True, privilege="Call"))
    return _list("Channel status will follow", aid, items, "StatusComplete",
                 [("Items", str(len(items)))])


def bridge_list(pbx: SimulatedPbx, aid: str | None) -> list[bytes]:
    items = [list_item("BridgeListItem", aid, br.block()) for br in pbx.bridges.values()
             if br.channels]
    return _list("Bridge listing will follow", aid, items, "BridgeListComplete")


def bridge_info(pbx: SimulatedPbx, aid: str | None, bridge_id: str) -> list[bytes] | None:
    bridge = pbx.bridges.get(bridge_id)
    if bridge is None:
        return None
    items = [list_item("BridgeInfoChannel", aid, ch.block()) for ch in bridge.channels]
    return _list("Bridge channel listing will follow", aid, items, "BridgeInfoComplete",
                 bridge.block())


def core_settings(aid: str | None) -> bytes:
    return response("Success", aid, [
        ("AMIversion", AMI_VERSION), ("AsteriskVersion", ASTERISK_VERSION),
        ("SystemName", ""), ("CoreMaxCalls", "0"), ("CoreMaxLoadAvg", "0.000000"),
        ("CoreRunUser", ""), ("CoreRunGroup", ""), ("CoreMaxFilehandles", "0"),
        ("CoreRealTimeEnabled", "No"), ("CoreCDRenabled", "Yes"), ("CoreHTTPenabled", "No"),
        ("SoundsSearchCustomDir", "No")])


def core_status(pbx: SimulatedPbx, aid: str | None) -> bytes:
    boot = time.gmtime(pbx.start_time + pbx.booted_at)
    return response("Success", aid, [
        ("CoreStartupDate", time.strftime("%Y-%m-%d", boot)),
        ("CoreStartupTime", time.strftime("%H:%M:%S", boot)),
        ("CoreReloadDate", time.strftime("%Y-%m-%d", boot)),
        ("CoreReloadTime", time.strftime("%H:%M:%S", boot)),
        ("CoreCurrentCalls", str(len(pbx.channels))),
        ("CoreProcessedCalls", str(pbx.calls_processed))])


def getvar(pbx: SimulatedPbx, channel: str, variable: str) -> tuple[bool, str]:
    """Getvar: dialplan functions DEVICE_STATE, EXTENSION_STATE, QUEUE_* and channel vars."""
    if not variable:
        return False, "No variable specified"
    ch = None
    if channel:
        ch = pbx.channels.get(channel)
        if ch is None:
            return False, "No such channel"
    name, _, arg = variable.partition("(")
    arg = arg[:-1] if arg.endswith(")") else arg
    fn = name.upper()
    if fn == "DEVICE_STATE":
        return True, pbx.devices.get(arg, "UNKNOWN") if arg not in pbx.phones_by_iface \
            else pbx.phones_by_iface[arg].device_state
    if fn == "EXTENSION_STATE":
        phone = pbx.phones.get(arg.split("@")[0])
        return True, phone.device_state if phone else "UNKNOWN"
    if fn == "QUEUE_WAITING_COUNT":
        q = pbx.queues.get(arg)
        return True, str(len(q.entries)) if q else "0"
    if fn == "QUEUE_MEMBER_COUNT":
        q = pbx.queues.get(arg)
        return True, str(len(q.members)) if q else "0"
    if fn == "QUEUE_EXISTS":
        return True, "1" if arg in pbx.queues else "0"
    if fn == "CHANNELS":
        # func_channel.c CHANNELS([regex]): the live channel names matching an
        # extended regular expression, separated by spaces (pbxis asks
        # CHANNELS(^PJSIP/1001-) to find an agent's calls in progress).
        try:
            pattern = re.compile(arg) if arg else None
        except re.error:
            return False, "Error"
        names = [c.name for c in pbx.channels.values() if pattern is None or pattern.search(c.name)]
        return True, " ".join(names)
    if ch is not None:
        builtin = {"CHANNEL": ch.name, "UNIQUEID": ch.uniqueid, "CALLERID(num)": ch.caller_num,
                   "CALLERID(name)": ch.caller_name, "CONTEXT": ch.context, "EXTEN": ch.exten,
                   "BRIDGEPEER": ch.variables.get("BRIDGEPEER", "")}
        if variable in builtin:
            return True, builtin[variable]
        return True, ch.variables.get(variable, "")
    return True, ""


def cli(pbx: SimulatedPbx, command: str) -> tuple[bool, list[str]]:
    """A few CLI commands for ``Action: Command``; ``(known, output lines)``."""
    words = command.split()
    text = " ".join(words).lower()
    if text == "core show version":
        return True, [f"Asterisk {ASTERISK_VERSION} built by pbxis-sim @ simulator on a "
                      "x86_64 running Linux (pbxis simulated PBX)"]
    if text.startswith("core show uptime"):
        up = pbx.uptime
        return True, [f"System uptime: {_words(up)}", f"Last reload: {_words(up)}"]
    if text.startswith("core show channels"):
        lines = ["Channel              Location             State   Application(Data)"]
        for ch in _channels(pbx):
            lines.append(f"{ch.name:<20} {ch.exten + '@' + ch.context:<20} "
                         f"{'Up' if ch.state == 6 else 'Ring':<7} {ch.application}"
                         f"({ch.app_data})")
        lines.append(f"{len(pbx.channels)} active channels")
        lines.append(f"{pbx.calls_processed} calls processed")
        return True, lines
    if text.startswith("queue show"):
        lines = []
        wanted = words[2] if len(words) > 2 else ""
        for q in pbx.queues.values():
            if wanted and q.name != wanted:
                continue
            lines.append(f"{q.name} has {len(q.entries)} calls (max unlimited) in "
                         f"'{q.strategy}' strategy ({q.holdtime}s holdtime, {q.talktime}s "
                         f"talktime), W:{q.weight}, C:{q.completed}, A:{q.abandoned}, "
                         f"SL:0.0%, SL2:0.0% within {q.servicelevel}s")
            lines.append("   Members: ")
            for m in q.members.values():
                state = pbx.member_device_state(m).replace("_", " ").title()
                paused = f" (paused:{m.paused_reason})" if m.paused else ""
                lines.append(f"      {m.name} ({m.interface}) (ringinuse disabled)"
                             f"{' (dynamic)' if m.dynamic else ''}{paused} ({state}) "
                             f"has taken {m.calls_taken or 'no'} calls")
            if q.entries:
                lines.append("   Callers: ")
                for pos, qc in enumerate(q.entries, 1):
                    lines.append(f"      {pos}. {qc.caller.name} "
                                 f"(wait: {_hms(pbx.sched.now - qc.joined)[3:]}, prio: 0)")
            else:
                lines.append("   No Callers")
            lines.append("")
        return True, lines
    return False, [f"No such command '{command}' (type 'core show help {command}' for other "
                   "possible commands)"]


def _words(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    parts.append(f"{secs} second{'s' if secs != 1 else ''}")
    return ", ".join(parts)
