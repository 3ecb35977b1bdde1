"""kexecwatch's kexec rules through the whole pipeline: kdump flows, evasions, reasons."""

from __future__ import annotations

import pytest

from kexecwatch.core.detect.detections.common import dirname, kdump_tool
from tests.builders import exec_lines
from tests.core.detect.detections.lines import KDUMPCTL, alerts, by_rule, kexec, script, syscall

SHELL = exec_lines(1, pid=10, comm="bash", exe="/usr/bin/bash", args=("bash",))
ON_CRASH_X86_64 = "3e0001"  # KEXEC_ARCH_X86_64 << 16 | KEXEC_ON_CRASH


# -- the kdump service flows: silent, stated exactly in common.py and the README ------------


def test_rhel_kdumpctl_start_panic_load_with_its_syscall_is_silent() -> None:
    lines = (
        script(1, 20, KDUMPCTL, "start")
        + kexec(2, 21, 20, "-p", "--command-line=x", "--initrd=/boot/i", "/boot/K")
        + syscall(3, 21, 20, 320, exit_code=0, success=True)
    )
    assert alerts(lines) == []


def test_rhel_kdumpctl_stop_panic_unload_is_silent() -> None:
    lines = (
        script(1, 20, KDUMPCTL, "stop")
        + kexec(2, 21, 20, "-s", "-p", "-u")
        + syscall(3, 21, 20, 320, success=True, exit_code=0)
    )
    assert alerts(lines) == []


def test_suse_unload_sh_with_kexec_load_fallback_is_silent() -> None:
    lines = (
        script(1, 20, "/usr/lib/kdump/unload.sh")
        + kexec(2, 21, 20, "-a", "-p", "-u")
        + syscall(3, 21, 20, 320, exit_code=-38)
        + syscall(4, 21, 20, 246, a=("0", "0", "0", ON_CRASH_X86_64), success=True, exit_code=0)
    )
    assert alerts(lines) == []


def test_debian_kdump_config_unload_alerts_only_upstream() -> None:
    # v7 does not exclude kdump-config and -u is listed: its false positive, kept for parity.
    lines = (
        script(1, 20, "/usr/sbin/kdump-config", "unload")
        + kexec(2, 21, 20, "-p", "-u")
        + syscall(3, 21, 20, 246, a=("0", "0", "0", ON_CRASH_X86_64), success=True, exit_code=0)
    )
    assert [name for name, _ in by_rule(alerts(lines))] == ["upstream"]


def test_kdump_tool_run_through_an_interpreter_is_silent_for_kexecwatch() -> None:
    lines = exec_lines(
        1, pid=20, comm="bash", exe="/usr/bin/bash", args=("bash", KDUMPCTL, "stop")
    ) + kexec(2, 21, 20, "-s", "-p", "-u")
    assert [name for name, _ in by_rule(alerts(lines))] == ["upstream"]  # v7: parent is bash
    assert alerts(lines, ruleset="kexecwatch") == []


@pytest.mark.parametrize(
    ("parent_args", "expected"),
    [
        (["/bin/bash", "/usr/bin/kdumpctl", "stop"], "/usr/bin/kdumpctl"),
        (["/usr/sbin/kdump-config", "unload"], "/usr/sbin/kdump-config"),
        (["/bin/sh", "/sbin/kdump-config"], "/sbin/kdump-config"),
        (["bash", "-c", "kexec -p K; :", "/usr/bin/kdumpctl"], None),
        (["/bin/bash", "/srv/kdumpctl"], None),
        (None, None),
    ],
)
def test_kdump_tool_is_the_packaged_path_first_or_second(
    parent_args: list[str] | None, expected: str | None
) -> None:
    parent = {"pid": 1} if parent_args is None else {"pid": 1, "args": parent_args}
    assert kdump_tool({"process": {"parent": parent}}) == expected


# -- what is not a kdump flow ---------------------------------------------------------------


def test_parent_args_stuffing_does_not_make_a_kdump_flow() -> None:
    lines = exec_lines(
        1,
        pid=20,
        comm="bash",
        exe="/usr/bin/bash",
        args=("bash", "-c", "kexec -p /boot/K; :", KDUMPCTL),
    ) + kexec(2, 21, 20, "-p", "/boot/K", argv0="kexec")
    assert by_rule(alerts(lines)) == [
        (
            "kexec-args-evasion",
            "kexec -p /boot/K parsed as panic-load; upstream rule misses unlisted option -p",
        )
    ]


