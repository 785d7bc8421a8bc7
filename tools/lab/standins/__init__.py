"""Stand-ins that really speak the protocols, run inside the lab's namespaces.

Standard library only, so each starts in a fraction of a second; every one writes what it saw
as JSON lines, which the checks read. None of them is a copy of the program's files: they read
the rendered files (policies, units) the way the real daemons would.
"""
