"""maild against django-helpdesk 2.6.1's own e-mail ingestion: same messages, same run.

Both systems take the same files, read into memory before the clock starts, on an
SQLite file database in WAL mode with synchronous=FULL, in one process each:

- maild as `maild ingest --to support@example.se` runs: every message stored
  (`store_batch`, 64 to a commit), then the processor's `run_pending` (parse, classify,
  correlate, route, ticket, acknowledgement composed into the outbox), with the shipped
  rules/.
- django-helpdesk 2.6.1, installed by this script into its own virtual environment
  (~/.cache/maild-bench/helpdesk-2.6.1, reused when present; $MAILD_BENCH_CACHE moves
  it), never a dependency of maild: bench/helpdesk_driver.py hands every message to
  `helpdesk.email.extract_email_metadata`, the function its mail pollers call for
  each fetched message, for one Queue of support@example.se; acknowledgements are
  rendered and built into Django's in-memory mail backend (see the driver).

The default mix of 850 messages is like a support mailbox's traffic, mostly people:
  325 new mails from people, generated (customers' contacts, unknown people at
      customer domains, private addresses; Swedish and English; one in ten with a
      30 KB screenshot; all but the senders at small unknown domains with the trusted
      MTA's DMARC pass, which maild asks of a follow-up before it joins a ticket),
  200 follow-ups to those, generated: the same sender, "Re: <subject>", In-Reply-To
      and References naming the first mail's Message-ID, the first mail quoted,
  112 real people's mails: fixtures/emails (new and follow-ups), fixtures/heldout,
      tests/corpus/replies-talon, the people in fixtures/machine-mail and the corpus,
  120 bounces and spam complaints drawn from tests/corpus (sisimai, flufl.bounce)
      and fixtures (gateway notices),
   50 auto-replies: the 6 real ones of the corpus and fixtures, the rest generated
      out-of-office replies (Auto-Submitted: auto-replied, In-Reply-To a first mail),
   43 malformed MIME messages of tests/corpus/malformed-dovecot.
The corpus holds a few messages twice under two names (sisimai ships some copies): maild
records such a message once, as it does a redelivery; django-helpdesk handles it twice.
Each system handles a thread of three more messages (a first mail, its follow-up, an
out-of-office) before its clock starts: code imported, templates compiled, rules or
queue loaded, as in a running poller or daemon.
`--messages N` scales every part by N/850 (generated mail fills the rounding); a real
message needed more often than the corpus has it is used again with an X-Bench-Copy
header, so that it is a new message to both systems. Follow-ups and auto-replies
come after the mail they answer; the rest is in a fixed shuffled order (seed 15).

On a shared machine either system's rate moves by a quarter from one run to the next,
so the set is run in --rounds rounds (default 3): in each, django-helpdesk once, then
maild once for each --workers count, every run on a fresh database. Each round gives
its own ratios, of runs minutes apart at most; the table shows the median of each rate
and of each ratio (the lower middle one of an even number of rounds).
Prints that table and every round's figures; the last line is one JSON object.
Usage: python bench/vs_helpdesk.py [--messages N] [--workers 1,2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mailmaker import authenticated_headers  # noqa: E402

if TYPE_CHECKING:
    from maild.runtime import Runtime

HELPDESK_VERSION = "2.6.1"
SUPPORT_ADDRESS = "support@example.se"
DEFAULT_MESSAGES = 850
SEED = 15

# The default mix; `--messages N` scales it.
BASE_MIX = {
    "people_generated": 325,
    "followups": 200,
    "people_real": 112,
    "bounces": 120,
    "autoreplies": 50,
    "malformed": 43,
}


@dataclass(frozen=True)
class Mail:
    """One message of the set, what kind it is, and (for generated first mails) its thread."""

    kind: str
    raw: bytes
    message_id: str | None = None
    sender: str | None = None
    subject: str | None = None
    body: str | None = None


# ---------------------------------------------------------------- the real corpus

def _tsv(path: Path) -> dict[str, str]:
    """file → expected kind, from a corpus manifest."""
    lines = path.read_text().splitlines()[1:]
    return {line.split("\t")[0]: line.split("\t")[1] for line in lines if line.strip()}


def real_pools() -> dict[str, list[Path]]:
    """The project's real-world messages, by kind: people, bounces, auto-replies, malformed."""
    corpus, fixtures = ROOT / "tests" / "corpus", ROOT / "fixtures"
    kinds = {**_tsv(corpus / "manifest.tsv"), **_tsv(corpus / "heldout.tsv")}
    pools: dict[str, list[Path]] = {"people_real": [], "bounces": [], "autoreplies": [],
                                    "malformed": []}
    by_kind = {"human": "people_real", "bounce": "bounces", "complaint": "bounces",
               "autoreply": "autoreplies"}
    for name, kind in kinds.items():
        pools[by_kind[kind]].append(corpus / name)
    for path in sorted((fixtures / "emails").glob("*.eml")):
        expected = json.loads(path.with_suffix(".expected.json").read_text())
        pool = {"bounce": "bounces", "autoreply": "autoreplies"}.get(expected["kind"],
                                                                      "people_real")
        pools[pool].append(path)
    pools["people_real"] += sorted((fixtures / "heldout").glob("*.eml"))
    pools["people_real"] += sorted((fixtures / "machine-mail").glob("person-*.eml"))
    pools["bounces"] += sorted((fixtures / "machine-mail").glob("gw-*.eml"))
    pools["malformed"] += sorted(p for p in (corpus / "malformed-dovecot").iterdir()
                                 if p.is_file() and p.name not in ("COPYING", "LICENSE"))
    return {kind: sorted(paths) for kind, paths in pools.items()}