def test_a_script_named_kdumpctl_elsewhere_is_a_masquerade() -> None:
    lines = script(1, 20, "/tmp/kdumpctl") + kexec(2, 21, 20, "-s", "-p", "-u")
    [(name, reason)] = by_rule(alerts(lines))
    assert name == "kexec-parent-masquerade"
    assert reason == (
        "kexec -s -p -u parsed as panic-unload; parent kdumpctl (/bin/bash /tmp/kdumpctl): "
        "the parent is not a packaged kdump tool; upstream rule excludes it by name"
    )


def test_the_packaged_kdumpctl_loading_a_normal_kernel_is_a_masquerade() -> None:
    lines = script(1, 20, KDUMPCTL) + kexec(2, 21, 20, "-l", "/boot/K")
    [(name, reason)] = by_rule(alerts(lines))
    assert name == "kexec-parent-masquerade"
    assert "not a panic-kernel load or unload" in reason


def test_a_fake_kdumpctl_panic_load_is_an_evasion_and_its_syscall_alerts() -> None:
    lines = (
        script(1, 20, "/tmp/kdumpctl")
        + kexec(2, 21, 20, "-p", "/boot/K")
        + syscall(3, 21, 20, 320, success=True, exit_code=0)
    )
    assert [name for name, _ in by_rule(alerts(lines))] == ["kexec-args-evasion", "kexec-syscall"]


def test_kexec_load_without_the_on_crash_flag_from_kdumpctl_alerts() -> None:
    lines = script(1, 20, KDUMPCTL) + syscall(2, 21, 20, 246, a=("0", "3", "7f00", "3e0000"))
    [(name, reason)] = by_rule(alerts(lines))
    assert name == "kexec-syscall"
    assert reason.startswith(
        "kexec_load (load) by kexec (/usr/sbin/kexec, pid 21) failed with EPERM"
    )


def test_kexec_file_load_by_another_program_under_kdumpctl_alerts() -> None:
    # Only kexec's own argv may say "panic": python3's argv is not kexec's.
    lines = (
        script(1, 20, KDUMPCTL)
        + exec_lines(
            2, pid=21, ppid=20, comm="python3", exe="/usr/bin/python3", args=("python3", "-p", "-u")
        )
        + syscall(3, 21, 20, 320, comm="python3", exe="/usr/bin/python3", exit_code=-22)
    )
    [(name, reason)] = by_rule(alerts(lines))
    assert name == "kexec-syscall"
    assert "(caller: python3 -p -u)" in reason and "failed with EINVAL" in reason


# -- syscalls: any process, any outcome, per architecture -----------------------------------


@pytest.mark.parametrize(
    ("arch", "number", "call"),
    [
        ("c000003e", 246, "kexec_load"),
        ("c000003e", 320, "kexec_file_load"),
        ("40000003", 283, "kexec_load"),
        ("c00000b7", 104, "kexec_load"),
        ("c00000b7", 294, "kexec_file_load"),
    ],
)
def test_syscalls_alert_per_architecture(arch: str, number: int, call: str) -> None:
    lines = SHELL + syscall(
        2, 30, 10, number, arch=arch, comm="loader", exe="/tmp/loader", success=True, exit_code=0
    )
    [(name, reason)] = by_rule(alerts(lines))
    assert name == "kexec-syscall"
    assert reason.startswith(call) and "by loader (/tmp/loader, pid 30) succeeded" in reason


def test_kexec_file_load_document_carries_the_callers_own_argv() -> None:
    lines = SHELL + kexec(2, 30, 10, "-sl", "/boot/K", argv0="kexec") + syscall(3, 30, 10, 320)
    found = alerts(lines)
    assert [name for name, _ in by_rule(found)] == ["kexec-args-evasion", "kexec-syscall"]
    doc = found[1].to_document()
    assert doc["process"]["args"] == ["kexec", "-sl", "/boot/K"]
    assert doc["auditd"]["args_source"] == "event"
    assert doc["auditd"]["self_exec_id"] == "1700000000.000:2"
    assert doc["auditd"]["data"] == {"a0": "0", "a1": "0", "a2": "0", "a3": "0"}
    assert doc["event"]["type"] == ["info"] and doc["event"]["outcome"] == "failure"
    assert "(kexec asked for load)" in found[1].reason


def test_upstream_ruleset_ignores_syscalls() -> None:
    assert alerts(SHELL + syscall(2, 30, 10, 320), ruleset="upstream") == []


