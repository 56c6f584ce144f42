"""The sans-I/O AMI codec: real Asterisk 22 bytes in, frames out; actions out.

Every parsing test feeds the bytes whole, one byte at a time and with a
trailing partial frame (``feed_all_ways``, h11's ``tr()``); hypothesis adds
random cuttings and hostile bytes.
"""
from __future__ import annotations

import json
import re
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from functools import cache
from typing import NamedTuple

import pytest
from helpers import (
    BANNER,
    TRAILING,
    TRANSCRIPTS,
    cut,
    feed_all_ways,
    feed_bytewise,
    feed_pieces,
    feed_random,
    feed_whole,
    snap,
    transcript,
    transcript_names,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbxis.protocol import (
    DEFAULT_MAX_FRAME,
    Banner,
    Message,
    Oversize,
    Parser,
    encode_action,
)

# --- the transcripts against their README -----------------------------------

BIG = {"k-busy.ami", "l1-busy-eventmask.ami", "l2-busy-filter.ami"}
NAMES = transcript_names()
SMALL = [n for n in NAMES if n not in BIG]

#: The README undercounts by one the VarSet that follows the stray blank line
#: in these files (``...\r\n\r\n\r\nEvent: VarSet``): its counter did not see an
#: event in a block starting with ``\r\n``. The raw bytes hold 132 (h1) and 263
#: (h2) ``Event: VarSet`` lines; the parser reports them all.
README_ERRATA: dict[str, Counter] = {
    "h1-redirect.ami": Counter({"VarSet": 1}),
    "h2-park.ami": Counter({"VarSet": 1}),
}

#: Actions the recording got no response to (README: j4's own ``core stop``).
NO_RESPONSE = {("j4-core-stop-gracefully.ami", "stop-1")}


class Facts(NamedTuple):
    size: int
    events: int
    by_name: Counter
    responses: Counter


@cache
def readme_facts() -> dict[str, Facts]:
    text = (TRANSCRIPTS / "README.md").read_text()
    table = {
        m.group(1): (int(m.group(2)), int(m.group(3)))
        for m in re.finditer(r"^\| `([^`]+\.ami)` \| (\d+) \| (\d+) \|", text, re.M)
    }
    facts = {}
    for section in re.split(r"^## ", text, flags=re.M):
        m = re.match(r"(\S+\.ami):", section)
        if not m:
            continue
        name = m.group(1)
        names = re.search(r"^Events by name:(.*)$", section, re.M)
        responses = re.search(r"responses: (.*)\.$", section, re.M)
        assert names and responses, f"README section {name} changed shape"
        facts[name] = Facts(
            table[name][0],
            table[name][1],
            Counter({k: int(v) for k, v in re.findall(r"(\w+) (\d+)", names.group(1))}),
            Counter({k: int(v) for k, v in re.findall(r"(\w+) x(\d+)", responses.group(1))}),
        )
    return facts


@cache
def whole_snap(name: str) -> list[tuple]:
    return snap(feed_whole(transcript(name)))


def test_all_transcripts_are_listed() -> None:
    if not NAMES:
        transcript("a-initial-state.ami")  # skips (fails under CI) with the path
    assert set(NAMES) == set(readme_facts())
    assert len(NAMES) == 23


@pytest.mark.parametrize("name", NAMES)
def test_transcript_frames_match_readme(name: str) -> None:
    data = transcript(name)
    facts = readme_facts()[name]
    frames = feed_whole(data)

    assert len(data) == facts.size
    banner, messages = frames[0], frames[1:]
    assert banner == Banner("Asterisk Call Manager/11.0.0")
    assert isinstance(banner, Banner) and banner.is_ami and banner.version == "11.0.0"
    assert all(type(m) is Message for m in messages), "no Oversize/Truncated in real bytes"

    events = [m for m in messages if m.event is not None]
    responses = [m for m in messages if m.event is None]
    # An independent count from the raw bytes: every event's first line.
    assert len(events) == data.count(b"\nEvent: ")
    errata = README_ERRATA.get(name, Counter())
    assert len(events) == facts.events + sum(errata.values())
    assert Counter(m.event for m in events) == facts.by_name + errata
    assert Counter(m.response for m in responses) == facts.responses
    assert all(m.response for m in responses)


@pytest.mark.parametrize("name", NAMES)
def test_transcript_responses_follow_their_actions(name: str) -> None:
    """Cut at each recorded send offset: a response never precedes its action,
    and responses come in the order the actions were sent."""
    data = transcript(name)
    lines = (TRANSCRIPTS / name).with_suffix(".actions").read_text().splitlines()
    actions = [json.loads(line) for line in lines if line]
    parser = Parser()
    sent: list[str | None] = []
    answered: list[str | None] = []
    pos = 0
    for action in [*actions, None]:
        end = len(data) if action is None else action["offset"]
        frames = parser.feed(data[pos:end]) if end > pos else []
        pos = end
        for f in frames:
            if isinstance(f, Message) and f.event is None:
                assert f.action_id in sent, f"response {f!r} before its action"
                answered.append(f.action_id)
        if action is not None:
            sent.append(action["action_id"])
    assert parser.feed(b"") == []
    expected = [a for a in sent if (name, a) not in NO_RESPONSE]
    assert answered == expected


@pytest.mark.parametrize("name", SMALL)
def test_transcript_same_frames_every_way(name: str) -> None:
    data = transcript(name)
    thirds = cut(data, [len(data) // 3, 2 * len(data) // 3])
    frames = feed_all_ways(data, extra=[thirds])
    assert snap(frames) == whole_snap(name)
    for seed in range(3):
        assert snap(feed_random(data, seed)) == whole_snap(name)


@pytest.mark.parametrize("name", sorted(BIG))
def test_big_transcript_same_frames_in_reads(name: str) -> None:
    data = transcript(name)
    expected = whole_snap(name)
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    assert snap(feed_pieces(chunks)) == expected
    assert snap(feed_random(data, seed=1, max_piece=9000)) == expected
    # byte by byte on a slice (the whole file would take minutes)
    head = snap(feed_all_ways(data[:150_000]))
    assert head[-1][0] == "truncated"
    assert head[:-1] == expected[: len(head) - 1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_transcript_any_cutting_same_frames(data: st.DataObject) -> None:
    if not SMALL:
        transcript("a-initial-state.ami")
    name = data.draw(st.sampled_from(SMALL))
    raw = transcript(name)
    cuts = data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=60))
    assert snap(feed_pieces(cut(raw, cuts))) == whole_snap(name)


@pytest.mark.parametrize("name", ["j2-kill9.ami", "a-initial-state.ami", "h2-park.ami"])
@pytest.mark.parametrize("drop", [1, 2, 3, 4, 40])
def test_trailing_partial_frame_then_eof_is_truncated(name: str, drop: int) -> None:
    data = transcript(name)[:-drop]
    partial = data.rpartition(b"\r\n\r\n")[2]
    expected = whole_snap(name)[:-1] + [("truncated", len(partial))]
    assert snap(feed_whole(data)) == expected
    assert snap(feed_random(data, seed=drop)) == expected


def test_nothing_after_eof() -> None:
    parser = Parser()
    parser.feed(BANNER + b"Event: A\r\n")
    assert snap(parser.feed(b"")) == [("truncated", len(b"Event: A\r\n"))]
    assert parser.feed(b"Event: B\r\n\r\n") == []
    assert parser.feed(b"") == []


# --- framing ----------------------------------------------------------------


def messages(data: bytes, **kw: object) -> list[list[tuple[str, str]]]:
    """Header lists of the messages in ``data`` (checked every way)."""
    frames = feed_all_ways(data, **kw)
    return [f.headers for f in frames if isinstance(f, Message)]


def test_banner_has_no_blank_line_after_it() -> None:
    data = BANNER + b"Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n"
    frames = feed_all_ways(data)
    assert snap(frames) == [
        ("banner", "Asterisk Call Manager/11.0.0"),
        ("message", (("Response", "Success"), ("ActionID", "1"),
                     ("Message", "Authentication accepted"))),
    ]


def test_banner_alone_and_not_ami() -> None:
    assert snap(feed_all_ways(BANNER)) == [("banner", "Asterisk Call Manager/11.0.0")]
    frames = feed_all_ways(b"SSH-2.0-OpenSSH_9.6\r\n")
    assert isinstance(frames[0], Banner) and not frames[0].is_ami
    assert Banner("no version here").version == ""


def test_overlong_banner_is_cut_the_same_way_however_it_arrives() -> None:
    junk = b"x" * 5000 + b"\r\nmore junk\r\n\r\n" + b"Event: A\r\nK: v\r\n\r\n"
    expected = [("banner", "x" * 4096), ("message", (("Event", "A"), ("K", "v")))]
    assert snap(feed_all_ways(junk, bytewise=False, extra=[cut(junk, [100, 4097, 5001])])) \
        == expected
    assert snap(feed_random(junk, seed=5, max_piece=700)) == expected


CRLF_STREAM = (
    BANNER
    + b"Response: Success\r\nActionID: a-1\r\nMessage: Authentication accepted\r\n\r\n"
    + b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
    + b"Event: Hangup\r\nChannel: PJSIP/1001-00000001\r\nAccountCode: \r\nCause: 16\r\n\r\n"
)


def test_lf_only_peer_gives_the_same_frames_as_crlf() -> None:
    lf_stream = CRLF_STREAM.replace(b"\r\n", b"\n")
    assert snap(feed_all_ways(lf_stream)) == snap(feed_all_ways(CRLF_STREAM))
    assert len(messages(lf_stream)) == 3


def test_lf_only_peer_skip_by_name() -> None:
    # regression: the event name was cut at the first CR, which an LF peer never sends
    lf_stream = CRLF_STREAM.replace(b"\r\n", b"\n")
    got = messages(lf_stream, wanted={"Hangup"})
    assert [dict(h).get("Event") or dict(h)["Response"] for h in got] == ["Success", "Hangup"]


def test_repeated_headers_are_kept_in_order() -> None:
    data = BANNER + (
        b"Event: Newchannel\r\nChannel: PJSIP/1001-1\r\n"
        b"ChanVariable: FROM_DID=\r\nChanVariable: SIPURI=sip:42@10.0.0.1:5060\r\n\r\n"
        b"Response: Success\r\nActionID: 9\r\nVariable: a=1\r\nChannel: x\r\nVariable: b=2\r\n\r\n"
        b"Response: Success\r\nActionID: 10\r\nMessage: Command output follows\r\n"
        b"Output: Name/username   Host\r\nOutput: \r\nOutput: 1001/1001  127.0.0.1\r\n\r\n"
    )
    chan, var, out = [Message(h) for h in messages(data)]
    assert chan.getall("ChanVariable") == ["FROM_DID=", "SIPURI=sip:42@10.0.0.1:5060"]
    assert chan.get("ChanVariable") == "FROM_DID="
    assert var.getall("variable") == ["a=1", "b=2"]
    assert [k for k, _ in var] == ["Response", "ActionID", "Variable", "Channel", "Variable"]
    assert out.getall("Output") == ["Name/username   Host", "", "1001/1001  127.0.0.1"]


def test_testevent_double_state_and_empty_last_value_from_real_bytes() -> None:
    data = transcript("c-call-caller-hangup.ami")
    frames = feed_whole(data)
    change = next(f for f in frames if isinstance(f, Message) and f.get("State") == "CallIDChange")
    assert change.getall("State") == ["CallIDChange", "CallIDChange"]
    assert change.headers[-1] == ("PriorCallID", "")  # ends in "PriorCallID: \r\n\r\n"


def test_case_insensitive_lookup() -> None:
    (headers,) = messages(BANNER + b"Event: Hangup\r\nActionID: x1\r\nCause-txt: Normal\r\n\r\n")
    msg = Message(headers)
    assert msg.get("actionid") == msg.get("ACTIONID") == msg["ActionId"] == "x1"
    assert msg.event == "Hangup" and msg.response is None and msg.action_id == "x1"
    assert "cause-TXT" in msg and "Nope" not in msg and 42 not in msg
    assert msg.get("Nope") is None and msg.get("Nope", "d") == "d"
    with pytest.raises(KeyError):
        msg["Nope"]
    assert len(msg) == 3


def test_last_header_with_empty_value_is_kept() -> None:
    # panoramisk drops it (it strips the block, then needs ": ")
    data = BANNER + b"Event: QueueMemberStatus\r\nPaused: 0\r\nPausedReason: \r\n\r\n"
    (headers,) = messages(data)
    assert headers[-1] == ("PausedReason", "")
    msg = Message(headers)
    assert msg.get("PausedReason") == "" and "PausedReason" in msg
    assert messages(BANNER + b"Event: X\r\nA: \r\nB:\r\n\r\n") == [
        [("Event", "X"), ("A", ""), ("B", "")]
    ]


def test_utf8_name_split_across_reads() -> None:
    name = "Zoë Ünal 张伟 🎧".encode()
    data = BANNER + b"Event: Newchannel\r\nCallerIDName: " + name + b"\r\n\r\n"
    split_inside = data.index(b"\xc3\xab") + 1  # between the two bytes of "ë"
    assert b"".join(cut(data, [split_inside])) == data
    frames = feed_all_ways(data, extra=[cut(data, [split_inside]), cut(data, [len(data) - 8])])
    assert frames[1].get("CallerIDName") == "Zoë Ünal 张伟 🎧"


def test_non_utf8_bytes_are_replaced_never_raised() -> None:
    data = BANNER + b"Event: Ne\xffchannel\r\nCallerIDName: Jos\xe9 \xc3\r\nX\x80: \xfe\r\n\r\n"
    frames = feed_all_ways(data)
    msg = frames[1]
    assert msg.event == "Ne\ufffdchannel"
    assert msg.get("CallerIDName") == "Jos\ufffd \ufffd"
    assert msg.get("X\ufffd") == "\ufffd"
    banner = feed_all_ways(b"Asterisk \xff\xfe/1\r\n")[0]
    assert banner.line == "Asterisk \ufffd\ufffd/1"


def test_stray_blank_lines() -> None:
    data = (
        BANNER
        + b"\r\n\r\n\r\nEvent: A\r\nK: 1\r\n\r\n\r\n"  # h1/h2 have one before a VarSet
        + b"\r\n\r\n\r\n\r\nEvent: B\r\nK: 2\r\n\r\n\n\r\n\r\n"
    )
    assert messages(data) == [[("Event", "A"), ("K", "1")], [("Event", "B"), ("K", "2")]]
    # blank lines before EOF are not a truncated frame
    for tail in (b"\r\n", b"\r\n\r", b"\n"):
        frames = snap(feed_whole(BANNER + b"Event: A\r\n\r\n" + tail))
        assert frames[-1] == ("message", (("Event", "A"),))


def test_park_response_bare_lf() -> None:
    data = transcript("h2-park.ami")
    parks = [f for f in feed_whole(data) if isinstance(f, Message) and f.get("ActionID", "")
             .startswith("park-")]
    assert [p.get("Message") for p in parks] == ["Park successful", "Park successful"]
    assert [p.headers for p in parks][0] == [
        ("Response", "Success"), ("ActionID", "park-1"), ("Message", "Park successful")
    ]
    # the bare LF in the middle of a frame too
    mid = BANNER + b"Response: Success\r\nMessage: Park successful\n\r\nActionID: p\r\n\r\n"
    assert messages(mid) == [
        [("Response", "Success"), ("Message", "Park successful"), ("ActionID", "p")]
    ]


def test_pre14_command_response_follows() -> None:
    data = BANNER + (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: cmd-1\r\n"
        b"Asterisk 13.38.3 built by root @ pbx\n"
        b"  Name : 1001\n"
        b"\n"
        b"--END COMMAND--\r\n\r\n"
        # the first output line holds ": " (sip show peer): still output, not a header
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: cmd-2\r\n"
        b"  * Name       : 1001\n  Secret       : <Set>\n--END COMMAND--\r\n\r\n"
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: cmd-3\r\n--END COMMAND--\r\n\r\n"
    )
    one, two, three = [Message(h) for h in messages(data)]
    assert one.response == "Follows" and one.action_id == "cmd-1"
    assert one.getall("Output") == ["Asterisk 13.38.3 built by root @ pbx", "  Name : 1001"]
    assert two.action_id == "cmd-2"
    assert two.getall("Output") == ["  * Name       : 1001", "  Secret       : <Set>"]
    assert three.headers == [("Response", "Follows"), ("Privilege", "Command"),
                             ("ActionID", "cmd-3")]


def test_14plus_command_output_lines() -> None:
    data = BANNER + (
        b"Response: Success\r\nActionID: c\r\nMessage: Command output follows\r\n"
        b"Output: Name/username             Host\r\n"
        b"Output: PJSIP/1001: Avail  ok: yes\r\n\r\n"
    )
    (headers,) = messages(data)
    assert Message(headers).getall("output") == [
        "Name/username             Host", "PJSIP/1001: Avail  ok: yes"
    ]


def test_lines_without_colon_space_are_not_lost() -> None:
    data = BANNER + b"Event: X\r\nA:1\r\njunk line\r\nB: 2\r\n\r\n"
    assert messages(data) == [[("Event", "X"), ("A", "1"), ("Output", "junk line"), ("B", "2")]]


# --- size limit -------------------------------------------------------------


def test_endless_frame_is_reported_once_with_bounded_memory() -> None:
    chunk_size = 64 * 1024
    filler = b"y" * chunk_size
    parser = Parser()
    limit = parser.max_frame + 3 + chunk_size
    frames = parser.feed(BANNER + b"Event: Endless\r\nData: ")
    tracemalloc.start()
    try:
        for _ in range(50 * 1024 * 1024 // chunk_size):
            frames += parser.feed(filler)
            assert sum(map(len, parser._chunks)) <= limit  # what the parser holds
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * limit + (1 << 20)
    assert [type(f) for f in frames] == [Banner, Oversize]
    assert frames[1].size > parser.max_frame
    # resynchronised: the next good frame parses
    more = parser.feed(b"\r\n\r\nEvent: Good\r\nK: v\r\n\r\n")
    assert snap(more) == [("message", (("Event", "Good"), ("K", "v")))]
    assert parser.feed(b"") == []


def test_oversize_then_resync_every_way() -> None:
    big = b"Event: Big\r\n" + b"A: " + b"x" * 300 + b"\r\n\r\n"
    data = BANNER + big + b"Event: Good\r\n\r\n" + big + big + b"Response: Success\r\n\r\n"
    frames = feed_all_ways(data, max_frame=64)
    assert snap(frames) == [
        ("banner", "Asterisk Call Manager/11.0.0"),
        ("oversize",),
        ("message", (("Event", "Good"),)),
        ("oversize",),
        ("oversize",),
        ("message", (("Response", "Success"),)),
    ]


@pytest.mark.parametrize("wanted", [None, {"Good"}])
def test_size_limit_is_exact_however_the_bytes_arrive(wanted: set | None) -> None:
    # a frame of exactly max_frame bytes passes, one byte more does not,
    # also when the last bytes of the buffer are half a terminator
    head = b"Event: Big\r\nA: "
    exact = head + b"x" * (64 - len(head))
    over = exact + b"x"
    assert len(exact) == 64
    data = BANNER + exact + b"\r\n\r\n" + over + b"\r\n\r\n" + b"Event: Good\r\n\r\n"
    frames = feed_all_ways(data, max_frame=64, wanted=wanted)
    kinds = [s[0] for s in snap(frames)]
    if wanted is None:
        assert kinds == ["banner", "message", "oversize", "message"]
    else:  # an oversize unwanted event is still reported, whatever the cutting
        assert kinds == ["banner", "oversize", "message"]


def test_max_frame_floor() -> None:
    with pytest.raises(ValueError):
        Parser(max_frame=63)
    assert DEFAULT_MAX_FRAME >= 64 * 1024


# --- skip by name -----------------------------------------------------------


def test_skip_by_name() -> None:
    data = BANNER + (
        b"Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n"
        b"Event: VarSet\r\nVariable: A\r\nValue: 1\r\n\r\n"
        b"Event: Hangup\r\nChannel: PJSIP/1001-1\r\n\r\n"
        b"Event: QueueMember\r\nQueue: sales\r\nActionID: qs-1\r\n\r\n"
        b"Event: TestEvent\r\n\r\n"
        b"Event: Hangup\r\n\r\n"
        b"Response: Error\r\nMessage: Permission denied\r\n\r\n"
    )
    parser = Parser(wanted={"Hangup"})
    got = parser.feed(data) + parser.feed(b"")
    assert [(m.event, m.response) for m in got[1:]] == [
        (None, "Success"), ("Hangup", None), ("QueueMember", None), ("Hangup", None),
        (None, "Error"),
    ]
    assert parser.skipped == 2
    assert snap(feed_all_ways(data, wanted={"Hangup"})) == snap(got)
    # switching the filter off mid-stream
    parser = Parser(wanted=())
    assert len(parser.feed(data)) == 1 + 3
    parser.set_wanted(None)
    assert len(parser.feed(b"Event: VarSet\r\n\r\n")) == 1


def test_ignore_skips_marked_events_of_a_wanted_name() -> None:
    """``ignore``: a DeviceStateChange of a queue's pseudo device is skipped like an
    unwanted name (whichever path the parser takes), an agent's is parsed."""
    ignore = {"DeviceStateChange": "Device: Queue:"}
    data = BANNER + (
        b"Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: Queue:sales_avail\r\n"
        b"State: INUSE\r\n\r\n"
        b"Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: PJSIP/1001\r\n"
        b"State: INUSE\r\n\r\n"
        b"Event: DeviceStateChange\r\nDevice: Queue:support\r\nState: INUSE\r\n\r\n"
        # the mark further down is not the device: parsed
        b"Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: PJSIP/1002\r\n"
        b"Note: x\r\nDevice: Queue:x\r\n\r\n"
        # an answer to one of our actions is never skipped
        b"Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: Queue:y\r\n"
        b"ActionID: 7\r\n\r\n"
        b"Event: Hangup\r\nPrivilege: call,all\r\nDevice: Queue:z\r\n\r\n"
        b"Event: VarSet\r\n\r\n"
    )
    wanted = {"DeviceStateChange", "Hangup"}
    parser = Parser(wanted=wanted, ignore=ignore)
    got = parser.feed(data) + parser.feed(b"")
    devices = [(m.event, m.get("Device")) for m in got[1:]]
    assert devices == [
        ("DeviceStateChange", "PJSIP/1001"),
        ("DeviceStateChange", "PJSIP/1002"),
        ("DeviceStateChange", "Queue:y"),
        ("Hangup", "Queue:z"),
    ]
    assert parser.skipped == 3
    assert snap(feed_all_ways(data, wanted=wanted, ignore=ignore)) == snap(got)
    lf = data.replace(b"\r\n", b"\n")
    assert [h for h in messages(lf, wanted=wanted, ignore=ignore)] == [
        m.headers for m in got[1:]
    ]
    # without wanted nothing is skipped
    assert len(Parser(ignore=ignore).feed(data)) == 1 + 7


DIGEST = {
    "QueueMemberStatus", "QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause",
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled",
    "AgentConnect", "AgentComplete", "AgentRingNoAnswer", "DeviceStateChange",
    "ExtensionStatus", "Newchannel", "Hangup", "DialBegin", "DialEnd", "BridgeEnter",
    "BridgeLeave", "OriginateResponse", "Newstate",
}


@pytest.mark.parametrize("name", [*SMALL, "l2-busy-filter.ami"])
def test_skip_by_name_equals_filtering_the_full_parse(name: str) -> None:
    data = transcript(name)
    full = whole_snap(name)

    def kept(s: tuple) -> bool:
        if s[0] != "message":
            return True
        h = dict(reversed(s[1]))
        return "Event" not in h or h["Event"] in DIGEST or "ActionID" in h

    parser = Parser(wanted=DIGEST)
    got = parser.feed(data) + parser.feed(b"")
    assert snap(got) == [s for s in full if kept(s)]
    assert parser.skipped == len(full) - len(got)
    assert snap(feed_random(data, seed=7, wanted=DIGEST)) == snap(got)


# --- hostile bytes ------------------------------------------------------------

TOKENS = [
    b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"\n\n", b": ", b":", b" ", b"Event: ", b"Response: ",
    b"ActionID: ", b"Hangup", b"VarSet", b"Follows", b"--END COMMAND--", BANNER,
    b"Asterisk Call Manager/11.0.0\n", b"\xc3\xa9", b"\xe2\x82", b"\xff", b"\x00", b"Output: x",
    b"V: " + b"v" * 29,
]
_pieces = st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=12)), max_size=80)
hostile = st.one_of(_pieces.map(b"".join), _pieces.map(lambda p: BANNER + b"".join(p)))


