"""Assembling one maild instance from its configuration: database, rules, worker, outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from maild.cluster.heartbeat import ClaimHeartbeat
from maild.config import Config
from maild.db import open_database
from maild.processing import Processor
from maild.respond.delivery import Transport
from maild.respond.maildir import MaildirTransport
from maild.respond.outbox import FlushReport, flush_outbox
from maild.respond.policy import AckLimits
from maild.respond.relay import SmtpRelayTransport
from maild.routing.load import load_rules
from maild.routing.model import Rules
from maild.tickets.numbering import TicketNumbering


@dataclass
class Runtime:
    """The parts a command or the daemon works with; `rules` is replaced whole on reload."""

    config: Config
    engine: Engine
    numbering: TicketNumbering
    _rules: Rules | None = field(default=None, repr=False)

    @property
    def rules(self) -> Rules:
        """The current rules, loaded on first use (raises `RulesError` when they are broken)."""
        if self._rules is None:
            self._rules = load_rules(self.config.rules_dir)
        return self._rules

    def processor(self, rules: Callable[[], Rules] | None = None) -> Processor:
        """A processing worker that reads the current rules (or `rules()`) once per batch."""
        return make_processor(self.config, self.engine, rules or (lambda: self.rules))

    def transport(self) -> Transport:
        """The outbound transport the configuration names."""
        return make_transport(self.config)

    def flush_outbox(self) -> FlushReport:
        """Deliver what is due in the outbox, with the configured transport and lifetime."""
        return deliver_due(self.config, self.engine)


def make_processor(config: Config, engine: Engine, rules: Callable[[], Rules], *,
                   beside_listeners: bool = False) -> Processor:
    """The processing worker the configuration describes, on `engine`, reading `rules()`.

    `beside_listeners`: it runs in the daemon's own process, beside the event loop of its
    listeners; it then reads each message in its write turn (`Processor.reads_ahead`).
    """
    lease = timedelta(seconds=config.lease_seconds)
    return Processor(
        engine=engine, rules=rules, numbering=TicketNumbering(config.ticket_prefix),
        mail_domain=config.mail_domain, max_attempts=config.max_attempts, lease=lease,
        heartbeat=ClaimHeartbeat(engine, lease), limits=ack_limits(config),
        reopen_within=timedelta(days=config.reopen_days),
        batch_size=config.processing_batch_size, reads_ahead=not beside_listeners)


def ack_limits(config: Config) -> AckLimits:
    """The acknowledgement limits the configuration sets."""
    return AckLimits(max_per_hour=config.ack_max_per_hour, max_per_day=config.ack_max_per_day,
                     domain_max_per_hour=config.ack_domain_max_per_hour,
                     domain_max_per_day=config.ack_domain_max_per_day,
                     duplicate_window=timedelta(hours=config.ack_duplicate_window_hours),
                     suppression=timedelta(days=config.bounce_suppression_days))


def make_transport(config: Config) -> Transport:
    """The maildir transport, or the SMTP relay when `outbox.transport = "smtp"`."""
    if config.relay is not None:
        return SmtpRelayTransport(config.relay, hostname=config.smtp_hostname)
    return MaildirTransport(config.outbox_maildir)


def deliver_due(config: Config, engine: Engine,
                stop: Callable[[], bool] | None = None) -> FlushReport:
    """One pass of the outbox worker under `config` (ending early once `stop()` is true)."""
    return flush_outbox(engine, make_transport(config), limit=config.outbox_batch_size,
                        stop=stop,
                        lifetime=timedelta(hours=config.outbox_lifetime_hours),
                        lease=timedelta(seconds=config.outbox_lease_seconds))


def open_runtime(config: Config) -> Runtime:
    """Open (and migrate) the database; rules are loaded when first needed."""
    engine = open_database(config.database_url)
    return Runtime(config=config, engine=engine, numbering=TicketNumbering(config.ticket_prefix))
