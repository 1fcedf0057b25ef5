"""The OA chatbot: one inbound event in, the replies and what they concern out.

The bot decides and the gateway does: it reads and records through
:class:`bot.ports.Services` and answers with :mod:`bot.replies`, never with HTTP or
Zalo JSON. A conversation is a small state kept between messages (``step`` and what
the step is about), saved through the services with a TTL; a citizen who comes back
after it expired starts from the menu.

Dossier facts are shown only to the dossier's owner, at a level of proof
(``gateway.trust.proofs``). A number shared with Zalo's ``request_user_info`` is only a
*claim* (the form's fields can be typed): a one-time code is sent to it, and the number
is *proven* once the user types the code back. Reading a dossier's details takes the
proven number being the dossier's (``proven_phone``), a one-time code sent to the
dossier's own phone (``otp``; the bot never shows a digit of that number), or the last
four digits of it (``last_four``) unless so many wrong proofs were made for the dossier
or its phone, by anyone, that only a code is accepted. Acting (a report, a rating, a
result-check answer, attaching the dossier to a handoff) takes ``proven_phone`` or
``otp``; a user who proved with the last four digits is offered a code. Subscribing
(notices for the proven number on the OA instead of SMS) takes the proven number; a
subscribed user's menu offers to stop instead (``#unsubscribe``, or typed "hủy đăng ký",
"dừng nhận"), and bot texts show at most the last two digits of a number.
Until a proof the bot answers the same whether or not the code exists, so a guessed code
reveals nothing (a code "sent" for an unknown dossier is answered like one sent for a
known dossier: the bot counts the tries itself). Wrong proofs are counted per user, per
dossier and per phone; the user's count locks lookups for the window; asking about more
than ``max_codes`` distinct codes in the window is refused as enumeration. Each proof,
refusal and attempt is logged with the user id and the dossier code, never a phone
number or a one-time code. The state keeps the proof of each dossier
(``state["proofs"]``, the most recent last).

Prompts are strict. While a step waits for an answer (a dossier code, the proof digits,
a one-time code, 1 or 2, a score, a description, a comment, the shared phone), typed
text is read as that answer and nothing else: "5" at the "type the dossier code" prompt
is not the fifth menu choice. Text that does not answer the prompt gets the prompt again
(``reprompt``), with how to leave it; nothing is counted against the user for it. Only
three things leave a prompt: a tapped button (its payload is an explicit command), the
answer to a question a notice asked after the prompt, and a back word. The back words,
typed as the whole message and with or without diacritics, are "menu" (or "bắt đầu",
"trang chủ", "danh mục"), "hủy" (or "hủy bỏ", "thoát", "dừng lại") and "kết thúc"; "bỏ
qua" is one too, except where it answers the prompt (the description of a report, the
rating comment). At the proof prompt a new dossier code is also an answer: the user
corrects the code.

A rating asks two scores from 1 to 5, one after the other (the one-stop-shop rules:
"tiến độ, chất lượng tiếp nhận, giải quyết"): the progress (buttons ``#rate <code>
<n>``, also those of a rating request; a typed answer to a rating request is the
progress too), then the quality (``#rate_quality <code> <n>``), then an optional
comment. Each is recorded as it comes, so a citizen who leaves halfway keeps what they
gave.

While a conversation with hotline staff (a handoff) is open, every message goes to the
staff. The first forwarded message gets a short acknowledgement saying how to get back to
the bot, and the next ones only once ``HANDOFF_ACK_INTERVAL`` has passed since the last
acknowledgement, so a burst of messages gets one. The back words "kết thúc", "menu" and
"hủy" (or the "#end", "#menu" and "#cancel" buttons) close the handoff and show the menu.
A handoff carries the dossier it is about only if the user may act on it (proven number
or one-time code; the code of the button, of the current step, or else the last dossier
proven so); a code merely typed, or proven by its last four digits, is never attached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any, Final, Literal, Protocol

from bot.events import (
    AttachmentSent,
    ChatOpened,
    Followed,
    InboundEvent,
    InfoShared,
    TextSent,
    Unfollowed,
)
from bot.intents import (
    Command,
    match_intent,
    normalize,
    option_number,
    parse_payload,
    proof_digits,
    score_in,
)
from bot.ports import BotPolicy, Citizen, DossierFacts, ReportKind, ReportSource, Services
from bot.replies import AskPhone, Button, Reply, Text
from gateway.domain.codes import find_dossier_codes
from gateway.domain.phones import normalize_phone
from gateway.trust.proofs import may_act

__all__ = ["MENU", "Bot", "BotPolicy", "Outcome", "TextRenderer"]

log = logging.getLogger(__name__)

# The main menu, in the order of its numbers.
MENU: Final = ("lookup", "report", "subscribe", "rate", "human")
PROOF_DIGITS: Final = 4
# The digits of a one-time code.
CODE_DIGITS: Final = 6
# What a dossier question may be for without acting on the dossier: reading it.
READ_ONLY: Final = frozenset({"lookup"})
# Bot texts show at most this many last digits of a phone (the last four are a proof).
PHONE_TAIL: Final = 2
MIN_SCORE: Final = 1
MAX_SCORE: Final = 5
# A rating's two scores, asked in this order (the one-stop-shop
# rules: "tiến độ, chất lượng tiếp nhận, giải quyết"); the comment comes after them.
Aspect = Literal["progress", "quality"]
COMMENT_MAX_CHARS: Final = 1000
# Commands (typed as back words or tapped) that leave any step for the menu.
BACK: Final = frozenset({"menu", "cancel", "end"})
# At most one acknowledgement of forwarded messages per this interval (see the module doc).
HANDOFF_ACK_INTERVAL: Final = timedelta(minutes=10)
# Steps where "bỏ qua" answers the prompt instead of leaving it.
_SKIPPABLE_STEPS: Final = frozenset({"describe", "comment"})


class TextRenderer(Protocol):
    """Renders ``templates/<name>`` (``gateway.texts.Texts`` does)."""

    def render(self, name: str, **context: Any) -> str: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the bot did with one event.

    ``dossier_code``, ``report_id`` and ``handoff_id`` say what the citizen's message
    concerned, so it is stored with them; ``forwarded`` means the message went to
    hotline staff (an open handoff) instead of the bot; ``secret`` means the message was
    read as a proof (the last four digits of a phone, a one-time code), so it must not be
    kept as typed.
    """

    replies: tuple[Reply, ...] = ()
    dossier_code: str | None = None
    report_id: int | None = None
    handoff_id: int | None = None
    forwarded: bool = False
    secret: bool = False