def draw(paths: list[Path], count: int, rng: random.Random) -> list[bytes]:
    """`count` messages from `paths` in a shuffled order; used again, with a copy header."""
    order = list(paths)
    rng.shuffle(order)
    drawn: list[bytes] = []
    for index in range(count):
        raw = order[index % len(order)].read_bytes()
        copy = index // len(order)
        if copy:
            newline = b"\r\n" if b"\r\n" in raw.split(b"\n", 1)[0] + b"\n" else b"\n"
            raw = f"X-Bench-Copy: {copy}".encode() + newline + raw
        drawn.append(raw)
    return drawn


# ---------------------------------------------------------------- generated mail

FIRST = ["Anna", "Erik", "Maria", "Karin", "Lars", "Sofia", "Johan", "Elin", "Per", "Ida",
         "Mikael", "Sara", "Anders", "Emma", "Fredrik", "Linnea", "Oskar", "Maja", "Peter",
         "Helena", "James", "Olivia", "Thomas", "Grace"]
LAST = ["Lind", "Johansson", "Holm", "Nilsson", "Berg", "Svensson", "Karlsson", "Ek",
        "Olsson", "Sjöberg", "Lundqvist", "Wallin", "Brown", "Taylor", "Hughes", "Wright"]
PRIVATE_DOMAINS = ["gmail.com", "hotmail.com", "outlook.com", "telia.com", "icloud.com"]
OTHER_DOMAINS = ["kvarnbyel.se", "brightwave.io", "torsbytra.se", "balticfreight.lt"]

