#!/usr/bin/env python3
"""Toggles one GPIO line as fast as the GPIO character device allows and prints the
rate: `gpio-toggle.py CHIP LINE COUNT` -> "toggles=N seconds=S per_second=R".

The raw speed of a GPIO controller (for make bench: the emulated cable's limit, each
toggle one virtio request and one line transition). Uses the v2 uAPI of
<linux/gpio.h> directly (no libgpiod needed)."""
import fcntl
import os
import struct
import sys
import time


def iowr(nr, size):
    return (3 << 30) | (size << 16) | (0xB4 << 8) | nr


GPIO_V2_GET_LINE_IOCTL = iowr(0x07, 592)  # struct gpio_v2_line_request
GPIO_V2_LINE_SET_VALUES_IOCTL = iowr(0x0F, 16)  # struct gpio_v2_line_values
GPIO_V2_LINE_FLAG_OUTPUT = 1 << 3


def main():
    chip, line, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    fd = os.open(f"/dev/gpiochip{chip}", os.O_RDWR)
    req = bytearray(592)
    struct.pack_into("I", req, 0, line)  # offsets[0]
    req[256:256 + 12] = b"gpio-toggle\0"  # consumer
    struct.pack_into("Q", req, 288, GPIO_V2_LINE_FLAG_OUTPUT)  # config.flags
    struct.pack_into("I", req, 288 + 272, 1)  # num_lines
    fcntl.ioctl(fd, GPIO_V2_GET_LINE_IOCTL, req)
    line_fd = struct.unpack_from("i", req, 588)[0]
    start = time.monotonic()
    for i in range(count):
        fcntl.ioctl(line_fd, GPIO_V2_LINE_SET_VALUES_IOCTL, struct.pack("QQ", (i + 1) & 1, 1))
    secs = time.monotonic() - start
    os.close(line_fd)
    os.close(fd)
    print(f"toggles={count} seconds={secs:.3f} per_second={count / secs:.1f}")


if __name__ == "__main__":
    main()
