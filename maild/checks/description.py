"""`description`: the sender describes a problem or a request in words of their own.

Definition: the sender's new text, without the greeting, the signature, quoted
or forwarded earlier mail, holds at least `MIN_CONTENT_WORDS` (5) content
words. A content word is a word of letters that is not a function word
(och, att, the, is ...), not courtesy or case handling (tack, thanks, please,
återkommer, ärende, svar, update, waiting ...), not an attachment note
(bifogad, skärmdump, attached, screenshot, se bild ...) and not a time word
(idag, i morse, yesterday ...); numbers, web and mail addresses do not count.
Thanks that open a sentence ("Tack för hjälpen,") are dropped up to their
first punctuation. So "Se bild.", "Screenshot attached", "Tack för hjälpen, nu
fungerar det!" and "just checking whether you received my email below?" are
no description, while "Kampanjrapporten för kampanj 49102 visar noll inlösta
värdebevis, men butikerna säger att de har tagit emot flera. Kan ni kolla?" is.

Machine-written mail (an out-of-office reply, a delivery report, a spam
complaint, a message from the null sender `Return-Path: <>`: the signals of
`maild.classify`) has no description whatever its text says.
"""

from __future__ import annotations

import re

from maild.checks.quoting import BodyParts
from maild.checks.result import ItemResult, found, missing
from maild.checks.sentences import split_sentences
from maild.classify.autoreply import autoreply_signal
from maild.classify.bounce import bounce_signal, is_daemon_address, null_sender_signal
from maild.classify.complaint import complaint_signal
from maild.parse import ParsedMail

ITEM = "description"
MIN_CONTENT_WORDS = 5

_GREETING = re.compile(
    r"^(?:hej(?:san)?|hallå|hall[åa]j|tjena|tja|god\s+(?:morgon|middag|eftermiddag|kväll|dag)|"
    r"hi|hello|hey|dear|good\s+(?:morning|afternoon|evening|day)|greetings|hei|moi|hallo|"
    r"guten\s+tag)\b[^.?\n]{0,40}?[,!.:]?\s*$", re.IGNORECASE)
_GREETING_PREFIX = re.compile(
    r"^(?:hej(?:san)?|hallå|hi|hello|hey)(?:\s+(?:igen|again|all|team|alla))?\s*[,!]\s*",
    re.IGNORECASE)