PROBLEMS_SV = [
    ("Bokningssidan visar fel pris", "När vi bokar ett rum visas fel pris i kassan sedan i "
     "morse kl 09.45. Chrome 131 på Windows 11."),
    ("Kan inte logga in i kundportalen", "Sedan uppdateringen i tisdags får jag 'fel lösenord' "
     "fast jag har återställt det två gånger. Safari på iPhone, iOS 18."),
    ("SMS-utskicket gick inte iväg", "Kampanj {n} skulle gå ut kl 10 men ingen mottagare har "
     "fått något. Vi har 4 200 mottagare i listan."),
    ("Fakturan stämmer inte", "Faktura K-2026-{n} har dubbla rader för oktober. Kan ni skicka "
     "en ny?"),
    ("Webbshoppen räknar fel moms", "Moms på fraktkostnaden blir 12 % i stället för 25 % "
     "sedan i går eftermiddag."),
    ("Bilderna på menysidan syns inte", "Alla bilder på menysidan är trasiga sedan i morse. "
     "Firefox 133 på Ubuntu."),
    ("Exporten till Excel tar en evighet", "Exporten av order för november har stått och "
     "snurrat i 40 minuter. Edge på Windows 10."),
]
PROBLEMS_EN = [
    ("API returns 503 on order import", "Since 08:00 CET every call to /v2/orders returns "
     "503. Request id {n}. Nothing changed on our side."),
    ("Webhook deliveries stopped", "We have received no webhook calls since yesterday "
     "evening; the last one was event {n}."),
    ("Cannot reset my password", "The reset link in your e-mail says it has expired, even "
     "when I click it at once. Chrome 131 on macOS 15."),
    ("Duplicate SMS to customers", "Some of our customers got the same text message twice "
     "this morning, campaign {n}."),
    ("Report shows wrong totals", "The monthly report for October shows totals that differ "
     "from the order list by about 3 %."),
]
REPLIES_SV = ["Tack för snabbt svar! Det fungerar fortfarande inte, jag bifogar mer info nedan.",
              "Nu har det hänt igen, kl 14.20.", "Tack, nu fungerar det. Ni kan stänga ärendet.",
              "Har ni hunnit titta på det här? Det är ganska bråttom för oss."]
REPLIES_EN = ["Thanks for the quick answer. It still happens, more details below.",
              "It happened again at 14:20.", "Thanks, it works now; you can close this.",
              "Any news on this? It is getting urgent for us."]


def senders(rng: random.Random) -> list[tuple[str, str, bool]]:
    """(display name, address, authenticated) for the generated mail's senders.

    Mail from customers' domains and the big free-mail providers carries the trusted
    MTA's DMARC pass; mail from the other, smaller domains does not.
    """
    contacts: list[tuple[str, str, bool]] = []
    domains: list[str] = []
    for path in sorted((ROOT / "rules" / "customers").glob("*.toml")):
        data = tomllib.loads(path.read_text())
        domains += [d for d in data.get("domains", []) if d.isascii()]
        contacts += [(c.get("name", ""), c["address"], True) for c in data.get("contact", [])
                     if c["address"].isascii()]
    people: list[tuple[str, str, bool]] = list(contacts)
    for first in FIRST:
        for last in rng.sample(LAST, 3):
            local = f"{first}.{last}".lower().translate(str.maketrans("åäöé", "aaoe"))
            roll = rng.random()
            if roll < 0.6:
                domain, authenticated = rng.choice(domains), True
            elif roll < 0.85:
                domain, authenticated = rng.choice(PRIVATE_DOMAINS), True
                local += str(rng.randint(1, 99))
            else:
                domain, authenticated = rng.choice(OTHER_DOMAINS), False
            people.append((f"{first} {last}", f"{local}@{domain}", authenticated))
    return people


def _message(sender: tuple[str, str, bool], subject: str, body: str, message_id: str, *,
             headers: dict[str, str] | None = None, attachment: bytes | None = None) -> bytes:
    name, address, authenticated = sender
    message = EmailMessage(policy=SMTP_POLICY)
    if authenticated:
        for key, value in authenticated_headers(address):
            message[key] = value
    message["From"] = f"{name} <{address}>"
    message["To"] = SUPPORT_ADDRESS
    message["Subject"] = subject
    message["Date"] = "Mon, 16 Nov 2026 10:12:00 +0100"
    message["Message-ID"] = message_id
    for key, value in (headers or {}).items():
        message[key] = value
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="image", subtype="png",
                               filename="skarmbild.png")
    return message.as_bytes()


