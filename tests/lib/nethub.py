#!/usr/bin/env python3
"""A learning Ethernet switch for QEMU `-netdev dgram` guests, on loopback UDP only.

Usage: nethub.py BASE_PORT NODES. Listens on 127.0.0.1:BASE_PORT; node i's NIC sends
from 127.0.0.1:BASE_PORT+1+i. Frames go to the port that owns the destination MAC, or
to every other node for broadcast, multicast and unknown destinations.
"""
import socket
import sys


def main() -> None:
    base, nodes = int(sys.argv[1]), int(sys.argv[2])
    ports = [base + 1 + i for i in range(nodes)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", base))
    owner = {}  # MAC -> port
    while True:
        frame, (host, port) = sock.recvfrom(65536)
        if host != "127.0.0.1" or port not in ports or len(frame) < 14:
            continue
        owner[frame[6:12]] = port
        dst = frame[0:6]
        if not dst[0] & 1 and dst in owner:
            if owner[dst] != port:
                sock.sendto(frame, ("127.0.0.1", owner[dst]))
            continue
        for p in ports:
            if p != port:
                sock.sendto(frame, ("127.0.0.1", p))


if __name__ == "__main__":
    main()