@settings(max_examples=1000, deadline=None)
@given(
    data=hostile,
    cuts=st.lists(st.integers(1, 1000), max_size=20),
    max_frame=st.sampled_from([64, 80, DEFAULT_MAX_FRAME]),
    wanted=st.sampled_from([None, frozenset({"Hangup"})]),
)
def test_hostile_bytes_never_raise_and_cutting_does_not_matter(
    data: bytes, cuts: list[int], max_frame: int, wanted: frozenset | None
) -> None:
    kw = {"max_frame": max_frame, "wanted": wanted}
    whole = snap(feed_whole(data, **kw))
    assert snap(feed_pieces(cut(data, cuts), **kw)) == whole
    assert snap(feed_bytewise(data, **kw)) == whole


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(1, 3000), max_size=10))
def test_random_bytes_after_a_banner(data: bytes, cuts: list[int]) -> None:
    whole = snap(feed_whole(BANNER + data))
    assert snap(feed_pieces(cut(BANNER + data, cuts))) == whole


# --- encoding actions ---------------------------------------------------------


def test_encode_action_bytes() -> None:
    raw = encode_action(
        "QueueAdd",
        "pbx-7",
        {"Queue": "sales", "Interface": "PJSIP/1003", "Penalty": 1, "Paused": True,
         "Reason": "training", "Variable": ["a=1", "b=2"], "Skipped": None},
    )
    assert raw == (
        b"Action: QueueAdd\r\nActionID: pbx-7\r\nQueue: sales\r\nInterface: PJSIP/1003\r\n"
        b"Penalty: 1\r\nPaused: true\r\nReason: training\r\nVariable: a=1\r\nVariable: b=2\r\n\r\n"
    )
    assert encode_action("Ping") == b"Action: Ping\r\n\r\n"
    assert encode_action("QueuePause", headers=[("Paused", False), ("Paused", 0.5)]) == (
        b"Action: QueuePause\r\nPaused: false\r\nPaused: 0.5\r\n\r\n"
    )


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b", "\r\n\r\nAction: Hangup"])
def test_encode_rejects_cr_lf_nul(bad: str) -> None:
    with pytest.raises(ValueError):
        encode_action("Originate", "id", {"Channel": bad})
    with pytest.raises(ValueError):
        encode_action("Originate", "id", {"Variable": ["ok=1", bad]})
    with pytest.raises(ValueError):
        encode_action("Originate", bad)
    with pytest.raises(ValueError):
        encode_action(bad)
    with pytest.raises(ValueError):
        encode_action("Originate", "id", {bad: "x"})


