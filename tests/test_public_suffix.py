"""maild cuts a domain at its public suffix exactly as tldextract does, from the same list."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import idna
import pytest
import tldextract

from maild.classify import public_suffix
from maild.classify.public_suffix import is_public_suffix, registered_domain
from maild.classify.sender import registrable_domain

_TLDEXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _domains_around(rule: str) -> list[str]:
    """Domains at, under and beside one rule of the list, in the forms mail writes them."""
    name = rule.lstrip("!").replace("*", "w")
    domains = [name, f"x.{name}", f"a.x.{name}", name.upper(), f"A.X.{name}".upper()]
    with contextlib.suppress(idna.IDNAError):
        domains.append("x." + idna.encode(name).decode("ascii"))
    return domains


def test_every_rule_of_the_list_cuts_domains_as_tldextract_does() -> None:
    rules = public_suffix._load().rules
    assert len(rules) > 5000
    for rule in sorted(rules):
        for domain in _domains_around(rule):
            expected = _TLDEXTRACT(domain)
            assert registered_domain(domain) == expected.top_domain_under_public_suffix, domain
            assert is_public_suffix(domain) == (bool(expected.suffix) and not expected.domain), (
                domain)


@pytest.mark.parametrize("domain", [
    "", ".", "se", ".se", "a..se", "x..ck", "ck", "b.ck", "www.ck", "a.www.ck", "localhost",
    "1.2.3.4", "[1.2.3.4]", "[::1]", "foo。example。se", "foo．example｡se", "räksmörgås.se",
    "XN--RKSMRGS-5WAO1O.SE", "city.kawasaki.jp", "x.city.kawasaki.jp", "no-such-tld",
    "a.b.c.d.e.f.blogspot.com", "xn--.se", "xn--zz.xn--p1ai",
])
def test_odd_domains_are_cut_as_tldextract_cuts_them(domain: str) -> None:
    expected = _TLDEXTRACT(domain)
    assert registered_domain(domain) == expected.top_domain_under_public_suffix
    assert is_public_suffix(domain) == (bool(expected.suffix) and not expected.domain)


def test_the_registrable_domain_is_found_without_loading_an_http_client() -> None:
    script = ("import sys; from maild.classify.sender import registrable_domain; "
              "assert registrable_domain('it.foretag.se') == 'foretag.se'; "
              "print(sorted({'tldextract', 'requests'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"
    assert registrable_domain("support.it.foretag.se") == "foretag.se"
