"""`make verify`: the guide's verification checklist run against a live stack, plus a drift audit.

Three groups of checks: `probes` from wherever the tool runs (a network in trustedCidrs: 443 admits no
other), `inside` from the hosts themselves (SSM Run Command on AWS, SSH on Hetzner), with each host's
applied configuration version against the one the stack wants, and `drift`, which reads the live
firewalls through the cloud APIs and compares them with the matrix table.
"""
