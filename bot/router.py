"""The OA chatbot: one inbound event in, the replies and what they concern out.

The bot decides and the gateway does: it reads and records through
:class:`bot.ports.Services` and answers with :mod:`bot.replies`, never with HTTP or
Zalo JSON. A conversation is a small state kept between messages (``step`` and what
the step is about), saved through the services with a TTL; a citizen who comes back
after it expired starts from the menu.

Dossier facts are shown only to the dossier's owner: the phone the user shared with
Zalo's ``request_user_info`` matches the dossier's phone, or the user types its last
four digits. Until then the bot answers the same whether or not the code exists, so a
guessed code reveals nothing. Wrong proofs are counted per user and lock lookups for
the window; asking about more than ``max_codes`` distinct codes in the window is
refused as enumeration. Each refusal is logged (user id, never a phone number).

Prompts are strict. While a step waits for an answer (a dossier code, the proof digits,
1 or 2, a score, a description, a comment, the shared phone), typed text is read as that
answer and nothing else: "5" at the "type the dossier code" prompt is not the fifth menu
choice. Text that does not answer the prompt gets the prompt again (``reprompt``), with
how to leave it; nothing is counted against the user for it. Only three things leave a
prompt: a tapped button (its payload is an explicit command), the answer to a question a
notice asked after the prompt, and a back word. The back words, typed as the whole
message and with or without diacritics, are "menu" (or "bắt đầu", "trang chủ", "danh
mục"), "hủy" (or "hủy bỏ", "thoát", "dừng lại") and "kết thúc"; "bỏ qua" is one too,
except where it answers the prompt (the description of a report, the rating comment).
At the proof prompt a new dossier code is also an answer: the user corrects the code.

While a conversation with hotline staff (a handoff) is open, every message goes to the
staff. The first forwarded message gets a short acknowledgement saying how to get back to
the bot, and the next ones only once ``HANDOFF_ACK_INTERVAL`` has passed since the last
acknowledgement, so a burst of messages gets one. The back words "kết thúc", "menu" and
"hủy" (or the "#end", "#menu" and "#cancel" buttons) close the handoff and show the menu.
A handoff carries the dossier it is about only if the user proved to own it in this
conversation (the code of the button, of the current step, or else the last dossier
proven); a code merely typed is never attached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Final, Protocol

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

__all__ = ["MENU", "Bot", "BotPolicy", "Outcome", "TextRenderer"]

log = logging.getLogger(__name__)

# The main menu, in the order of its numbers.
MENU: Final = ("lookup", "report", "subscribe", "rate", "human")
PROOF_DIGITS: Final = 4
MIN_SCORE: Final = 1
MAX_SCORE: Final = 5
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
    hotline staff (an open handoff) instead of the bot.
    """

    replies: tuple[Reply, ...] = ()
    dossier_code: str | None = None
    report_id: int | None = None
    handoff_id: int | None = None
    forwarded: bool = False


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
        )