class Bot:
    """Stateless between events: all conversation state goes through ``services``."""

    def __init__(
        self, services: Services, texts: TextRenderer, policy: BotPolicy, zone: tzinfo
    ) -> None:
        self.services = services
        self.texts = texts
        self.policy = policy
        self.zone = zone

    async def handle(self, event: InboundEvent) -> Outcome:
        """Answer one event of one user (events of a user come in order)."""
        if isinstance(event, Unfollowed):
            await self.services.set_following(event.user_id, False)
            await self.services.clear_state(event.user_id)
            return Outcome()
        citizen = await self.services.citizen(event.user_id)
        state = await self.services.load_state(event.user_id)
        turn = _Turn(self, citizen, state)
        await turn.run(event)
        if turn.state:
            await self.services.save_state(event.user_id, turn.state)
        elif state:
            await self.services.clear_state(event.user_id)
        return Outcome(
            tuple(turn.replies),
            turn.dossier_code,
            turn.report_id,
            turn.handoff_id,
            turn.forwarded,
            turn.secret,
        )


class _Turn:
    """One event's handling: the state as loaded, changed in place, and the replies."""

    def __init__(self, bot: Bot, citizen: Citizen, state: dict[str, Any]) -> None:
        self.bot = bot
        self.services = bot.services
        self.policy = bot.policy
        self.citizen = citizen
        self.user_id = citizen.user_id
        # "step" and its subject; "proofs" maps the dossiers proven in this conversation
        # to their proof (the most recent last).
        self.state: dict[str, Any] = dict(state)
        # The state as loaded: the progress score asked before a tapped quality button.
        self.loaded: dict[str, Any] = dict(state)
        self.at = datetime.min.replace(tzinfo=bot.zone)
        # The user's wrong proofs in the window, once one was counted in this turn.
        self.failures = 0
        self.replies: list[Reply] = []
        self.dossier_code: str | None = None
        self.report_id: int | None = None
        self.handoff_id: int | None = citizen.handoff_id
        self.forwarded = False
        # The text was read as a proof (digits of a phone, a one-time code).
        self.secret = False

    # --- replies --------------------------------------------------------------------------

    def say(self, template: str, buttons: tuple[Button, ...] = (), **context: Any) -> None:
        text = self.bot.texts.render(
            f"bot/{template}.txt.j2", hotline=self.policy.hotline, zone=self.bot.zone, **context
        )
        self.replies.append(Text(text, buttons))

    def button(self, command: Command) -> Button:
        title = self.bot.texts.render(
            "bot/button.txt.j2", command=command.name, number=command.number
        )
        return Button(title, command.payload)

    def menu_names(self) -> tuple[str, ...]:
        """The menu's commands: a subscribed user gets "unsubscribe" for "subscribe"."""
        if not self.citizen.subscribed:
            return MENU
        return tuple("unsubscribe" if name == "subscribe" else name for name in MENU)

    def menu(self, lead: str | None = None) -> None:
        names = self.menu_names()
        labels = [self.button(Command(name)).title for name in names]
        buttons = tuple(self.button(Command(name)) for name in names)
        self.say("menu", buttons, lead=lead, labels=labels)

    def set_step(self, step: str | None, **subject: Any) -> None:
        proofs = self.state.get("proofs", {})
        self.state = {"step": step, **subject} if step else {}
        if proofs:
            self.state["proofs"] = proofs

    # --- dispatch -------------------------------------------------------------------------

    async def run(self, event: InboundEvent) -> None:
        self.at = event.at
        if isinstance(event, Followed):
            await self.services.set_following(self.user_id, True)
            self.set_step(None)
            self.say("welcome")
            self.menu()
        elif isinstance(event, ChatOpened):
            # During a handoff the menu would not work (messages go to the staff).
            if not self.state.get("step") and self.handoff_id is None:
                self.say("welcome")
                self.menu()
        elif isinstance(event, InfoShared):
            await self.shared(event)
        elif isinstance(event, AttachmentSent):
            if self.handoff_id is not None:
                self.forward(event.at)
            else:
                self.menu(lead="text_only")
        elif isinstance(event, TextSent):
            await self.text(event.text, event.at)

    async def text(self, text: str, at: datetime) -> None:
        command = parse_payload(text)
        if self.handoff_id is not None:
            await self.in_handoff(text, command, at)
            return
        if command is not None:
            await self.command(command)
            return
        step = self.state.get("step")
        if step is not None:
            if await self.in_step(step, text):
                return
            if not find_dossier_codes(text) and await self.answer_question(text):
                return
            self.reprompt(step)
            return
        found = find_dossier_codes(text)
        if not found and await self.answer_question(text):
            return
        number = option_number(text)
        if number is not None and 1 <= number <= len(MENU):
            await self.command(Command(self.menu_names()[number - 1]))
            return
        intent = match_intent(text)
        if found:
            code = found[0].code
            then = "report" if intent == "report" else "rate" if intent == "rate" else "lookup"
            await self.about(code, then)
            return
        if intent is not None:
            await self.command(Command(intent))
            return
        self.menu(lead="not_understood")

    async def in_handoff(self, text: str, command: Command | None, at: datetime) -> None:
        """Forward the message to the staff, unless it is a back word (see the module doc)."""
        name = command.name if command is not None else match_intent(text, whole=True)
        if name in BACK:
            await self.services.close_handoff(self.user_id)
            self.handoff_id = None
            self.set_step(None)
            self.say("handoff_closed")
            self.menu()
            return
        self.forward(at)

    def forward(self, at: datetime) -> None:
        """Mark the message for the staff; acknowledge it unless one was just sent."""
        self.forwarded = True
        last = self.state.get("handoff_ack")
        if last is not None and at - datetime.fromisoformat(last) < HANDOFF_ACK_INTERVAL:
            return
        self.state["handoff_ack"] = at.isoformat()
        self.say("handoff_forwarded")

    async def command(self, command: Command) -> None:
        name, code = command.name, command.code
        if name in BACK or name == "skip":
            self.set_step(None)
            if name == "cancel":
                self.say("cancelled")
            self.menu()
        elif name == "human":
            await self.open_handoff(code or self.state.get("code"))
        elif name == "subscribe":
            await self.subscribe()
        elif name == "unsubscribe":
            await self.unsubscribe()
        elif name == "new_code":
            await self.new_phone_code()
        elif name == "otp":
            if code is None:
                self.set_step("code", then="lookup")
                self.say("ask_code", purpose="lookup")
            else:
                await self.send_dossier_code(code)
        elif name in ("received", "not_received"):
            if code is None:
                question = await self.services.pending_question(self.user_id)
                if question is None or question.kind != "result_check":
                    self.menu(lead="not_understood")
                    return
                code = question.dossier_code
            await self.result_check(code, received=name == "received")
        elif code is None:
            self.set_step("code", then=name)
            self.say("ask_code", purpose=name)
        elif name in ("rate", "rate_quality") and command.number is not None:
            await self.about(code, f"{name}:{command.number}")
        else:
            await self.about(code, name)

    async def in_step(self, step: str, text: str) -> bool:
        """Handle text that answers the current step (or leaves it); False if it does not."""
        intent = match_intent(text, whole=True)
        if intent in BACK or (intent == "skip" and step not in _SKIPPABLE_STEPS):
            await self.command(Command(intent))
            return True
        if step == "proof":
            found = find_dossier_codes(text)
            if found:  # the user corrects the code they asked about
                await self.about(found[0].code, self.state["then"])
                return True
            digits = proof_digits(text)
            if digits is None or not _proof_shaped(digits, code_sent="sent" in self.state):
                return False
            self.secret = True
            await self.check_proof(self.state["code"], digits, self.state["then"])
            return True
        if step == "phone_code":
            digits = proof_digits(text)
            if digits is None or len(digits) != CODE_DIGITS:
                return False
            self.secret = True
            await self.check_phone_code(digits)
            return True
        if step == "code":
            found = find_dossier_codes(text)
            if not found:
                return False
            await self.about(found[0].code, self.state["then"])
            return True
        if step == "kind":
            number = option_number(text)
            if number not in (1, 2):
                return False
            await self.about(self.state["code"], "report_false" if number == 1 else "report_other")
            return True
        if step == "describe":
            if not normalize(text):  # empty, or only emoji and punctuation
                return False
            skipped = intent == "skip"
            await self.open_report(
                self.state["code"], self.state["kind"], None if skipped else text, "zalo"
            )
            return True
        if step == "score":
            score = score_in(text)
            if score is None:
                return False
            await self.rate(self.state["code"], self.state.get("aspect", "progress"), score)
            return True
        if step == "comment":
            if not normalize(text):
                return False
            code = self.state["code"]
            self.set_step(None)
            if intent != "skip":
                comment = text.strip()[:COMMENT_MAX_CHARS]
                await self.services.record_rating(self.user_id, code, None, None, comment)
                self.dossier_code = code
            self.say("rating_comment_thanks")
            return True
        return False  # "share" waits for the shared phone, never for text

    def reprompt(self, step: str) -> None:
        """Ask again what the step waits for, and say how to leave it."""
        code = self.state.get("code")
        buttons: tuple[Button, ...] = ()
        if step == "kind" and code is not None:
            buttons = (
                self.button(Command("report_false", code)),
                self.button(Command("report_other", code)),
            )
        elif step == "score" and code is not None:
            buttons = self.score_buttons(code, self.state.get("aspect", "progress"))
        elif step == "proof" and code is not None:
            buttons = (self.button(Command("otp", code)),)
        elif step == "phone_code":
            buttons = (self.button(Command("new_code")),)
        self.say(
            "reprompt",
            buttons,
            step=step,
            code=code,
            purpose=self.state.get("then"),
            code_sent="sent" in self.state,
            aspect=self.state.get("aspect", "progress"),
        )
        if step in ("share", "proof"):
            self.ask_phone()

    def ask_phone(self) -> None:
        self.replies.append(
            AskPhone(
                self.bot.texts.render("bot/ask_phone_title.txt.j2"),
                self.bot.texts.render("bot/ask_phone_subtitle.txt.j2"),
            )
        )

    # --- ownership ------------------------------------------------------------------------

    async def about(self, code: str, then: str) -> None:
        """Do ``then`` about a dossier once the user is allowed to (see the module doc)."""
        if await self.refused(code):
            return
        dossier = await self.services.dossier(code)
        proof = self.proof_of(code, dossier)
        if dossier is not None and proof is not None:
            await self.proceed(dossier, then, proof)
            return
        phone = dossier.phone_e164 if dossier is not None else None
        code_only = await self.services.needs_code(code, phone)
        self.set_step("proof", code=code, then=then)
        self.say("ask_proof", (self.button(Command("otp", code)),), code=code, code_only=code_only)
        self.ask_phone()

    async def refused(self, code: str) -> bool:
        """Refuse a locked user, or one asking about too many codes; True if refused."""
        if await self.services.lookup_locked(self.user_id):
            log.warning(
                "dossier request refused: lookups locked",
                extra={"user": self.user_id, "dossier": code},
            )
            self.set_step(None)
            self.say("locked")
            return True
        asked = await self.services.lookup_code_asked(self.user_id, code)
        if asked > self.policy.max_codes:
            log.warning(
                "dossier request refused: too many codes",
                extra={"user": self.user_id, "dossier": code, "codes": asked},
            )
            self.set_step(None)
            self.say("too_many_codes")
            return True
        return False

    def proof_of(self, code: str, dossier: DossierFacts | None) -> str | None:
        """The user's best proof for the dossier: the proven number being the dossier's,
        else a proof made in this conversation (one-time code or last four digits)."""
        if dossier is None:
            return None
        phone = self.citizen.verified_phone
        if phone is not None and dossier.phone_e164 == phone:
            return "proven_phone"
        proof = self.state.get("proofs", {}).get(code)
        return proof if proof in ("otp", "last_four") else None

    def remember(self, code: str, proof: str) -> None:
        """Keep the dossier's proof (never weakened), as the most recently proven."""
        proofs: dict[str, str] = dict(self.state.get("proofs", {}))
        before = proofs.pop(code, None)
        proofs[code] = before if before is not None and may_act(before) else proof
        self.state["proofs"] = proofs

    def code_needed(self, code: str, then: str) -> None:
        """Acting needs a one-time code (or the proven number): offer one."""
        log.warning(
            "dossier action refused: a one-time code is needed",
            extra={"user": self.user_id, "dossier": code},
        )
        self.set_step("proof", code=code, then=then)
        self.say("code_needed", (self.button(Command("otp", code)),), code=code)
        self.ask_phone()

    async def check_proof(self, code: str, digits: str, then: str) -> None:
        if await self.services.lookup_locked(self.user_id):
            log.warning(
                "dossier request refused: lookups locked",
                extra={"user": self.user_id, "dossier": code},
            )
            self.set_step(None)
            self.say("locked")
            return
        dossier = await self.services.dossier(code)
        phone = dossier.phone_e164 if dossier is not None else None
        if len(digits) == CODE_DIGITS and "sent" in self.state:
            await self.check_dossier_code(code, digits, then, dossier)
            return
        if await self.services.needs_code(code, phone):
            log.warning(
                "dossier ownership proof refused: only a one-time code is accepted now",
                extra={"user": self.user_id, "dossier": code},
            )
            self.say("code_needed", (self.button(Command("otp", code)),), code=code)
            return
        if dossier is not None and phone and _proof_matches(digits, dossier):
            log.info(
                "dossier ownership proven",
                extra={"user": self.user_id, "dossier": code, "proof": "last_four"},
            )
            await self.proceed(dossier, then, "last_four")
            return
        await self.wrong_proof(code, phone)
        left = self.policy.max_failures - self.failures
        if left > 0:
            self.say("proof_wrong", left=left, code=code)

    async def wrong_proof(self, code: str, phone: str | None) -> None:
        """Count a wrong proof (user, dossier, phone) and lock the user past the limit."""
        self.failures = await self.services.lookup_failed(self.user_id, code, phone)
        log.warning(
            "dossier ownership proof refused",
            extra={"user": self.user_id, "dossier": code, "failures": self.failures},
        )
        if self.failures >= self.policy.max_failures:
            self.set_step(None)
            self.say("locked")

    async def send_dossier_code(self, code: str) -> None:
        """Send a one-time code to the dossier's own phone (alike for unknown dossiers)."""
        if await self.refused(code):
            return
        then = self.state.get("then") if self.state.get("code") == code else None
        offer = await self.services.send_dossier_code(self.user_id, code)
        if offer.retry_after_seconds is not None:
            log.warning(
                "one-time code refused: too many asked",
                extra={"user": self.user_id, "dossier": code},
            )
            self.say("otp_too_many", minutes=_minutes(offer.retry_after_seconds))
            return
        log.info("one-time code asked for a dossier", extra={"user": self.user_id, "dossier": code})
        self.set_step(
            "proof", code=code, then=then or "lookup", sent=offer.expires_at.isoformat(), tries=0
        )
        self.say("dossier_code_sent", code=code, minutes=self.policy.otp_minutes)

    async def check_dossier_code(
        self, code: str, digits: str, then: str, dossier: DossierFacts | None
    ) -> None:
        """A typed code for the dossier. Its tries and expiry are counted here, so an
        unknown dossier (no code was sent) answers like a known one."""
        tries = int(self.state.get("tries", 0))
        expires = datetime.fromisoformat(self.state["sent"])
        if self.at >= expires or tries >= self.policy.otp_attempts:
            self.set_step("proof", code=code, then=then)
            self.say("code_expired", (self.button(Command("otp", code)),), code=code)
            return
        result = await self.services.check_code(self.user_id, digits, code)
        if result.outcome == "ok" and dossier is not None:
            log.info(
                "dossier ownership proven",
                extra={"user": self.user_id, "dossier": code, "proof": "otp"},
            )
            await self.proceed(dossier, then, "otp")
            return
        self.state["tries"] = tries + 1
        await self.wrong_proof(code, dossier.phone_e164 if dossier is not None else None)
        if self.failures >= self.policy.max_failures:
            return
        left = self.policy.otp_attempts - tries - 1
        if left > 0:
            self.say("code_wrong", left=left)
            return
        self.set_step("proof", code=code, then=then)
        self.say("code_expired", (self.button(Command("otp", code)),), code=code)

    async def shared(self, event: InfoShared) -> None:
        phone = normalize_phone(event.phone)
        if not phone.ok or phone.e164 is None:
            self.say("phone_unusable")
            return
        await self.services.claim_phone(self.user_id, phone.e164, event.name)
        self.citizen = await self.services.citizen(self.user_id)
        step = self.state.get("step")
        after: dict[str, Any] = {}
        if step == "proof":
            after = {"code": self.state["code"], "then": self.state["then"]}
        elif step in ("share", "phone_code"):
            after = dict(self.state.get("after") or {})
        if self.citizen.verified_phone == phone.e164:  # proven before: nothing to prove
            self.set_step(None)
            await self.proven(after)
            return
        await self.send_phone_code(phone.e164, after)

    async def send_phone_code(self, phone_e164: str, after: dict[str, Any]) -> None:
        """Send a code to the claimed number; ``after`` is what to do once it is proven."""
        offer = await self.services.send_phone_code(self.user_id, phone_e164)
        if offer.retry_after_seconds is not None:
            log.warning("one-time code refused: too many asked", extra={"user": self.user_id})
            self.say("otp_too_many", minutes=_minutes(offer.retry_after_seconds))
            return
        log.info("one-time code sent to a claimed number", extra={"user": self.user_id})
        self.set_step("phone_code", after=after)
        self.say(
            "phone_code_sent",
            (self.button(Command("new_code")),),
            phone_tail=phone_e164[-PHONE_TAIL:],
            minutes=self.policy.otp_minutes,
        )

    async def new_phone_code(self) -> None:
        phone = self.citizen.claimed_phone
        after = dict(self.state.get("after") or {}) if self.state.get("step") else {}
        if phone is None or phone == self.citizen.verified_phone:
            self.set_step("share", after=after)
            self.say("subscribe_needs_phone")
            self.ask_phone()
            return
        await self.send_phone_code(phone, after)

    async def check_phone_code(self, digits: str) -> None:
        after = dict(self.state.get("after") or {})
        result = await self.services.check_code(self.user_id, digits)
        if result.outcome == "ok":
            log.info("claimed number proven by a one-time code", extra={"user": self.user_id})
            self.citizen = await self.services.citizen(self.user_id)
            self.set_step(None)
            await self.proven(after)
            return
        log.warning(
            "one-time code refused",
            extra={"user": self.user_id, "outcome": result.outcome},
        )
        if result.outcome == "wrong" and result.attempts_left > 0:
            self.say("code_wrong", left=result.attempts_left)
            return
        self.say("code_expired", (self.button(Command("new_code")),), code=None)

    async def proven(self, after: dict[str, Any]) -> None:
        """The user's number is proven: go on with what they were doing."""
        code, then = after.get("code"), after.get("then")
        if code and then:
            dossier = await self.services.dossier(code)
            proof = self.proof_of(code, dossier)
            if dossier is not None and proof is not None:
                await self.proceed(dossier, then, proof)
                return
            log.warning(
                "dossier ownership not proven by the shared phone",
                extra={"user": self.user_id, "dossier": code},
            )
            self.set_step("proof", code=code, then=then)
            self.say("phone_mismatch", (self.button(Command("otp", code)),), code=code)
            return
        if then == "subscribe":
            await self.subscribe()
            return
        buttons = () if self.citizen.subscribed else (self.button(Command("subscribe")),)
        self.say("phone_proven", buttons, subscribed=self.citizen.subscribed)

    # --- what a proven owner may do -------------------------------------------------------

    async def proceed(self, dossier: DossierFacts, then: str, proof: str) -> None:
        code = dossier.code
        self.dossier_code = code
        self.remember(code, proof)
        self.set_step(None)
        if then not in READ_ONLY and not may_act(proof):
            self.code_needed(code, then)
            return
        if then == "lookup":
            self.lookup(dossier)
        elif then == "report":
            self.set_step("kind", code=code)
            self.say(
                "report_choose",
                (
                    self.button(Command("report_false", code)),
                    self.button(Command("report_other", code)),
                ),
                code=code,
            )
        elif then in ("report_false", "report_other"):
            kind = "false_closure" if then == "report_false" else "problem"
            self.set_step("describe", code=code, kind=kind)
            self.say("report_describe", kind=kind, code=code)
        elif then == "rate":
            self.set_step("score", code=code, aspect="progress")
            self.say(
                "rating_ask", self.score_buttons(code, "progress"), code=code, aspect="progress"
            )
        elif then.startswith(("rate:", "rate_quality:")):
            name, _, number = then.partition(":")
            await self.rate(code, "quality" if name == "rate_quality" else "progress", int(number))
        elif then in ("received", "not_received"):
            await self.result_check(code, received=then == "received")
        else:
            self.lookup(dossier)

    def lookup(self, dossier: DossierFacts) -> None:
        code = dossier.code
        buttons = [self.button(Command("report_false", code))]
        buttons.append(self.button(Command("report_other", code)))
        if not self.citizen.subscribed:
            buttons.append(self.button(Command("subscribe")))
        buttons.append(self.button(Command("human", code)))
        buttons.append(self.button(Command("menu")))
        self.say("lookup", tuple(buttons), dossier=dossier)

    async def open_report(
        self, code: str, kind: ReportKind, description: str | None, source: ReportSource
    ) -> None:
        dossier = await self.services.dossier(code)
        proof = self.proof_of(code, dossier)
        if dossier is None or proof is None or not may_act(proof):
            self.code_needed(code, "report_false" if kind == "false_closure" else "report_other")
            return
        text = description.strip()[:2000] if description else ""
        if not text:
            text = self.bot.texts.render("bot/report_default_description.txt.j2", kind=kind)
        report = await self.services.open_report(self.user_id, code, kind, text, source, proof)
        self.set_step(None)
        self.dossier_code = code
        self.report_id = report.id
        self.say("report_opened", report=report)

    def score_buttons(self, code: str, aspect: Aspect) -> tuple[Button, ...]:
        """The 1-5 buttons of one score: ``#rate`` (progress) or ``#rate_quality``."""
        name = "rate_quality" if aspect == "quality" else "rate"
        return tuple(self.button(Command(name, code, n)) for n in range(MIN_SCORE, MAX_SCORE + 1))

    async def rate(self, code: str, aspect: Aspect, score: int) -> None:
        """Record one of the two scores (:data:`Aspect`), then ask the next thing: the
        quality after the progress, the comment after the quality."""
        self.dossier_code = code
        if not MIN_SCORE <= score <= MAX_SCORE:
            self.set_step("score", code=code, aspect=aspect)
            self.say("rating_invalid")
            return
        if aspect == "progress":
            await self.services.record_rating(self.user_id, code, score, None, None)
            self.set_step("score", code=code, aspect="quality", progress=score)
            buttons = self.score_buttons(code, "quality")
            self.say("rating_ask", buttons, code=code, aspect="quality", progress=score)
            return
        await self.services.record_rating(self.user_id, code, None, score, None)
        asked = self.loaded if self.loaded.get("step") == "score" else {}
        progress = asked.get("progress") if asked.get("code") == code else None
        self.set_step("comment", code=code)
        self.say("rating_thanks", progress=progress, quality=score)

    async def answer_question(self, text: str) -> bool:
        """A typed answer ("chưa nhận", "4") to the question the last notice asked."""
        question = await self.services.pending_question(self.user_id)
        if question is None:
            return False
        intent = match_intent(text)
        if question.kind == "result_check" and intent in ("received", "not_received"):
            await self.result_check(question.dossier_code, received=intent == "received")
            return True
        score = score_in(text)
        if question.kind == "rating_request" and score is not None:
            await self.about(question.dossier_code, f"rate:{score}")
            return True
        return False

    async def result_check(self, code: str, *, received: bool) -> None:
        self.dossier_code = code
        then = "received" if received else "not_received"
        dossier = await self.services.dossier(code)
        proof = self.proof_of(code, dossier)
        if proof == "last_four":
            self.code_needed(code, then)
            return
        if proof is None or not await self.services.record_result_check(
            self.user_id, code, received, proof
        ):
            log.warning(
                "result-check answer for no question asked",
                extra={"user": self.user_id, "dossier": code},
            )
            self.say("check_unknown")
            return
        self.remember(code, proof)
        self.set_step(None)
        if received:
            self.say("check_received")
            return
        await self.open_report(code, "false_closure", None, "result_check")

    async def subscribe(self) -> None:
        """Notices for the proven number go to this OA user; a claimed number is proven
        first (a code is sent to it), else the user is asked to share one."""
        phone = self.citizen.verified_phone
        if phone is None:
            claimed = self.citizen.claimed_phone
            if claimed is not None:
                await self.send_phone_code(claimed, {"then": "subscribe"})
                return
            self.set_step("share", after={"then": "subscribe"})
            self.say("subscribe_needs_phone")
            self.ask_phone()
            return
        await self.services.subscribe(self.user_id, phone)
        log.info("notices moved to the OA", extra={"user": self.user_id})
        self.citizen = replace(self.citizen, subscribed=True)
        self.set_step(None)
        self.say(
            "subscribed",
            (self.button(Command("unsubscribe")),),
            phone_tail=phone[-PHONE_TAIL:],
        )

    async def unsubscribe(self) -> None:
        stopped = await self.services.unsubscribe(self.user_id)
        if stopped:
            log.info("notices moved back to SMS by the user", extra={"user": self.user_id})
        self.citizen = replace(self.citizen, subscribed=False)
        self.set_step(None)
        self.say("unsubscribed", (self.button(Command("subscribe")),), stopped=stopped)

    async def open_handoff(self, code: str | None) -> None:
        """Open (or rejoin) the handoff, about the dossier the user proved (module doc)."""
        attached = await self.proven_code(code)
        if attached is None and code is not None:
            log.info(
                "handoff without the dossier: ownership not proven for acting",
                extra={"user": self.user_id, "dossier": code},
            )
        self.handoff_id = await self.services.open_handoff(self.user_id, attached)
        self.dossier_code = attached
        self.set_step(None)
        self.say("handoff_opened")

    async def proven_code(self, code: str | None) -> str | None:
        """``code`` if the user may act on it, else None; with no code, the last dossier
        the user may act on among those proven in this conversation."""
        proofs: dict[str, str] = self.state.get("proofs", {})
        for candidate in [code] if code is not None else list(reversed(proofs)):
            dossier = await self.services.dossier(candidate)
            if may_act(self.proof_of(candidate, dossier)):
                return candidate
        return None


def _proof_matches(digits: str, dossier: DossierFacts) -> bool:
    """The last four digits of the dossier's phone, or the whole number in any form."""
    phone = dossier.phone_e164 or ""
    if len(digits) == PROOF_DIGITS:
        return phone.endswith(digits)
    typed = normalize_phone(digits)
    return typed.ok and typed.e164 == phone


def _proof_shaped(digits: str, *, code_sent: bool) -> bool:
    """Whether typed digits can be a proof at all: four digits, a phone number, or six
    digits once a one-time code was sent. Other digits ("5", "12345") are not counted as
    a wrong proof; the prompt is asked again."""
    if code_sent and len(digits) == CODE_DIGITS:
        return True
    return len(digits) == PROOF_DIGITS or normalize_phone(digits).ok


def _minutes(seconds: int) -> int:
    """A wait in whole minutes, as a person says it (at least one)."""
    return max(1, round(seconds / 60))
