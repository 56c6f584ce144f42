"""Queue membership and phone reachability: QueueAdd/Remove/Pause/Penalty/Reset.

Responses use Asterisk 22's exact messages (transcript b-agent-management);
the events (QueueMemberAdded/Removed/Pause/Penalty, the ``_pause_`` and
``_avail`` pseudo devices, PeerStatus/ContactStatus) follow b, f3 and
n-phone-offline-online. Pure (virtual clock only).
"""
from __future__ import annotations

from .model import Member, Queue
from .telephony import Telephony

__all__ = ["Agents", "ast_true"]


def ast_true(value: str | None) -> bool:
    """Asterisk's ``ast_true``: yes, true, y, t, 1, on."""
    return (value or "").strip().lower() in ("yes", "true", "y", "t", "1", "on")


class Agents(Telephony):
    """Membership management on top of the call flows."""

    def _queues_for(self, queue: str | None) -> list[Queue]:
        if queue:
            found = self.queues.get(queue)
            return [found] if found else []
        return list(self.queues.values())

    def queue_add(
        self, queue: str, interface: str, *, member_name: str | None = None,
        state_interface: str | None = None, penalty: int = 0, paused: bool = False,
        reason: str = "", wrapuptime: int = 0,
    ) -> tuple[bool, str]:
        """QueueAdd: a dynamic member. Returns ``(ok, message)``."""
        q = self.queues.get(queue)
        if q is None:
            return False, "Unable to add interface to queue: No such queue"
        if interface in q.members:
            return False, "Unable to add interface: Already there"
        phone = self.phones_by_iface.get(state_interface or interface)
        now = self.now_int()
        member = Member(q, interface, member_name or (phone.name if phone else interface),
                        state_interface or interface, True, penalty=penalty, paused=paused,
                        paused_reason=reason if paused else "", login_time=now,
                        last_pause=now if paused else 0, wrapuptime=wrapuptime)
        q.members[interface] = member
        member.last_sent = self._member_key(member)
        self.set_device(f"Queue:{q.name}_pause_{interface}", "INUSE" if paused else "NOT_INUSE")
        self.emit("QueueMemberAdded", "agent", self.member_block(member))
        self._avail(q)
        self._poll_waiting(q)  # rung at the callers' next poll, like an unpause
        self._settle()
        return True, "Added interface to queue"

    def queue_remove(self, queue: str, interface: str) -> tuple[bool, str]:
        """QueueRemove (dynamic members only)."""
        q = self.queues.get(queue)
        if q is None:
            return False, "Unable to remove interface from queue: No such queue"
        member = q.members.get(interface)
        if member is None:
            return False, "Unable to remove interface: Not there"
        if not member.dynamic:
            return False, "Member not dynamic"
        del q.members[interface]
        self.emit("QueueMemberRemoved", "agent", self.member_block(member))
        self._avail(q)
        return True, "Removed interface from queue"

    def queue_pause(self, interface: str, paused: bool, queue: str | None = None,
                    reason: str = "") -> tuple[bool, str]:
        """QueuePause in one queue, or (no ``queue``) in every queue of the member."""
        members = [q.members[interface] for q in self._queues_for(queue)
                   if interface in q.members]
        if not members:
            return False, "Interface not found"
        now = self.now_int()
        for member in members:
            member.paused = paused
            member.paused_reason = reason if paused else ""
            if paused:
                member.last_pause = now
            member.last_sent = self._member_key(member)
            self.set_device(f"Queue:{member.queue.name}_pause_{interface}",
                            "INUSE" if paused else "NOT_INUSE")
            self._avail(member.queue)
            self.emit("QueueMemberPause", "agent", self.member_block(member))
            if not paused:
                self._poll_waiting(member.queue)
        self._settle()
        return True, ("Interface paused successfully" if paused
                      else "Interface unpaused successfully")

    def queue_penalty(self, interface: str, penalty: int,
                      queue: str | None = None) -> tuple[bool, str]:
        """QueuePenalty in one queue or all of the member's queues."""
        members = [q.members[interface] for q in self._queues_for(queue)
                   if interface in q.members]
        if not members or penalty < 0:
            return False, "Invalid interface, queuename or penalty"
        for member in members:
            member.penalty = penalty
            self.emit("QueueMemberPenalty", "agent", self.member_block(member))
        return True, "Interface penalty set successfully"

    def queue_reset(self, queue: str | None = None) -> tuple[bool, str]:
        """QueueReset: zero the statistics of one or every queue."""
        queues = self._queues_for(queue)
        if queue and not queues:
            return False, "Invalid queue name"
        for q in queues:
            q.completed = q.abandoned = q.completed_in_sl = q.holdtime = q.talktime = 0
            for member in q.members.values():
                member.calls_taken = 0
                member.last_call = 0
        return True, "Queue stats reset successfully"

    def set_reachable(self, ext: str, reachable: bool) -> None:
        """Plug or unplug an agent's phone (qualify result; n-phone-offline-online)."""
        phone = self.phones[ext]
        if phone.reachable == reachable:
            return
        phone.reachable = reachable
        word = "Reachable" if reachable else "Unreachable"
        self.emit("PeerStatus", "system", [("ChannelType", "PJSIP"), ("Peer", phone.interface),
                                           ("PeerStatus", word)])
        contact = [("URI", f"sip:{ext}@127.0.0.1:{5070 + int(ext) % 1000}"),
                   ("ContactStatus", word), ("AOR", ext), ("EndpointName", ext),
                   ("RoundtripUsec", "1502" if reachable else "0")]
        if not reachable:
            self.emit("ContactStatus", "system", contact)
        self._phone_dsc(phone)
        self._members_update(phone)
        if reachable:
            self.emit("ContactStatus", "system", contact)
        self._phone_ext(phone)
        self._settle()