class _Turn:
    """One event's handling: the state as loaded, changed in place, and the replies."""

    def __init__(self, bot: Bot, citizen: Citizen, state: dict[str, Any]) -> None:
        self.bot = bot
        self.services = bot.services
        self.policy = bot.policy
        self.citizen = citizen
        self.user_id = citizen.user_id
        # "step" and its subject; "proven" lists the codes proven in this conversation.
        self.state: dict[str, Any] = dict(state)
        self.replies: list[Reply] = []
        self.dossier_code: str | None = None
        self.report_id: int | None = None
        self.handoff_id: int | None = citizen.handoff_id
        self.forwarded = False

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

    def menu(self, lead: str | None = None) -> None:
        labels = [self.button(Command(name)).title for name in MENU]
        buttons = tuple(self.button(Command(name)) for name in MENU)
        self.say("menu", buttons, lead=lead, labels=labels)

    def set_step(self, step: str | None, **subject: Any) -> None:
        proven = self.state.get("proven", [])
        self.state = {"step": step, **subject} if step else {}
        if proven:
            self.state["proven"] = proven

    # --- dispatch -------------------------------------------------------------------------

    async def run(self, event: InboundEvent) -> None:
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
            await self.command(Command(MENU[number - 1]))
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
        elif name == "rate" and command.number is not None:
            await self.about(code, f"rate:{command.number}")
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
            if digits is None or not _proof_shaped(digits):
                return False
            await self.check_proof(self.state["code"], digits, self.state["then"])
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
            await self.rate(self.state["code"], score)
            return True
        if step == "comment":
            if not normalize(text):
                return False
            code, score = self.state["code"], self.state["score"]
            self.set_step(None)
            if intent != "skip":
                await self.services.record_rating(self.user_id, code, score, text.strip()[:1000])
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
            buttons = tuple(
                self.button(Command("rate", code, n)) for n in range(MIN_SCORE, MAX_SCORE + 1)
            )
        self.say("reprompt", buttons, step=step, code=code, purpose=self.state.get("then"))
        if step == "share":
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
        if await self.services.lookup_locked(self.user_id):
            log.warning("dossier request refused: lookups locked", extra={"user": self.user_id})
            self.set_step(None)
            self.say("locked")
            return
        asked = await self.services.lookup_code_asked(self.user_id, code)
        if asked > self.policy.max_codes:
            log.warning(
                "dossier request refused: too many codes",
                extra={"user": self.user_id, "codes": asked},
            )
            self.set_step(None)
            self.say("too_many_codes")
            return
        dossier = await self.services.dossier(code)
        if dossier is not None and self.owns(dossier):
            await self.proceed(dossier, then)
            return
        self.set_step("proof", code=code, then=then)
        self.say("ask_proof", code=code)
        self.ask_phone()

    def owns(self, dossier: DossierFacts) -> bool:
        if dossier.code in self.state.get("proven", []):
            return True
        phone = self.citizen.verified_phone
        return phone is not None and dossier.phone_e164 == phone

    async def check_proof(self, code: str, digits: str, then: str) -> None:
        if await self.services.lookup_locked(self.user_id):
            self.set_step(None)
            self.say("locked")
            return
        dossier = await self.services.dossier(code)
        if dossier is not None and dossier.phone_e164 and _proof_matches(digits, dossier):
            await self.proceed(dossier, then)
            return
        failures = await self.services.lookup_failed(self.user_id)
        log.warning(
            "dossier ownership proof refused",
            extra={"user": self.user_id, "failures": failures},
        )
        left = self.policy.max_failures - failures
        if left <= 0:
            self.set_step(None)
            self.say("locked")
            return
        self.say("proof_wrong", left=left, code=code)

    async def shared(self, event: InfoShared) -> None:
        phone = normalize_phone(event.phone)
        if not phone.ok or phone.e164 is None:
            self.say("phone_unusable")
            return
        await self.services.verify_phone(self.user_id, phone.e164, event.name)
        self.citizen = await self.services.citizen(self.user_id)
        step = self.state.get("step")
        if step == "proof":
            code, then = self.state["code"], self.state["then"]
            dossier = await self.services.dossier(code)
            if dossier is not None and self.owns(dossier):
                await self.proceed(dossier, then)
            else:
                log.warning(
                    "dossier ownership not proven by the shared phone", extra={"user": self.user_id}
                )
                self.say("phone_mismatch", code=code)
            return
        if step == "share":
            await self.subscribe()
            return
        self.say("phone_saved", buttons=(self.button(Command("subscribe")),))

    # --- what a proven owner may do -------------------------------------------------------

    async def proceed(self, dossier: DossierFacts, then: str) -> None:
        code = dossier.code
        self.dossier_code = code
        # The most recently proven last: a handoff without a code is about that one.
        self.state["proven"] = [c for c in self.state.get("proven", []) if c != code] + [code]
        self.set_step(None)
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
            self.set_step("score", code=code)
            buttons = tuple(
                self.button(Command("rate", code, n)) for n in range(MIN_SCORE, MAX_SCORE + 1)
            )
            self.say("rating_ask", buttons, code=code)
        elif then.startswith("rate:"):
            await self.rate(code, int(then.partition(":")[2]))
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
        text = description.strip()[:2000] if description else ""
        if not text:
            text = self.bot.texts.render("bot/report_default_description.txt.j2", kind=kind)
        report = await self.services.open_report(self.user_id, code, kind, text, source)
        self.set_step(None)
        self.dossier_code = code
        self.report_id = report.id
        self.say("report_opened", report=report)

    async def rate(self, code: str, score: int) -> None:
        self.dossier_code = code
        if not MIN_SCORE <= score <= MAX_SCORE:
            self.set_step("score", code=code)
            self.say("rating_invalid")
            return
        await self.services.record_rating(self.user_id, code, score, None)
        self.set_step("comment", code=code, score=score)
        self.say("rating_thanks", score=score)

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
        if not await self.services.record_result_check(self.user_id, code, received):
            log.warning("result-check answer for no question asked", extra={"user": self.user_id})
            self.say("check_unknown")
            return
        self.set_step(None)
        if received:
            self.say("check_received")
            return
        await self.open_report(code, "false_closure", None, "result_check")

    async def subscribe(self) -> None:
        phone = self.citizen.verified_phone
        if phone is None:
            self.set_step("share")
            self.say("subscribe_needs_phone")
            self.ask_phone()
            return
        await self.services.subscribe(self.user_id, phone)
        self.set_step(None)
        self.say("subscribed", phone_tail=phone[-3:])

    async def open_handoff(self, code: str | None) -> None:
        """Open (or rejoin) the handoff, about the dossier the user proved (module doc)."""
        attached = await self.proven_code(code)
        self.handoff_id = await self.services.open_handoff(self.user_id, attached)
        self.dossier_code = attached
        self.set_step(None)
        self.say("handoff_opened")

    async def proven_code(self, code: str | None) -> str | None:
        """``code`` if the user owns it, else None; with no code, the last one proven."""
        proven: list[str] = self.state.get("proven", [])
        if code is None:
            return proven[-1] if proven else None
        if code in proven:
            return code
        dossier = await self.services.dossier(code)
        return code if dossier is not None and self.owns(dossier) else None


def _proof_matches(digits: str, dossier: DossierFacts) -> bool:
    """The last four digits of the dossier's phone, or the whole number in any form."""
    phone = dossier.phone_e164 or ""
    if len(digits) == PROOF_DIGITS:
        return phone.endswith(digits)
    typed = normalize_phone(digits)
    return typed.ok and typed.e164 == phone


def _proof_shaped(digits: str) -> bool:
    """Whether typed digits can be a proof at all: four digits or a phone number. Other
    digits ("5", "12345") are not counted as a wrong proof; the prompt is asked again."""
    return len(digits) == PROOF_DIGITS or normalize_phone(digits).ok
