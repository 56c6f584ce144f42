"""Everything that differs between the Asterisk versions pbxis speaks to, in one place.

Layer 0: standard library only, no logic beyond constants. The AMI vocabulary
(header names, status codes, the words they map to) that the digest reads
through ``pbxis.model``, and the version facts the commands and the client act
on. Recorded in the lab on Debian's Asterisk 22.10 (AMI 11.0.0,
shared/ami-transcripts) and Asterisk 16.28 (AMI 5.0.4,
tests/harness/transcripts16, whose README lists every difference seen).
Header-name tuples list alternatives, first present wins, so an older spelling
is one more entry here; a behaviour that differs gets a named constant here and
a comment where it is used.

Differences between 16 and 22 that need no code (the digest gives the same
events on both): the greeting (``Asterisk Call Manager/5.0.4`` / ``11.0.0``);
16's QueueMemberPause repeats PausedReason as ``Reason``; HangupRequest carries
``Cause`` on 16, Hangup/HangupRequest/SoftHangupRequest ``TechCause`` on 22;
CoreSettings lacks CoreProcessedCalls/SoundsSearchCustomDir on 16; the order in
which one change's DeviceStateChange, ExtensionStatus, QueueMemberStatus and
QueueCallerLeave arrive varies (it varies from call to call on 22 too).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "DEVICE_STATES",
    "MEMBER_STATUSES",
    "ORIGINATE_REASONS",
    "MEMBER_EVENT_IFACE",
    "MEMBER_EVENT_NAME",
    "MEMBER_LIST_IFACE",
    "MEMBER_LIST_NAME",
    "APP_DATA",
    "BRIDGE_ID",
    "QUEUE_APP",
    "QUEUE_LEG_APP",
    "DOWN_STATE",
    "UP_STATE",
    "UNKNOWN_IDS",
    "UNSET_VAR",
    "RECORDING_VARS",
    "CALL_UNIQUEID",
    "FILTER_WHITELIST",
    "FILTER_EXCLUDE",
    "FILTER_LEAK_LIMIT",
    "FALLBACK_EVENT_MASK",
    "PAUSE_REASON_AFTER_ADD",
    "BRIDGE_WAIT",
]

# --------------------------------------------------------------------------
# AMI vocabulary (the same names on 16 and 22; 13-21 use them too)
# --------------------------------------------------------------------------


#: ``DeviceStateChange State`` / ``DEVICE_STATE()`` / ``DeviceStateList`` words
#: -> extensionStatus words (API.md §4). INVALID (no such device) reads as offline.
DEVICE_STATES: Mapping[str, str] = {
    "NOT_INUSE": "not_inuse",
    "INUSE": "inuse",
    "BUSY": "busy",
    "INVALID": "unavailable",
    "UNAVAILABLE": "unavailable",
    "RINGING": "ringing",
    "RINGINUSE": "ringinuse",
    "ONHOLD": "onhold",
    "UNKNOWN": "unknown",
}

#: ``Status`` of QueueMember / QueueMemberStatus (ast_device_state codes,
#: asterisk-22-notes.md "Member Status codes") -> queueMemberStatus words.
MEMBER_STATUSES: Mapping[str, str] = {
    "0": "unknown",
    "1": "not_inuse",
    "2": "inuse",
    "3": "busy",
    "4": "unavailable",  # AST_DEVICE_INVALID
    "5": "unavailable",
    "6": "ringing",
    "7": "ringinuse",
    "8": "onhold",
}

#: ``OriginateResponse Reason`` (an AST_CONTROL code) -> words. Observed on 22:
#: 0 (no such endpoint / unreachable: fails at once), 3 (no answer), 4 (answered).
ORIGINATE_REASONS: Mapping[str, str] = {
    "0": "failed: no such endpoint, or the endpoint is unreachable",
    "1": "hung up",
    "3": "no answer",
    "5": "busy",
    "8": "congestion",
}

#: Member interface in QueueMemberStatus/Added/Removed/Pause/Penalty, AgentCalled,
#: AgentConnect, AgentComplete (12+: Interface; 1.8-11 QueueMemberStatus: Location).
MEMBER_EVENT_IFACE = ("Interface", "Location")
MEMBER_EVENT_NAME = ("MemberName", "Name")
#: The same in QueueStatus's QueueMember list items (Name/Location on every version).
MEMBER_LIST_IFACE = ("Location", "Interface")
MEMBER_LIST_NAME = ("Name", "MemberName")
#: CoreShowChannel says ApplicationData/BridgeId, Status says Data/BridgeID.
APP_DATA = ("ApplicationData", "Data")
BRIDGE_ID = ("BridgeId", "BridgeID")
#: Application of a caller waiting/talking in a queue, and of the agent's leg.
QUEUE_APP = "Queue"
QUEUE_LEG_APP = "AppQueue"
#: ChannelState values (0 Down, 4 Ring, 5 Ringing, 6 Up) that the digest tests.
DOWN_STATE = "0"
UP_STATE = "6"
#: How ``Status ... Variables:`` reports a variable the channel does not have
#: (live Asterisk 22: ``Variable: QUEUENAME=(null)`` on an originated call).
UNSET_VAR = "(null)"
#: Caller-id values that mean "not known".
UNKNOWN_IDS = frozenset({"", "<unknown>"})
#: Channel variables that hold a call's recording (MixMonitor sets the first).
RECORDING_VARS: tuple[str, ...] = ("MIXMONITOR_FILENAME",)
#: AgentComplete's call id: the caller channel's Uniqueid. Asterisk 16 sends
#: AgentComplete without the caller's fields when the caller's Hangup came
#: first (1 of 48 in transcripts16/k-busy.ami; also after a Park in the middle
#: of the answer); then the agent leg's Linkedid names the call: the queue
#: created that leg from the caller, so it carries the caller's Uniqueid (in
#: every AgentComplete recorded on 16 and 22 that has both).
CALL_UNIQUEID = ("Uniqueid", "DestLinkedid")

# --------------------------------------------------------------------------
# Behaviour that differs (16 vs 22)
# --------------------------------------------------------------------------

#: The server-side ``Filter`` whitelist, in the legacy regex form (matched
#: against the whole event text) that 16 and 22 both apply. Asterisk 22's
#: ``MatchCriteria: name(<event>)`` form is answered ``Success`` by 16 and NOT
#: applied: 16 reads only ``Filter:``, and every event still arrives
#: (transcripts16/l3-filter-matchcriteria.ami).
FILTER_WHITELIST = "^Event: ({names})[[:space:]]"

#: An exclusion in the same legacy form: events named ``name`` with a header
#: line starting with ``line`` (a regex-escaped literal) are not sent, even
#: when the whitelist lets their name through.
FILTER_EXCLUDE = "!^Event: {name}[[:space:]].*[[:space:]]{line}"

#: A Filter that Asterisk accepted but does not apply must not go unnoticed:
#: once every Filter of a session is acknowledged, this many events the parser
#: then skips as unwanted (which the whitelist should have stopped) make pbxis
#: fall back to the ``Events`` class mask. A few, not one, so that a stray event
#: some version sends regardless cannot cost the narrow filter.
FILTER_LEAK_LIMIT = 3

#: Event classes pbxis needs when the manager user may not use ``Filter`` (no
#: ``system`` write permission, on 16 and 22 alike) or the Filter is ignored.
FALLBACK_EVENT_MASK = "agent,call,system"

#: QueueAdd's ``Reason`` (why a member added paused is paused) is a 22
#: parameter that 16 does not know: 16 ignores it, and QueueMemberAdded and
#: QueueStatus show an empty PausedReason (transcripts16/b-agent-management.ami).
#: So a paused add with a reason is followed by a QueuePause that carries it
#: (on 22 it repeats what is already set: no pbxis event).
PAUSE_REASON_AFTER_ADD = True

#: Asterisk 16 reports the agent's device INUSE (and AgentConnect) before it
#: bridges the two legs of a queue call, 22 within milliseconds. A Park in that
#: gap parks the caller but leaves the agent's leg alone in the queue's bridge,
#: never hung up. ``park_and_announce`` waits up to this many seconds for the
#: model to see both legs bridged (a call that is bridged already costs nothing).
BRIDGE_WAIT = 3.0