_THANKS_OPENING = re.compile(
    r"^(?:tack|thanks|thank\s+you|many\s+thanks|stort\s+tack)\b[^,.!?;:]*[,.!?;:]?\s*",
    re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")
_ADDRESS = re.compile(r"(?<!\S)[^\s@]*@\S*|(?<!\S)(?:https?://|www\.)\S*")


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_FUNCTION_WORDS = _word_set("""
och att det som en ett är var har hade inte jag vi ni du han hon de den dem detta dessa
på i av för med till från om men eller så när då nu här där hur vad vem vilken vilket
vilka kan kunde ska skulle vill ville måste får fick blir blev bli vara varit också även
bara redan fortfarande igen sedan sen efter innan under över genom mot utan vid hos
mig dig oss er sig min mitt mina din ditt dina vår vårt våra er ert era sin sitt sina
deras hans hennes dess någon något några ingen inget inga alla allt annan annat andra
man mycket mer mest lite mindre ja nej inte väl ju nog också ut upp in ner fram bort
hit dit just än samt åt ens dock eftersom därför kanske gärna tyvärr ganska helt
the a an and or but if then so of to in on at by for with from about as into onto
is are was were be been being am do does did done have has had having will would shall
should can could may might must not no yes it its this that these those there here
i me my mine we us our ours you your yours he him his she her they them their theirs
what which who whom whose when where why how all any both each few more most other
some such only own same than too very just also still again already up down out off
over under once further now yet even ever please ok okay i'm it's we're you're they're
that's there's don't doesn't didn't can't couldn't isn't aren't wasn't won't i've we've
i'd we'd i'll we'll
""")

_COURTESY_WORDS = _word_set("""
tack tacksam tacksamma hälsningar hälsning vänliga vänlig vänligen mvh återkommer
återkomma hör höra hoppas trevlig trevligt bra snälla ursäkta förlåt ber
thanks thank thankful grateful regards kind best cheers sorry hope hoping appreciate
appreciated let know get back soon asap welcome great fine
checking check received receive wondering
ärende ärendet ärenden svar svaret återkoppling väntar hunnit titta uppdatering
lägesuppdatering update updates news reply answer response waiting
""")

_ATTACHMENT_WORDS = _word_set("""
bifogad bifogat bifogade bifogar bifoga bifogas bilaga bilagan bilagor bild bilden bilder
skärmdump skärmdumpen skärmdumpar skärmbild skärmbilden skärmbilder skärmavbild
skärmavbilden se ser här nedan ovan
attached attach attaching attachment attachments screenshot screenshots screen shot
image images picture pictures photo see below above enclosed find
""")

_TIME_WORDS = _word_set("""
idag igår förrgår morse morgon förmiddag förmiddags eftermiddag eftermiddags kväll kvällen
natt natten dag dagen vecka veckan veckor månad månaden år kl klockan ca cirka omkring
helg helgen timme timmar minut minuter
måndag tisdag onsdag torsdag fredag lördag söndag måndags tisdags onsdags torsdags fredags
lördags söndags nästa förra
today yesterday tomorrow morning afternoon evening night tonight week weeks month day
days year monday tuesday wednesday thursday friday saturday sunday am pm around about
last next ago
""")

_NOT_CONTENT = _FUNCTION_WORDS | _COURTESY_WORDS | _ATTACHMENT_WORDS | _TIME_WORDS


def detect_description(mail: ParsedMail, body: BodyParts, *,
                       no_machine_signal: bool = False) -> ItemResult:
    """Present when the new text (no greeting, signature or quotes) has enough content words.

    `no_machine_signal`: `classify_machine` found none in `mail` for its envelope sender,
    so only what the Return-Path header adds is asked again (the same answer).
    """
    if _machine_written(mail, no_machine_signal):
        return missing(ITEM)
    sentences = [_drop_thanks(s) for s in split_sentences(_without_greeting(body.new))]
    words = [word for sentence in sentences for word in content_words(sentence)]
    if len(words) < MIN_CONTENT_WORDS:
        return missing(ITEM)
    first = next((s for s in sentences if content_words(s)), "")
    return found(ITEM, f"{len(words)} content words: {first}")


def content_words(text: str) -> list[str]:
    """The words of `text` that carry content (see the module's definition)."""
    lowered = text.lower()
    if "@" in lowered or "http" in lowered or "www." in lowered:  # what an address needs
        lowered = _ADDRESS.sub(" ", lowered)
    words = _WORD.findall(lowered.replace("’", "'"))
    return [word for word in words if len(word) > 1 and word not in _NOT_CONTENT]


def _machine_written(mail: ParsedMail, no_machine_signal: bool = False) -> bool:
    """An auto-reply, a delivery report or a complaint (list mail can be a person's).

    With `no_machine_signal` the auto-reply and complaint checks found nothing already,
    nor did the bounce checks for an envelope sender that was neither `<>` nor a mail
    system's account (that would have been a signal): of the bounce checks only those of
    the envelope sender can see anything else, and the Return-Path is read as one.
    """
    return_path = mail.header("Return-Path")
    envelope = return_path.strip().strip("<>").strip() if return_path is not None else None
    if no_machine_signal:
        return null_sender_signal(envelope) is not None or (
            envelope is not None and is_daemon_address(envelope))
    return any(signal is not None for signal in (
        autoreply_signal(mail), bounce_signal(mail, envelope), complaint_signal(mail),
        null_sender_signal(envelope)))


def _without_greeting(text: str) -> str:
    lines = text.strip().split("\n")
    if not lines:
        return ""
    if _GREETING.match(lines[0].strip()):
        return "\n".join(lines[1:])
    lines[0] = _GREETING_PREFIX.sub("", lines[0].strip(), count=1)
    return "\n".join(lines)


def _drop_thanks(sentence: str) -> str:
    """"Tack för hjälpen, nu fungerar det!" → "nu fungerar det!"."""
    return _THANKS_OPENING.sub("", sentence, count=1)