def first_mail(index: int, sender: tuple[str, str, bool], rng: random.Random) -> Mail:
    """A person's new support mail."""
    swedish = not sender[1].endswith((".io", ".lt", ".co.uk")) and rng.random() < 0.75
    subject, text = rng.choice(PROBLEMS_SV if swedish else PROBLEMS_EN)
    subject = f"{subject} ({index})" if rng.random() < 0.5 else subject
    greeting, closing = ("Hej!", "Med vänliga hälsningar") if swedish else ("Hi,", "Best regards")
    body = (f"{greeting}\n\n{text.format(n=48000 + index)}\n\n{closing}\n{sender[0]}\n"
            f"070-{rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}\n")
    message_id = f"<gen-{index}.{rng.getrandbits(40):x}@{sender[1].rpartition('@')[2]}>"
    attachment = rng.randbytes(30_000) if rng.random() < 0.1 else None
    raw = _message(sender, subject, body, message_id, attachment=attachment)
    return Mail("people_generated", raw, message_id, sender[1], subject, body)


def follow_up(index: int, first: Mail, sender: tuple[str, str, bool],
              rng: random.Random) -> Mail:
    """The same person answering in the thread of `first`, quoting it."""
    assert first.subject is not None
    assert first.body is not None
    swedish = "Hej" in first.body
    reply = rng.choice(REPLIES_SV if swedish else REPLIES_EN)
    quoted = "\n".join(f"> {line}" if line else ">" for line in first.body.splitlines())
    body = f"{reply}\n\n{sender[0]}\n\n{sender[0]} wrote:\n{quoted}\n"
    message_id = f"<gen-re-{index}.{rng.getrandbits(40):x}@{sender[1].rpartition('@')[2]}>"
    raw = _message(sender, f"Re: {first.subject}", body, message_id,
                   headers={"In-Reply-To": first.message_id or "",
                            "References": first.message_id or ""})
    return Mail("followups", raw, message_id)


def out_of_office(index: int, first: Mail, sender: tuple[str, str, bool],
                  rng: random.Random) -> Mail:
    """An automatic out-of-office answer from the writer of `first` (RFC 3834)."""
    assert first.subject is not None
    body = ("Jag är på semester till och med 4 december och läser inte min e-post.\n"
            "Vid brådskande ärenden, ring växeln 08-123 45 00.\n")
    message_id = f"<gen-ooo-{index}.{rng.getrandbits(40):x}@{sender[1].rpartition('@')[2]}>"
    raw = _message(sender, f"Automatiskt svar: {first.subject}", body, message_id,
                   headers={"In-Reply-To": first.message_id or "",
                            "References": first.message_id or "",
                            "Auto-Submitted": "auto-replied",
                            "X-Auto-Response-Suppress": "All"})
    return Mail("autoreplies", raw, message_id)


def warm_up_messages() -> list[bytes]:
    """A thread outside the set (first mail, follow-up, out-of-office) handled before the clock."""
    rng = random.Random(SEED + 1)
    sender = ("Eva Berg", "eva.berg@bergstromsbygg.se", True)
    first = first_mail(10**6, sender, rng)
    return [first.raw, follow_up(10**6, first, sender, rng).raw,
            out_of_office(10**6, first, sender, rng).raw]


def warm_up(runtime: Runtime) -> None:
    """Store and process the warm-up thread in `runtime`'s database, as mail the daemon
    received over SMTP: its code imported, templates and statements compiled."""
    from maild.intake import Arrival, store_batch

    arrivals = [Arrival(raw, "smtp", "eva.berg@bergstromsbygg.se", [SUPPORT_ADDRESS], "bench")
                for raw in warm_up_messages()]
    store_batch(runtime.engine, arrivals)
    warmed = runtime.processor().run_pending()
    assert warmed["processed"] == len(arrivals), warmed


