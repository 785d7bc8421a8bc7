"""Listeners on every (address, port) no service holds, so a probe shows what a firewall lets through.

A connection is accepted and closed at once: the prober only needs the handshake to complete.
`python -m tools.lab.standins.sink ADDRESS:PORT ...`
"""

import selectors
import socket
import sys

from tools.lab.standins.common import stop_on_term


def main(*endpoints: str) -> None:
    stop_on_term()
    selector = selectors.DefaultSelector()
    for endpoint in endpoints:
        address, _, port = endpoint.rpartition(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, int(port)))
        s.listen(64)
        s.setblocking(False)
        selector.register(s, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            try:
                conn, _ = key.fileobj.accept()
                conn.close()
            except OSError:
                pass


if __name__ == "__main__":
    main(*sys.argv[1:])
