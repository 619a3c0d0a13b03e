"""The desk's tools of SPEC §8, built once per process by the composition root
(`container.py`): the SLA (waits, sweep), hand-over, joins, shifts, notes, canned
replies, search, the task board, order context and albums."""
from __future__ import annotations

from dataclasses import dataclass

from services.auto_assign import AutoAssign
from services.customers import Customers
from services.desk_tools import CannedReplies, Notes, Search
from services.handover import HandOver, Joins, Shifts
from services.orders import OrderContext
from services.scores import Scores
from services.sla import SlaPolicy, SlaSweep, Waits
from services.tasks import Tasks


@dataclass
class DeskTools:
    policy: SlaPolicy
    waits: Waits
    sweep: SlaSweep
    handover: HandOver
    joins: Joins
    shifts: Shifts
    notes: Notes
    replies: CannedReplies
    search: Search
    tasks: Tasks
    orders: OrderContext
    albums: object = None       # services/albums.py::Albums, set once the writer exists
    assign: object = None       # services/auto_assign.py::AutoAssign
    scores: object = None       # services/scores.py::Scores
    customers: object = None    # services/customers.py::Customers (one customer across channels)

    @classmethod
    def build(cls, deps) -> "DeskTools":
        """`deps`: the composition root (settings, db, jobs, users, locks, channels, out —
        the notices' port —, desk, claims, clock)."""
        settings, db, now = deps.settings, deps.db, (lambda: deps.clock())
        policy = SlaPolicy(settings.sla_remind_minutes, settings.sla_takeback_minutes,
                           settings.hours)
        waits = Waits(db, policy)
        common = dict(clock=now)
        assign = AutoAssign(db, deps.claims, deps.locks, deps.out, deps.desk,
                            shared_chat_id=settings.chat_new_message,
                            log_chat_id=settings.channel_log, on_claim=waits.rearm, **common)
        scores = Scores(settings, db, deps.jobs, deps.locks, deps.claims, deps.channels, deps.out,
                        shared_chat_id=settings.chat_new_message, **common)
        tasks = Tasks(db, deps.claims, deps.users, deps.out, now)
        tasks.on_done = scores.after_task_done
        return cls(
            assign=assign, scores=scores, customers=Customers(db, settings.phone_default_region),
            policy=policy, waits=waits,
            sweep=SlaSweep(db, deps.jobs, deps.locks, deps.out, deps.desk, policy,
                           shared_chat_id=settings.chat_new_message,
                           log_chat_id=settings.channel_log, **common),
            handover=HandOver(db, deps.claims, deps.users, deps.out, waits,
                              log_chat_id=settings.channel_log, **common),
            joins=Joins(db, deps.claims, deps.out, log_chat_id=settings.channel_log, **common),
            shifts=Shifts(db, deps.out, shared_chat_id=settings.chat_new_message, **common),
            notes=Notes(db, now), replies=CannedReplies(db, now), search=Search(db),
            tasks=tasks,
            orders=OrderContext(db, deps.jobs, deps.channels, now))
