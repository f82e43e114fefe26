"""Where a domain's public suffix begins: `it.foretag.se` → `se`, `a.b.co.uk` → `co.uk`.

The rules are the ICANN section of the Public Suffix List that tldextract ships,
read as text without importing tldextract: its import loads an HTTP client that
maild never uses, and its two tries of the list take about ten times the memory
of the two sets of strings kept here. Matching is tldextract's: labels are
compared from the right, lower-cased (an `xn--` label decoded), as long as they
follow a rule; a wildcard rule (`*.ck`) takes one more label unless an exception
(`!www.ck`) names it; a domain whose labels follow no rule to its end has no
public suffix.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_SNAPSHOT = ".tld_set_snapshot"  # the list as tldextract ships it
_RULE = re.compile(r"^(?P<suffix>[.*!]*\w[\S]*)", re.UNICODE | re.MULTILINE)
_PRIVATE_SECTION = "// ===BEGIN PRIVATE DOMAINS==="
# Ideographic and full-width full stops separate labels like "." (UTS 46).
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


@dataclass(frozen=True)
class _Rules:
    """The rules (`co.uk`, `*.ck`, `!www.ck`), and every rule's trailing labels as well."""

    rules: frozenset[str]
    paths: frozenset[str]   # "uk", "co.uk", "ck", "*.ck", "!www.ck": what a match may pass


def snapshot_path() -> Path:
    """The Public Suffix List file inside the installed tldextract package."""
    spec = importlib.util.find_spec("tldextract")  # finds the package, does not import it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the public suffix list comes with tldextract, which is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / _SNAPSHOT


@cache
def _load() -> _Rules:
    text = snapshot_path().read_text(encoding="utf-8").partition(_PRIVATE_SECTION)[0]
    rules = frozenset(match.group("suffix") for match in _RULE.finditer(text))
    paths = {".".join(labels[start:]) for labels in (rule.split(".") for rule in rules)
             for start in range(len(labels))}
    return _Rules(rules, frozenset(paths))


def _label_key(label: str) -> str:
    lowered = label.lower()
    if lowered.startswith("xn--"):
        import idna  # only for a label still in A-label form: rare, and idna is large

        try:
            return str(idna.decode(lowered))
        except (UnicodeError, IndexError):
            pass
    return lowered


def _suffix_start(labels: list[str]) -> int | None:
    """The index of the first label of the public suffix of `labels`; None when there is none."""
    known = _load()
    start: int | None = None
    path = ""
    for index in range(len(labels) - 1, -1, -1):
        key = _label_key(labels[index])
        longer = f"{key}.{path}" if path else key
        if longer in known.paths:
            path = longer
            if longer in known.rules:
                start = index
            continue
        if (f"*.{path}" if path else "*") in known.paths:
            exception = f"!{key}.{path}" if path else f"!{key}"
            return index + 1 if exception in known.paths else index
        break
    return start


def _split(domain: str) -> tuple[str, str]:
    """`domain` as (the label before its public suffix, the suffix); "" for what it lacks."""
    labels = domain.translate(_DOTS).split(".")
    start = _suffix_start(labels)
    if start is None:
        return labels[-1], ""
    return (labels[start - 1] if start else ""), ".".join(labels[start:])


def registered_domain(domain: str) -> str:
    """The public suffix with the one label before it (`foretag.se`); "" when either is missing."""
    name, suffix = _split(domain)
    return f"{name}.{suffix}" if name and suffix else ""


def is_public_suffix(domain: str) -> bool:
    """Whether `domain` is itself a public suffix (`se`, `co.uk`), which no company owns."""
    name, suffix = _split(domain)
    return bool(suffix) and not name
