"""Which guarded ports a set of Openings exposes to the internet: one source alone, or many together.

The same judge serves one resource (a rule, a security group with inline rules, a Hetzner
firewall) and one whole group or firewall as the stack shows it. A source that is public on its
own is reported on its own; the sources that are not are counted together (`cidr.union_is_public`)
over each stretch of guarded ports they all cover, so 64 /17s on 22 are caught wherever they sit.
Only known CIDR sources are judged: other kinds are judged by the stack policies, and unknowns are
named by the preview-unknowns policies.
"""

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import cidr, ports
from .model import ALL, TCP, Opening


@dataclass(frozen=True)
class Exposure:
    """Guarded ports that `openings` expose; `alone` when one source is public by itself."""

    ports: tuple[ports.Range, ...]
    openings: tuple[Opening, ...]
    alone: bool
    addresses: dict[int, int]  # per IP version: globally routable addresses the sources cover together


def exposures(openings: Iterable[Opening], ranges: Sequence[ports.Range]) -> list[Exposure]:
    judged = [o for o in openings if o.protocol in (TCP, ALL) and o.source.kind == "cidr" and o.source.known]
    out = []
    for opening in judged:
        hits = ports.overlap(opening.ports, ranges) if opening.source.is_public else []
        if hits:
            network = opening.source.network
            out.append(Exposure(tuple(hits), (opening,), True, cidr.union_addresses([network] if network else [])))
    together = _together([o for o in judged if not o.source.is_public], ranges)
    return out + ([together] if together else [])


def _together(openings: list[Opening], ranges: Sequence[ports.Range]) -> Exposure | None:
    """The stretches of guarded ports where sources below the threshold add up to a public amount."""
    hits: list[ports.Range] = []
    involved: dict[Opening, None] = {}
    most = {4: 0, 6: 0}
    for stretch, covering in _stretches(openings, ranges):
        counts = cidr.union_addresses(o.source.network for o in covering)
        if any(count >= cidr.threshold(version) for version, count in counts.items()):
            hits.append(stretch)
            involved.update(dict.fromkeys(covering))
            most = {v: max(most[v], counts[v]) for v in most}
    return Exposure(tuple(_merged(hits)), tuple(involved), False, most) if hits else None


def _stretches(openings: list[Opening], ranges: Sequence[ports.Range]):
    """(port range, the openings covering all of it), cut wherever an opening starts or ends."""
    for lo, hi in ranges:
        inside = [o for o in openings if o.ports[0] <= hi and lo <= o.ports[1]]
        if len(inside) < 2:  # one source below the threshold is below it
            continue
        cuts = sorted({lo, hi + 1} | {max(o.ports[0], lo) for o in inside} | {min(o.ports[1], hi) + 1 for o in inside})
        for start, end in itertools.pairwise(cuts):
            covering = [o for o in inside if o.ports[0] <= start and end - 1 <= o.ports[1]]
            if len(covering) > 1:
                yield (start, end - 1), covering


def _merged(stretches: list[ports.Range]) -> list[ports.Range]:
    out: list[ports.Range] = []
    for lo, hi in sorted(stretches):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def amount(exposure: Exposure) -> str:
    """`2,097,152 globally routable IPv4 addresses (public from 65,536, an IPv4 /16's worth)`."""
    parts = []
    if exposure.addresses.get(4, 0) >= cidr.threshold(4):
        parts.append(
            f"{exposure.addresses[4]:,} globally routable IPv4 addresses (public from {cidr.threshold(4):,}, "
            f"an IPv4 /{cidr.PUBLIC_PREFIX[4]}'s worth)"
        )
    if exposure.addresses.get(6, 0) >= cidr.threshold(6):
        parts.append(
            f"{exposure.addresses[6] / cidr.threshold(6):,.6g} IPv6 /{cidr.PUBLIC_PREFIX[6]}s' worth of globally "
            f"routable addresses (public from one)"
        )
    return " and ".join(parts)


def sources_by_rule(openings: Iterable[Opening], named: bool) -> str:
    """`fw rules[0] (sourceIps[0] = 1.0.0.0/17, sourceIps[1] = 1.0.128.0/17); ...`, every source, by rule."""
    rules: dict[tuple[str, str], list[str]] = {}
    for o in openings:
        where = f"{o.name} {o.rule}" if named else o.rule
        rules.setdefault((where, o.port_text()), []).append(f"{o.source.field} = {o.source.text}")
    return "; ".join(f"{where} ({text} from {', '.join(sources)})" for (where, text), sources in rules.items())