# -- evasions: one alert each, never on top of the upstream rule ----------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("--unl",),
        ("-sl", "K"),
        ("-le", "K"),
        ("-lf", "K"),
        ("-f", "K"),
        ("K",),
        ("--load-panic", "K"),
        ("--load-preserve-context", "K"),
        ("--reuse-cmdline", "K"),
        ("-s", "K"),
        ("-c", "K"),
    ],
)
def test_evasive_arguments_alert_once(args: tuple[str, ...]) -> None:
    found = by_rule(alerts(SHELL + kexec(2, 30, 10, *args, argv0="kexec")))
    assert [name for name, _ in found] == ["kexec-args-evasion"]
    assert found[0][1].startswith(f"kexec {' '.join(args)} parsed as ")
    assert "upstream rule misses" in found[0][1]


@pytest.mark.parametrize(
    "args", [("-l", "K"), ("--unload",), ("--load=K",), ("--version",), ("-S",), ("-l",), ()]
)
def test_listed_info_and_failing_arguments_get_no_extended_alert(args: tuple[str, ...]) -> None:
    assert alerts(SHELL + kexec(2, 30, 10, *args), ruleset="kexecwatch") == []


# -- disguised binaries ---------------------------------------------------------------------


def test_symlink_copy_and_unpackaged_path() -> None:
    lines = (
        SHELL
        + kexec(2, 30, 10, "-l", "K", argv0="./kx", comm="kx")
        + kexec(3, 31, 10, "-u", argv0="./KEXEC", comm="KEXEC", exe="/srv/KEXEC")
        + kexec(4, 32, 10, "-e", argv0="/srv/bin/kexec", exe="/srv/bin/kexec")
    )
    assert by_rule(alerts(lines, ruleset="kexecwatch")) == [
        ("kexec-disguised-binary", "kexec run as 'kx' (exe /usr/sbin/kexec) as load: ./kx -l K"),
        ("kexec-disguised-binary", "kexec run as 'KEXEC' (exe /srv/KEXEC) as unload: ./KEXEC -u"),
        (
            "kexec-disguised-binary",
            "kexec outside the system directories (exe /srv/bin/kexec) as exec: /srv/bin/kexec -e",
        ),
    ]


def test_hard_link_is_known_by_the_inode_of_a_kexec_seen_before() -> None:
    # exec_lines writes PATH item 0 with inode 1 on dev fe:00 for every program.
    lines = (
        SHELL[:0]
        + kexec(1, 30, 1, "-h")
        + kexec(
            2,
            31,
            1,
            "-l",
            "K",
            argv0="./update-helper",
            comm="update-helper",
            exe="/srv/update-helper",
        )
    )
    [(name, reason)] = by_rule(alerts(lines, ruleset="kexecwatch"))
    assert name == "kexec-disguised-binary"
    assert reason == (
        "kexec hard link run as 'update-helper' (exe /srv/update-helper has the inode of "
        "/usr/sbin/kexec) as load: ./update-helper -l K"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("/lib64/ld-linux-x86-64.so.2", "/usr/sbin/kexec", "-l", "K"),
        ("/lib64/ld-linux-x86-64.so.2", "--argv0", "bash", "/usr/sbin/kexec", "-l", "K"),
        ("/lib64/ld-linux-x86-64.so.2", "--", "/usr/sbin/KEXEC", "-l", "K"),
    ],
)
def test_dynamic_loader_launch(argv: tuple[str, ...]) -> None:
    lines = SHELL + exec_lines(
        2,
        pid=30,
        ppid=10,
        comm="ld-linux-x86-64",
        exe="/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        args=argv,
    )
    [(name, reason)] = by_rule(alerts(lines))
    assert name == "kexec-disguised-binary"
    assert reason.startswith("kexec run through the dynamic loader ")
    assert " as load: " in reason


def test_plain_kexec_and_ld_so_running_other_programs_are_not_disguised() -> None:
    lines = (
        SHELL
        + kexec(2, 30, 10, "-h")
        + exec_lines(
            3,
            pid=31,
            ppid=10,
            comm="ld-linux-x86-64",
            exe="/lib64/ld-linux-x86-64.so.2",
            args=("/lib64/ld-linux-x86-64.so.2", "/usr/bin/ls"),
            inode=2,
        )
        + exec_lines(
            4, pid=32, ppid=10, comm="ls", exe="/usr/bin/ls", args=("ls", "kexec"), inode=3
        )
    )
    assert alerts(lines, ruleset="kexecwatch") == []


def test_dirname() -> None:
    assert dirname("/usr/sbin/kexec") == "/usr/sbin"
    assert dirname("/kexec") == "/"
    assert dirname("kexec") == ""
