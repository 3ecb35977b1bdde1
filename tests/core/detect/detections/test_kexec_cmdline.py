"""kexec argv classification: one case per option family and every evasion of issue 7."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kexecwatch.core.detect.detections.kexec_cmdline import (
    KexecCommand,
    explain,
    parse_kexec_args,
    upstream_matches,
)


def parse(line: str) -> KexecCommand:
    return parse_kexec_args(line.split())


# (command line, actions, syscall, upstream v7 arg test)
CASES = [
    # the six listed options
    ("kexec -l K", ("load",), None, True),
    ("kexec --load K", ("load",), None, True),
    ("kexec -e", ("exec",), None, True),
    ("kexec --exec", ("exec",), None, True),
    ("kexec -u", ("unload",), None, True),
    ("kexec --unload", ("unload",), None, True),
    # evasions from issue 7
    ("kexec --unl", ("unload",), None, False),
    ("kexec --unlo", ("unload",), None, False),
    ("kexec -sl K", ("load",), "kexec_file_load", False),
    ("kexec -le K", ("exec",), None, False),  # the last option wins
    ("kexec -lf K", ("load-and-exec",), None, False),
    ("kexec -f K", ("load-and-exec",), None, False),
    ("kexec --force K", ("load-and-exec",), None, False),
    ("kexec --fo K", ("load-and-exec",), None, False),
    ("kexec K", ("load-then-reboot",), None, False),
    ("kexec --load-preserve-context K", ("load",), None, False),
    ("kexec --reuse-cmdline K", ("load-then-reboot",), None, False),
    ("kexec -s K", ("load-then-reboot",), "kexec_file_load", False),
    ("kexec -c K", ("load-then-reboot",), "kexec_load", False),
    ("kexec -a -l K", ("load",), "auto", True),
    # panic kernels
    ("kexec -p K", ("panic-load",), None, False),
    ("kexec --load-panic K", ("panic-load",), None, False),
    ("kexec -p -u", ("panic-unload",), None, True),
    ("kexec -s -p -u", ("panic-unload",), "kexec_file_load", True),
    ("kexec -a -p -u", ("panic-unload",), "auto", True),
    ("kexec -pu", ("panic-unload",), None, False),
    ("kexec -u -p K", ("panic-unload", "panic-load"), None, True),
    ("kexec -p --command-line=x --initrd=K K", ("panic-load",), None, False),
    # other load modes
    ("kexec --load-live-update K", ("load",), None, False),
    ("kexec --exec-live-update", ("exec",), None, False),
    ("kexec --load-jump-back-helper", ("load",), None, False),
    ("kexec -u -l K", ("unload", "load"), None, True),
    ("kexec -l -u K", ("unload",), None, True),
    ("kexec -e -l K", ("load",), None, True),
    ("kexec -p -f K", ("panic-load", "exec"), None, False),
    # info, status, nothing
    ("kexec -h", ("info",), None, False),
    ("kexec -?", ("info",), None, False),
    ("kexec --version", ("info",), None, False),
    ("kexec -v -l K", ("info",), None, True),
    ("kexec -l -v K", ("info",), None, True),
    ("kexec -lh K", ("info",), None, False),
    ("kexec --print-ckr-size", ("info",), None, False),
    ("kexec -S", ("status",), None, False),
    ("kexec -l -S K", ("status",), None, True),
    # options with arguments
    ("kexec -t bzImage -l K", ("load",), None, True),
    ("kexec -tbzImage -l K", ("load",), None, True),
    ("kexec -lt bzImage K", ("load",), None, False),
    ("kexec --type=bzImage --load K", ("load",), None, True),
    ("kexec --append -l K", ("load-then-reboot",), None, True),  # -l is --append's value
    ("kexec --comm=x --ap y --ini=i --ram=r K", ("load-then-reboot",), None, False),
    ("kexec --mem-min 0x1000 --mem-max=0x2000 -l K", ("load",), None, True),
    # permutation and --
    ("kexec K -l", ("load",), None, True),
    ("kexec -- -l", ("load-then-reboot",), None, True),
    ("kexec -l -- K", ("load",), None, True),
    ("kexec -l - ", ("load",), None, True),
]


@pytest.mark.parametrize(
    ("line", "actions", "syscall", "upstream"), CASES, ids=[c[0] for c in CASES]
)
def test_classification(
    line: str, actions: tuple[str, ...], syscall: str | None, upstream: bool
) -> None:
    command = parse(line)
    assert command.actions == actions, command
    assert command.syscall == syscall
    assert upstream_matches(line.split()) is upstream


def test_load_preserve_prefix_is_ambiguous_only_when_it_is() -> None:
    # "--load-p" matches load-preserve-context and load-panic: two meanings.
    command = parse("kexec --load-p K")
    assert command.actions == ()
    assert "ambiguous" in command.errors[0]


ERRORS = [
    ("kexec --lo K", "ambiguous"),
    ("kexec --ex", "ambiguous"),
    ("kexec --a x K", "ambiguous"),
    ("kexec --reu K", "ambiguous"),
    ("kexec --bogus K", "unrecognized option '--bogus'"),
    ("kexec --load=K", "doesn't allow an argument"),
    ("kexec -z -l K", "invalid option -- 'z'"),
    ("kexec -lz K", "invalid option -- 'z'"),
    ("kexec -l -t", "requires an argument -- 't'"),
    ("kexec -l --initrd", "'--initrd' requires an argument"),
    ("kexec", "no kernel specified"),
    ("kexec -l", "no kernel specified"),
    ("kexec -f", "no kernel specified"),
    ("kexec -p", "no kernel specified"),
]


@pytest.mark.parametrize(("line", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_do_nothing(line: str, message: str) -> None:
    command = parse(line)
    assert command.actions == ()
    assert not command.changes_kernel_state
    assert message in command.errors[0]


def test_an_error_after_a_print_option_is_never_reached() -> None:
    assert parse("kexec -hz").actions == ("info",)
    assert parse("kexec -zh").actions == ()


def test_unload_still_happens_when_the_load_has_no_kernel() -> None:
    command = parse("kexec -u -l")
    assert command.actions == ("unload",)
    assert command.errors


def test_operands_kernel_and_option_values() -> None:
    command = parse("kexec --initrd=/i -t bzImage -sl /boot/K extra")
    assert command.kernel == "/boot/K"
    assert command.operands == ("/boot/K", "extra")
    assert [(o.meaning, o.form, o.value) for o in command.options] == [
        ("initrd", "exact", "/i"),
        ("type", "exact", "bzImage"),
        ("kexec-file-syscall", "bundled", None),
        ("load", "bundled", None),
    ]


def test_notes_name_bundles_and_abbreviations() -> None:
    assert parse("kexec -sl K").notes == ("-sl = -s -l (bundled)",)
    assert parse("kexec --unl").notes == ("--unl = --unload (abbreviation)",)
    assert parse("kexec --ram=r K").notes == ("--ram = --ramdisk (abbreviation)",)
    assert parse("kexec -lt x K").notes == ("-lt = -l -t x (bundled)",)


def test_panic_only() -> None:
    assert parse("kexec -s -p -u").is_panic_only
    assert parse("kexec -p K").is_panic_only
    assert not parse("kexec -u -l K").is_panic_only
    assert not parse("kexec -p -f K").is_panic_only
    assert not parse("kexec -h").is_panic_only


EXPLAINED = [
    (
        "kexec -sl K",
        "kexec -sl K parsed as load (-sl = -s -l (bundled)); upstream rule misses bundled flags",
    ),
    (
        "kexec --unl",
        "kexec --unl parsed as unload (--unl = --unload (abbreviation)); "
        "upstream rule misses abbreviated long options",
    ),
    ("kexec -f K", "kexec -f K parsed as load-and-exec; upstream rule misses -f (load, then exec)"),
    (
        "kexec K",
        "kexec K parsed as load-then-reboot; upstream rule misses the bare form "
        "(no option: load, then reboot via shutdown)",
    ),
    ("kexec -p K", "kexec -p K parsed as panic-load; upstream rule misses unlisted option -p"),
    ("kexec -l K", "kexec -l K parsed as load"),
    ("kexec -S", "kexec -S parsed as status"),
    (
        "kexec --lo",
        "kexec --lo parsed as nothing: option '--lo' is ambiguous (load, "
        "load-preserve-context, load-jump-back-helper, load-live-update, load-panic)",
    ),
]


@pytest.mark.parametrize(("line", "text"), EXPLAINED, ids=[e[0] for e in EXPLAINED])
def test_explanations(line: str, text: str) -> None:
    argv = line.split()
    assert explain(argv[0], parse_kexec_args(argv)) == text


def test_explanation_is_one_short_line() -> None:
    argv = ["kexec", "-sl", "x" * 500, "two\nlines"]
    text = explain("kexec", parse_kexec_args(argv))
    assert "parsed as load" in text
    assert len(text) < 200


WORDS = st.one_of(
    st.sampled_from(
        [
            "-l",
            "-e",
            "-u",
            "-p",
            "-f",
            "-s",
            "-t",
            "--",
            "-",
            "--unl",
            "--lo",
            "--load=x",
            "--initrd",
            "--append=",
            "-sl",
            "-lt",
            "K",
            "--",
            "-S",
            "-h",
            "--ex",
            "--",
        ]
    ),
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(WORDS, max_size=10))
def test_never_raises_and_is_consistent(words: list[str]) -> None:
    command = parse_kexec_args(["kexec", *words])
    assert isinstance(explain("kexec", command), str)
    if command.errors and command.actions:
        assert "no kernel specified" in command.errors[0]
    assert set(command.actions) <= {
        "unload",
        "panic-unload",
        "load",
        "panic-load",
        "load-then-reboot",
        "load-and-exec",
        "exec",
        "status",
        "info",
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), max_size=6))
def test_arbitrary_text_never_raises(words: list[str]) -> None:
    parse_kexec_args(words)
