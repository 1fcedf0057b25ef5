"""Which channel a notice goes by: Zalo OA message, then ZNS, then SMS.

The plan is decided fresh each time a notice is claimed, from what is known about the
citizen and from the channels already tried for this notice (a channel that failed is not
tried again; a channel that may have taken the notice ends the plan, so a notice never
goes out by two channels). Each step carries the reason it was chosen or skipped, which
is stored on the notice for staff to read.

A one-time code (kind ``otp``) never goes by OA message: it must reach whoever holds the
phone, not an OA user who once claimed the number. ZNS is only for Vietnamese mobiles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain.phones import normalize_phone

# Kinds that only make sense on Zalo (they carry buttons to answer): no SMS fallback...
ZALO_ONLY_KINDS = frozenset({"result_check", "rating_request"})
# ...unless the notice carries a signed link to the citizen page, where it is answered.
SMS_WITH_LINK_KINDS = frozenset({"result_check"})
# Kinds that must reach whoever holds the phone now (a one-time code): never by OA
# message, even to an OA user subscribed for the number; ZNS or SMS only.
PHONE_ONLY_KINDS = frozenset({"otp"})
# Kinds someone is waiting for right now (a one-time code): never held back by quiet hours.
NEVER_QUIET_KINDS = frozenset({"otp"})
# "Your notices now go to Zalo" (gateway.trust.subscriptions): by OA message only to the
# OA user the notice names (the one who was subscribed before), never to the phone's
# (new) subscriber; never by ZNS (no template says it); else by SMS to the phone.
NAMED_USER_ONLY_KINDS = frozenset({"channel_moved"})
NO_ZNS_KINDS = frozenset({"channel_moved"})


@dataclass(frozen=True, slots=True)
class ZaloContact:
    """The OA user a notice could go to, as the gateway knows them."""

    user_id: str
    follows: bool
    last_interaction_at: datetime | None
    # The citizen asked for notices on Zalo for the notice's phone number, or the notice
    # answers something they started on the OA (a report): either way they expect it there.
    wants_zalo: bool


@dataclass(frozen=True, slots=True)
class Step:
    """One channel to try, and why."""

    channel: str  # "oa", "zns" or "sms"
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The channels to try in order; ``skipped`` explains the ones left out."""

    steps: tuple[Step, ...]
    skipped: tuple[str, ...]

    def describe(self) -> str:
        return "; ".join([*self.skipped, *(f"{s.channel}: {s.reason}" for s in self.steps)])


def plan_channels(
    kind: str,
    *,
    phone_e164: str | None,
    contact: ZaloContact | None,
    zns_template: str | None,
    failed: Mapping[str, str],
    now: datetime,
    window_days: int,
    has_link: bool = False,
) -> Plan:
    """The channels to try for one notice now, leaving out the ones that ``failed`` before
    (``failed`` maps each to why, as the route should say it). ``has_link``: the notice
    carries a signed link to the citizen page (then a result check may go by SMS).

    Attempts that may have reached the citizen are the caller's business (a ZNS attempt
    is asked again with the same tracking id; an OA attempt is not repeated).
    """
    skipped: list[str] = []
    steps: list[Step] = []
    if kind in PHONE_ONLY_KINDS:
        skipped.append("oa: not sent by OA message (it must reach the phone itself)")
    elif "oa" in failed:
        skipped.append(f"oa: {failed['oa']}")
    elif contact is None:
        skipped.append("oa: no Zalo user linked to this number")
    elif not contact.wants_zalo:
        skipped.append("oa: the citizen has not asked for Zalo notices")
    elif not contact.follows:
        skipped.append("oa: the citizen does not follow the OA")
    elif contact.last_interaction_at is None or (
        now - contact.last_interaction_at >= timedelta(days=window_days)
    ):
        skipped.append(f"oa: no interaction in the last {window_days} days")
    else:
        seen = f"{contact.last_interaction_at:%Y-%m-%d}"
        steps.append(Step("oa", f"follows the OA, last interaction {seen}"))

    if kind in NO_ZNS_KINDS:
        skipped.append(f"zns: {kind} is not sent by ZNS")
    elif "zns" in failed:
        skipped.append(f"zns: {failed['zns']}")
    elif zns_template is None:
        skipped.append(f"zns: no template configured for {kind}")
    elif phone_e164 is None:
        skipped.append("zns: no phone number")
    elif not normalize_phone(phone_e164).ok:
        skipped.append("zns: not a Vietnamese mobile number")
    else:
        steps.append(Step("zns", f"template {zns_template}"))

    if kind in ZALO_ONLY_KINDS and not (has_link and kind in SMS_WITH_LINK_KINDS):
        skipped.append("sms: not sent by SMS (answered with Zalo buttons)")
    elif "sms" in failed:
        skipped.append(f"sms: {failed['sms']}")
    elif phone_e164 is None:
        skipped.append("sms: no phone number")
    else:
        steps.append(Step("sms", "fallback" if steps else "no Zalo channel available"))
    return Plan(tuple(steps), tuple(skipped))
