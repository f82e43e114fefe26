"""Complaints: abuse and spam feedback reports (ARF, RFC 5965) and their near relatives.

`complaint_signal` names the evidence that a message is a feedback report
about mail someone received, or returns None. Reports are recognised also
when they are not perfectly formed: a report-type on the wrong media type or
with a broken MIME structure, or a feedback-report part inside another
container. Report fields quoted in a message's text do not count: that is
how a person asks what a complaint they received means.
"""

from __future__ import annotations

import re

from maild.classify.evidence import report_type
from maild.parse import ParsedMail

_FEEDBACK_REPORT_PARAM = re.compile(r"report-type\s*=\s*\"?feedback-report\b", re.IGNORECASE)
_FEEDBACK_PARTS = frozenset({"message/feedback-report", "message/global-feedback-report"})
# Microsoft's Junk Mail Reporting Program sends the complaint with this subject and
# the reported message attached, but no ARF structure.
_JMRP_SUBJECT = re.compile(r"^\s*complaint about message from [0-9a-f.:]+\s*$", re.IGNORECASE)


def complaint_signal(mail: ParsedMail) -> str | None:
    """The evidence that `mail` is a spam or abuse complaint (a feedback report), or None."""
    if report_type(mail) == "feedback-report":
        return "complaint report: multipart/report; report-type=feedback-report (ARF)"
    if _FEEDBACK_REPORT_PARAM.search(mail.header("Content-Type") or ""):
        return (f"complaint report: report-type=feedback-report on {mail.content_type} "
                "(malformed ARF)")
    for content_type in (*mail.part_types, *(a.content_type for a in mail.attachments)):
        if content_type in _FEEDBACK_PARTS:
            return f"complaint report: a {content_type} part (ARF)"
    if _JMRP_SUBJECT.match(mail.subject):
        return (f"complaint report of Microsoft's Junk Mail Reporting Program: subject "
                f"{mail.subject[:80]!r}")
    return None