def scaled_mix(total: int) -> dict[str, int]:
    """BASE_MIX scaled to `total` messages; generated first mails take up the rounding."""
    mix = {kind: round(count * total / DEFAULT_MESSAGES) for kind, count in BASE_MIX.items()}
    mix["people_generated"] = max(1, total - sum(n for k, n in mix.items()
                                                if k != "people_generated"))
    return mix


def build_messages(total: int) -> tuple[list[Mail], dict[str, int]]:
    """The message set, in the order both systems take it, and how many of each kind."""
    rng = random.Random(SEED)
    mix = scaled_mix(total)
    pools = real_pools()
    people = senders(rng)
    real_autoreplies = min(len(pools["autoreplies"]), mix["autoreplies"])
    generated_ooo = mix["autoreplies"] - real_autoreplies

    firsts: list[Mail] = []
    by_address: dict[str, tuple[str, str, bool]] = {}
    for index in range(mix["people_generated"]):
        sender = rng.choice(people)
        by_address[sender[1]] = sender
        firsts.append(first_mail(index, sender, rng))
    order: list[Mail] = list(firsts)
    for kind in ("people_real", "bounces", "malformed"):
        order += [Mail(kind, raw) for raw in draw(pools[kind], mix[kind], rng)]
    order += [Mail("autoreplies", raw)
              for raw in draw(pools["autoreplies"], real_autoreplies, rng)]
    rng.shuffle(order)

    def after(first: Mail, answer: Mail) -> None:
        position = next(i for i, mail in enumerate(order) if mail is first)
        order.insert(rng.randint(position + 1, len(order)), answer)

    for index in range(mix["followups"]):
        first = rng.choice(firsts)
        assert first.sender is not None
        after(first, follow_up(index, first, by_address[first.sender], rng))
    for index in range(generated_ooo):
        first = rng.choice(firsts)
        assert first.sender is not None
        after(first, out_of_office(index, first, by_address[first.sender], rng))
    return order, mix


# ---------------------------------------------------------------- the two systems

def cache_dir() -> Path:
    """Where the bench keeps environments it makes (not in the project)."""
    base = os.environ.get("MAILD_BENCH_CACHE") or str(Path.home() / ".cache" / "maild-bench")
    return Path(base)


def helpdesk_python() -> Path:
    """The interpreter of a virtual environment with django-helpdesk installed (made once)."""
    venv = cache_dir() / f"helpdesk-{HELPDESK_VERSION}"
    python = venv / "bin" / "python"
    probe = [str(python), "-c",
             "import importlib.metadata as m; print(m.version('django-helpdesk'))"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip() == HELPDESK_VERSION:
            return python
    print(f"installing django-helpdesk {HELPDESK_VERSION} into {venv} ...", file=sys.stderr)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", f"django-helpdesk=={HELPDESK_VERSION}"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"could not install django-helpdesk {HELPDESK_VERSION}:\n"
                         f"{done.stderr[-2000:]}")
    return python


