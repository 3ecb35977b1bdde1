"""Small audit logs for the live view's tests, built with tests.builders."""

from __future__ import annotations

from tests.builders import exec_lines, join

#: Argument bytes that would clear the screen, set the title and inject rich markup.
HOSTILE_ARG = "\x1b[2J\x1b]0;pwned\x07\x1b]2;pwned\x07\x1b]8;;http://x\x07[bold red]x[/]"


def scenario_log(*, hostile: bool = True, long_arg: bool = True) -> bytes:
    """init → bash → kexec -e (alert), kdumpctl → kexec (excluded), kexec -p (args)."""
    t = "17000000{:02d}.000"
    lines = exec_lines(
        1,
        t=t.format(0),
        pid=1,
        ppid=0,
        comm="systemd",
        exe="/usr/lib/systemd/systemd",
        args=("/sbin/init",),
    )
    lines += exec_lines(
        2, t=t.format(1), pid=50, ppid=1, comm="bash", exe="/usr/bin/bash", args=("bash",)
    )
    lines += exec_lines(3, t=t.format(2), pid=51, ppid=50, args=("kexec", "-e"))
    lines += exec_lines(
        4,
        t=t.format(3),
        pid=60,
        ppid=1,
        comm="kdumpctl",
        exe="/usr/bin/bash",
        args=("/bin/bash", "/usr/bin/kdumpctl"),
    )
    lines += exec_lines(5, t=t.format(4), pid=61, ppid=60, args=("kexec", "-l", "/boot/vmlinuz"))
    lines += exec_lines(6, t=t.format(5), pid=62, ppid=50, args=("kexec", "-p", "/boot/vmlinuz"))
    serial = 7
    if hostile:
        # The kernel hex-encodes an argument holding control characters or quotes.
        quoted = f'a2="{HOSTILE_ARG}"'.encode()
        hexed = b"a2=" + HOSTILE_ARG.encode().hex().upper().encode()
        lines += [
            line.replace(quoted, hexed)
            for line in exec_lines(
                serial, t=t.format(6), pid=70, ppid=50, args=("kexec", "-l", HOSTILE_ARG)
            )
        ]
        serial += 1
    if long_arg:
        lines += exec_lines(
            serial, t=t.format(7), pid=71, ppid=50, args=("kexec", "-u", "A" * 400 + "END")
        )
    return join(lines)