@pytest.mark.parametrize("name", ["", "Bad:Name", "Bad Name", "ActionID", "actionid",
                                  "Action", "ACTION"])
def test_encode_rejects_bad_header_names(name: str) -> None:
    with pytest.raises(ValueError):
        encode_action("Ping", "id", {name: "x"})


@pytest.mark.parametrize("name", ["", "Que ueStatus", "Queue:Status"])
def test_encode_rejects_bad_action_names(name: str) -> None:
    with pytest.raises(ValueError):
        encode_action(name)


def test_encode_rejects_other_value_types() -> None:
    with pytest.raises(TypeError):
        encode_action("Ping", "id", {"X": {"a": 1}})  # type: ignore[dict-item]


_no_crlf_nul = st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",))
header_names = st.text(
    st.characters(blacklist_characters="\r\n\x00: ", blacklist_categories=("Cs",)), min_size=1
).filter(lambda n: n.lower() not in ("action", "actionid"))
header_values = st.one_of(
    st.text(_no_crlf_nul), st.integers(), st.booleans(),
    st.lists(st.text(_no_crlf_nul), min_size=1, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    action=header_names,
    action_id=st.one_of(st.none(), st.text(_no_crlf_nul)),
    headers=st.lists(st.tuples(header_names, header_values), max_size=8),
)
def test_encode_parse_round_trip(
    action: str, action_id: str | None, headers: Sequence[tuple[str, object]]
) -> None:
    raw = encode_action(action, action_id, headers)  # type: ignore[arg-type]
    expected = [("Action", action)]
    if action_id is not None:
        expected.append(("ActionID", action_id))
    for k, v in headers:
        values = v if isinstance(v, list) else [v]
        for item in values:
            text = ("true" if item else "false") if isinstance(item, bool) else str(item)
            expected.append((k, text))
    frames = feed_pieces([BANNER, raw])
    assert snap(frames) == [("banner", "Asterisk Call Manager/11.0.0"),
                            ("message", tuple(expected))]
    # and the same when the action is split anywhere
    assert snap(feed_pieces([BANNER, *cut(raw, [len(raw) // 2, len(raw) - 2])])) == snap(frames)


def test_trailing_constant_is_a_partial_frame() -> None:
    assert b"\r\n\r\n" not in TRAILING


# --- lazy messages: get() searches the text, and answers as the split would ---------


def _reference_headers(body: str) -> list[tuple[str, str]]:
    """The parser's headers for one CRLF frame as it computed them before
    messages became lazy (split at once; the slow path for odd lines)."""
    parts = [line.partition(": ") for line in body.split("\r\n")]
    headers = [(name, value) for name, found, value in parts if found]
    if (
        len(headers) == len(parts)
        and not body.endswith("\n")
        and "\n\r\n" not in body
        and not (body.endswith("--END COMMAND--") and "\n" in parts[-1][0] + parts[-1][2])
    ):
        return headers
    headers = []
    for line in body.split("\r\n"):
        if line.endswith("--END COMMAND--"):
            for out in line[: -len("--END COMMAND--")].split("\n"):
                if out:
                    headers.append(("Output", out))
            continue
        name, found, value = line.partition(":")
        if found and name and " " not in name:
            headers.append((name, value.strip(" \t\r\n")))
        elif line.strip():
            headers.append(("Output", line.rstrip("\r\n")))
    return headers


_LAZY_NAMES = ["Event", "Channel", "channel", "CHANNEL", "Queue", "Output", "output",
               "ActionID", "Foo Bar", "X-Y", "Missing"]
_lazy_values = st.lists(
    st.sampled_from(["a", "b", " ", "\t", ":", ": ", "\n", "-", "--END COMMAND--"]), max_size=6
).map("".join)
_lazy_lines = st.one_of(
    st.tuples(st.sampled_from(_LAZY_NAMES), _lazy_values).map(lambda kv: f"{kv[0]}: {kv[1]}"),
    st.sampled_from(["junk", "Channel:x", "Channel:", "channel:y", ": x", " Channel: x",
                     "Output:z", "a\nb", "x--END COMMAND--", "Queue:q: r"]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_lazy_lines, max_size=6), wanted=st.booleans())
def test_lazy_get_answers_as_the_split_does(lines: list[str], wanted: bool) -> None:
    body = "\r\n".join(["Event: Test", *lines])
    data = BANNER + body.encode() + b"\r\n\r\n"
    expected = _reference_headers(body)

    def parse() -> Message:
        parser = Parser(wanted=["Test"] if wanted else None)
        (message,) = [f for f in parser.feed(data) if isinstance(f, Message)]
        return message

    assert parse().headers == expected
    reference = Message(expected)
    for name in [*_LAZY_NAMES, "Chan nel", ""]:
        lazy = parse()
        assert lazy.get(name) == reference.get(name), name
        assert lazy.get(name) == reference.get(name), name  # and once split
        assert lazy.headers == expected
