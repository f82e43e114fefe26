"""Which Authentication-Results headers maild believes (RFC 8601 section 5).

Anyone can write an Authentication-Results header into a message, even one
that names the organisation's MTA. The MTA should remove such forgeries on
arrival; maild does not rely on it. Headers are prepended by each host that
handles a message, so only what stands above the organisation's own
`Received:` line can have been written by the organisation:

- maild's own `Received:` lines at the top (SMTP/LMTP intake) are skipped;
- a header is believed only when it stands above the first other `Received:`
  line (or the first `received_hops + 1` lines, when the organisation's own
  relays add more of them after authentication), and
- its authserv-id is one of the configured trusted ids.

Everything else is ignored, and the record says why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from maild.routing.model import TrustSettings
from maild.trust.authresults import MethodResult, parse_authentication_results

MAX_HEADERS_SCANNED = 500
_MAILD_RECEIVED = re.compile(r"\bby\s+\S+\s+\(maild\)", re.IGNORECASE)


@dataclass(frozen=True)
class AuthEvidence:
    """The believed method results, the ids that wrote them, and what was ignored and why."""

    results: tuple[MethodResult, ...]
    authserv_ids: tuple[str, ...]
    ignored: tuple[str, ...]

    def passed(self, method: str) -> list[MethodResult]:
        """The believed results of `method` that are `pass`."""
        return [result for result in self.results
                if result.method == method and result.result == "pass"]

    def summary(self, method: str) -> str | None:
        """The results of `method` as text ("pass", "fail, pass"), None when none was given."""
        found = [result.result for result in self.results if result.method == method]
        return ", ".join(dict.fromkeys(found)) if found else None


def believed_results(headers: Sequence[tuple[str, str]], settings: TrustSettings
                     ) -> AuthEvidence:
    """The Authentication-Results from `headers` (top first) that the trusted MTA wrote."""
    results: list[MethodResult] = []
    ids: list[str] = []
    ignored: list[str] = []
    received = 0
    for name, value in headers[:MAX_HEADERS_SCANNED]:
        lowered = name.lower()
        if lowered == "received":
            if received == 0 and not ids and not ignored and _MAILD_RECEIVED.search(value):
                continue  # maild's own intake line stands above the MTA's headers
            received += 1
            continue
        if lowered != "authentication-results":
            continue
        parsed = parse_authentication_results(value)
        if parsed is None:
            ignored.append("an Authentication-Results header that is not RFC 8601")
        elif parsed.authserv_id not in settings.authserv_ids:
            ignored.append(f"{parsed.authserv_id}: not a trusted authserv-id")
        elif received > settings.received_hops:
            ignored.append(f"{parsed.authserv_id}: stands below the trusted MTA's Received "
                           "line (forged or copied)")
        else:
            results.extend(parsed.results)
            ids.append(parsed.authserv_id)
    return AuthEvidence(results=tuple(results), authserv_ids=tuple(dict.fromkeys(ids)),
                        ignored=tuple(ignored))
