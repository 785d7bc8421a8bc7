"""Settings and the policy pack count "the internet" alike, so settings refuse what the pack would refuse.

The program may not import the pack (it stands alone), so components/exposure.py writes the same rule
again; Hypothesis holds the two to the same answer over single networks and over sets that add up.
"""

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st
from kumoguard import cidr

from components import exposure


@st.composite
def networks(draw):
    version = draw(st.sampled_from([4, 6]))
    bits = 32 if version == 4 else 128
    prefix = draw(st.integers(0, bits))
    # Mostly near the threshold and inside the blocks that are not global, where a disagreement would hide.
    address = draw(
        st.one_of(
            st.integers(0, 2**bits - 1),
            st.sampled_from([int(n.network_address) for n in exposure.NOT_GLOBAL if n.version == version]),
        )
    )
    return ipaddress.ip_network((address, prefix), strict=False)


@settings(max_examples=400, deadline=None)
@given(st.lists(networks(), min_size=1, max_size=12))
def test_settings_and_the_pack_agree_on_what_is_public(nets):
    assert exposure.public(nets) == cidr.is_public_together([str(n) for n in nets])


def test_the_pack_examples_hold_here():
    """The README's examples of the pack's rule ("Policy pack"): public, and not."""
    public = ["0.0.0.0/1", "4.0.0.0/6", "2000::/3"]
    private = ["10.0.0.0/8", "fc00::/7", "198.51.100.7/32"]
    assert all(exposure.public([ipaddress.ip_network(n)]) for n in public)
    assert not any(exposure.public([ipaddress.ip_network(n)]) for n in private)
    seventeens = [ipaddress.ip_network(f"11.{2 * i}.0.0/17") for i in range(64)]  # 64 public /17s: 2M addresses
    assert not exposure.public(seventeens[:1]) and exposure.public(seventeens)