def run_helpdesk(folder: Path, warm_up: Path) -> dict[str, Any]:
    """django-helpdesk's ingestion of every file in `folder`, in its own environment."""
    python = helpdesk_python()
    done = subprocess.run([str(python), str(ROOT / "bench" / "helpdesk_driver.py"), str(folder),
                           "--address", SUPPORT_ADDRESS, "--warm-up", str(warm_up)],
                          capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"django-helpdesk's run failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_maild(folder: Path, warm_up: Path, workdir: Path, workers: int = 1) -> dict[str, Any]:
    """maild's ingestion of every file in `folder` as `maild ingest --to --workers N` does it,
    in-process (with N-1 helpers forked before the clock, as `maild ingest` forks them
    before it stores).

    The messages of the `warm_up` folder go first through a database of their own, so
    that maild's code is imported and its templates compiled before the clock starts,
    as django-helpdesk's are; the rules are loaded before the clock too.
    """
    from maild.commands.intake import _STORE_GROUP, envelope_sender_of
    from maild.config import load_config
    from maild.intake import Arrival, Stored, store_batch, store_inbound
    from maild.log import configure_logging
    from maild.runtime import open_runtime
    from maild.workers.side_by_side import SideBySide

    configure_logging("error", "json")

    def runtime_in(name: str) -> Runtime:
        return open_runtime(load_config(env={}, overrides={
            "data_dir": str(workdir / name), "rules_dir": str(ROOT / "rules")}))

    def store(runtime: Runtime, label: str, raw: bytes) -> bool:
        return not store_inbound(runtime.engine, raw, transport="file",
                                 envelope_sender=envelope_sender_of(raw),
                                 recipients=[SUPPORT_ADDRESS], source=label).duplicate

    warming = runtime_in(f"maild-warm-up-{workers}")
    for path in sorted(warm_up.iterdir()):
        store(warming, str(path), path.read_bytes())
    warming.processor().run_pending()
    warming.engine.dispose()

    runtime = runtime_in(f"maild-{workers}")
    sources = [(str(path), path.read_bytes()) for path in sorted(folder.iterdir())]
    side_by_side = SideBySide(runtime.engine, runtime.processor, workers)  # reads the rules
    started = time.perf_counter()
    stored = 0
    # As `maild ingest` stores: groups of messages, one commit each.
    for first in range(0, len(sources), _STORE_GROUP):
        group = [Arrival(raw, "file", envelope_sender_of(raw), [SUPPORT_ADDRESS], label)
                 for label, raw in sources[first:first + _STORE_GROUP]]
        stored += sum(1 for result in store_batch(runtime.engine, group)
                      if isinstance(result, Stored) and not result.duplicate)
    store_seconds = time.perf_counter() - started
    done = side_by_side.run()
    seconds = time.perf_counter() - started
    outcome = done.counts
    assert not done.failures, done.failures
    runtime.engine.dispose()
    return {
        "workers": workers,
        "messages": len(sources),
        "seconds": seconds,
        "per_s": len(sources) / seconds if seconds else 0.0,
        "stored": stored,
        "store_seconds": store_seconds,
        "outcomes": {key: value for key, value in sorted(outcome.items()) if value},
        "database": "SQLite file, WAL, synchronous=FULL",
    }


def _median(values: list[Any], key: Callable[[Any], float]) -> Any:
    """The value whose `key` is the median (the lower middle one of an even number, as
    `statistics.median_low` takes it)."""
    return sorted(values, key=key)[(len(values) - 1) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES,
                        help=f"messages in the set (default {DEFAULT_MESSAGES})")
    parser.add_argument("--workers", default="1,2", metavar="LIST",
                        help="maild's runs: the processes of each (`maild ingest --workers`), "
                             "comma-separated (default 1,2); the ratio is the first's")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of one run of each system; every figure is the median "
                             "of the rounds' (default 3)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    counts = [int(count) for count in args.workers.split(",")]
    messages, mix = build_messages(args.messages)
    with tempfile.TemporaryDirectory(prefix="maild-vs-helpdesk-") as directory:
        workdir = Path(directory)
        folder = workdir / "messages"
        folder.mkdir()
        for number, mail in enumerate(messages, start=1):
            (folder / f"{number:06d}.eml").write_bytes(mail.raw)
        warm_up = workdir / "warm-up"
        warm_up.mkdir()
        for number, raw in enumerate(warm_up_messages(), start=1):
            (warm_up / f"{number:06d}.eml").write_bytes(raw)
        helpdesks: list[dict[str, Any]] = []
        rounds: dict[int, list[dict[str, Any]]] = {count: [] for count in counts}
        for number in range(args.rounds):
            helpdesks.append(run_helpdesk(folder, warm_up))
            round_dir = workdir / f"round-{number}"
            round_dir.mkdir()
            for count in counts:
                rounds[count].append(run_maild(folder, warm_up, round_dir, count))
    helpdesk = _median(helpdesks, lambda run: run["per_s"])
    runs = {count: _median(each, lambda run: run["per_s"]) for count, each in rounds.items()}
    maild = runs[counts[0]]
    # Each round's ratios, of a maild run and the django-helpdesk run just before it.
    round_ratios = {count: [run["per_s"] / base["per_s"] if base["per_s"] else 0.0
                            for run, base in zip(each, helpdesks, strict=True)]
                    for count, each in rounds.items()}
    ratios = {count: statistics.median_low(each) for count, each in round_ratios.items()}

    def ratio_of(run: dict[str, Any]) -> float | None:
        return ratios[run["workers"]] if helpdesk["per_s"] else None

    ratio = ratio_of(maild)
    print(f"{'':26} {'messages':>9} {'seconds':>9} {'msgs/s':>8} {'vs helpdesk':>12}")
    for count, run in runs.items():
        print(f"{f'maild, {count} process(es)':26} {run['messages']:9d} {run['seconds']:9.2f} "
              f"{run['per_s']:8.1f} {ratio_of(run) or 0:11.2f}x")
    print(f"{'django-helpdesk ' + helpdesk['django_helpdesk']:26} {helpdesk['messages']:9d} "
          f"{helpdesk['seconds']:9.2f} {helpdesk['per_s']:8.1f}")
    print(f"maild / django-helpdesk, one process each: {ratio:.2f}x" if ratio is not None
          else "no ratio")
    print("mix: " + ", ".join(f"{kind} {count}" for kind, count in mix.items()))
    print(f"maild: stored {maild['stored']} ({maild['messages'] - maild['stored']} already "
          f"stored: the same message twice) in {maild['store_seconds']:.2f} s, then "
          f"{maild['outcomes']}")
    for count, run in list(runs.items())[1:]:
        same = "the same" if run["outcomes"] == maild["outcomes"] else f"{run['outcomes']}"
        print(f"maild with {count} processes: {same}")
    print(f"django-helpdesk (Django {helpdesk['django']}): {helpdesk['outcomes']}, "
          f"tickets {helpdesk['tickets']}, follow-ups {helpdesk['followups']}, "
          f"e-mails built {helpdesk['emails_sent']}"
          + (f", errors {helpdesk['errors']}" if helpdesk["errors"] else ""))
    print("both: SQLite file database, WAL, synchronous=FULL; messages read before the clock")
    print(f"medians of {args.rounds} round(s), each figure's own (a rate and the ratio beside "
          "it may come from different rounds); each round's msgs/s (django-helpdesk, then "
          "maild by processes) and ratios:")
    for number, base in enumerate(helpdesks):
        print(f"  round {number + 1}: django-helpdesk {base['per_s']:.1f}; " + "; ".join(
            f"maild {count} process(es) {each[number]['per_s']:.1f} "
            f"({round_ratios[count][number]:.2f}x)" for count, each in rounds.items()))
    print(json.dumps({
        "maild_per_s": round(maild["per_s"], 1),
        "helpdesk_per_s": round(helpdesk["per_s"], 1),
        "vs_helpdesk": round(ratio, 2) if ratio is not None else None,
        "maild_processes_per_s": {str(count): round(run["per_s"], 1)
                                  for count, run in runs.items()},
        "vs_helpdesk_processes": {str(count): round(value, 2) for count, run in runs.items()
                                  if (value := ratio_of(run)) is not None},
        "rounds": args.rounds,
        "helpdesk_rounds_per_s": [round(run["per_s"], 1) for run in helpdesks],
        "maild_rounds_per_s": {str(count): [round(run["per_s"], 1) for run in each]
                               for count, each in rounds.items()},
        "vs_helpdesk_rounds": {str(count): [round(value, 2) for value in each]
                               for count, each in round_ratios.items()},
        "messages": len(messages),
        "mix": mix,
        "helpdesk_version": helpdesk["django_helpdesk"],
        "django_version": helpdesk["django"],
    }))


if __name__ == "__main__":
    main()
