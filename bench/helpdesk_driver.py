"""Feed a folder of messages through django-helpdesk's own e-mail ingestion and time it.

Runs inside the virtual environment that bench/vs_helpdesk.py makes for django-helpdesk
(it never imports maild). It writes a minimal Django project into a temporary folder:
a settings module with one SQLite file database in WAL mode with synchronous=FULL (the
durability maild uses), Django's autocommit as django-helpdesk runs under its poller,
attachments stored on disk under MEDIA_ROOT, and e-mail "sent" to Django's in-memory
backend (every acknowledgement is rendered and built, none leaves the machine). It
migrates, creates one Queue for support@example.se with IMAP e-mail settings (never
contacted), and then hands every message to `helpdesk.email.extract_email_metadata`,
the function django-helpdesk's IMAP, POP3 and local-directory pollers call for each
message they fetch, with the message decoded exactly as its IMAP poller decodes it.

Usage: python helpdesk_driver.py FOLDER [--address support@example.se] [--warm-up FOLDER]
Prints one JSON object: the time for the whole folder, messages/s and what was made.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

SETTINGS = '''
from pathlib import Path
HERE = Path(__file__).resolve().parent
SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "Europe/Stockholm"
ALLOWED_HOSTS = ["*"]
SITE_ID = 1
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.sites",
    "django.contrib.humanize",
    "rest_framework",
    "helpdesk",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(HERE / "helpdesk.sqlite3"),
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "bench_urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
    ]},
}]
MEDIA_ROOT = str(HERE / "media")
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "support@example.se"
HELPDESK_TEAMS_MODE_ENABLED = False
LOGGING_CONFIG = None
'''

URLS = '''
from django.urls import include, path
urlpatterns = [path("helpdesk/", include("helpdesk.urls", namespace="helpdesk"))]
'''


def setup_django(workdir: Path) -> None:
    """Write the settings and URL modules into `workdir`, start Django and migrate."""
    (workdir / "bench_settings.py").write_text(SETTINGS)
    (workdir / "bench_urls.py").write_text(URLS)
    (workdir / "media").mkdir()
    sys.path.insert(0, str(workdir))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def make_queue(address: str) -> Any:
    """The support queue, with the e-mail settings a poller of `address` would have."""
    from helpdesk.models import Queue

    return Queue.objects.create(
        title="Support", slug="support", email_address=address, allow_email_submission=True,
        email_box_type="imap", email_box_host="127.0.0.1", email_box_port=143,
        email_box_ssl=False, email_box_user="support", email_box_pass="unused",
        email_box_imap_folder="INBOX", email_box_interval=1, logging_type="none",
        locale="en",
    )


def quiet_logger(slug: str) -> logging.Logger:
    """The queue's logger as the poller sets it up for logging_type "none": no output."""
    logger = logging.getLogger("django.helpdesk.queue." + slug)
    logger.handlers = [logging.NullHandler()]
    logger.propagate = False
    logging.getLogger("helpdesk").propagate = False
    return logger


def ingest(folder: Path, address: str, warm_up: Path | None) -> dict[str, Any]:
    """Every message of `folder` (in name order) through helpdesk's ingestion; the figures.

    The messages of the `warm_up` folder go through first, before the clock, and the
    tickets they made are deleted again: one-time costs of first use are not counted.
    """
    from django.core import mail
    from django.utils import encoding
    from helpdesk.email import extract_email_metadata
    from helpdesk.exceptions import DeleteIgnoredTicketException, IgnoreTicketException
    from helpdesk.models import FollowUp, Ticket

    queue = make_queue(address)
    logger = quiet_logger(queue.slug)
    messages = [path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()]
    if warm_up is not None:
        for path in sorted(warm_up.iterdir()):
            extract_email_metadata(message=encoding.force_str(path.read_bytes()), queue=queue,
                                   logger=logger)
        Ticket.objects.all().delete()
    outcomes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    mail.outbox = []
    started = time.perf_counter()
    for raw in messages:
        # As helpdesk.email.imap_sync decodes what it fetched.
        full_message = encoding.force_str(raw, errors="replace")
        try:
            ticket = extract_email_metadata(message=full_message, queue=queue, logger=logger)
        except (IgnoreTicketException, DeleteIgnoredTicketException):
            outcomes["ignored"] += 1
        except Exception as error:  # the poller would stop the queue's run here
            outcomes["failed"] += 1
            errors[f"{type(error).__name__}: {str(error)[:80]}"] += 1
        else:
            outcomes["processed" if ticket else "not_processed"] += 1
    seconds = time.perf_counter() - started
    return {
        "messages": len(messages),
        "seconds": seconds,
        "per_s": len(messages) / seconds if seconds else 0.0,
        "outcomes": dict(outcomes),
        "errors": dict(errors.most_common(5)),
        "tickets": Ticket.objects.count(),
        "followups": FollowUp.objects.count(),
        "emails_sent": len(mail.outbox),
        "django": metadata.version("django"),
        "django_helpdesk": metadata.version("django-helpdesk"),
        "database": "SQLite file, WAL, synchronous=FULL, Django autocommit",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("folder", type=Path, help="one message per file, taken in name order")
    parser.add_argument("--address", default="support@example.se",
                        help="the queue's support address")
    parser.add_argument("--warm-up", type=Path, metavar="FOLDER",
                        help="messages to handle before the clock")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-") as directory:
        setup_django(Path(directory))
        result = ingest(args.folder, args.address, args.warm_up)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
