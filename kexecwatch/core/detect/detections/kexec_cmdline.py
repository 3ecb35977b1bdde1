"""kexec command lines read the way kexec-tools reads them.

Theory of operation: :func:`parse_kexec_args` replays GNU ``getopt_long`` over
kexec-tools' own option table (``kexec/kexec.h`` ``KEXEC_OPTIONS`` and
``KEXEC_OPT_STR``, plus the x86 arch and loader options of
``kexec/arch/i386/include/arch/options.h``, which x86_64 builds use too), then
applies ``main()``'s effects in option order to get what kexec will do:

* ``-h``/``-?``, ``-v`` and ``--print-ckr-size`` print and return at once;
  a getopt error prints the usage and returns 1. Nothing is done.
* the defaults are *load, then run shutdown(8)*: a bare ``kexec KERNEL``
  boots ``KERNEL``. ``-l`` loads only, ``-e`` executes only, ``-u`` unloads,
  ``-f`` loads then executes, ``-p`` loads a panic kernel, ``-S`` only asks.
  The last option wins (``-le`` executes).
* kexec then unloads, loads (a panic kernel with ``-p``), shuts down and
  executes, in that order. A load needs a kernel operand ("No kernel
  specified" otherwise), and a failed load stops the rest.

getopt rules: operands may come anywhere (argv permutation) until ``--``;
short options bundle (``-sl``); ``-t`` takes the rest of its bundle or the
next word; long options may be abbreviated to any unambiguous prefix, and a
prefix shared only by options with the same meaning (``--ap``) is fine;
``--opt=value`` and ``--opt value`` for options with an argument, while
``--load=x`` is an error. ``POSIXLY_CORRECT`` in kexec's environment (which
the audit trail does not show) would stop option parsing at the first operand.

Rule 1: pure and total: any argv gives a :class:`KexecCommand`, never an
exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kexecwatch.core.text.frozen import Frozen, set_field

__all__ = [
    "UPSTREAM_ARGS",
    "KexecCommand",
    "explain",
    "parse_kexec_args",
    "upstream_matches",
]

#: The argument list of the upstream rule (v7): any argv element equal to one.
UPSTREAM_ARGS = frozenset(("--exec", "-e", "--load", "-l", "--unload", "-u"))

# (long name, takes an argument, meaning). Options that share a meaning
# (command-line/append, initrd/ramdisk) have one getopt ``val``.
_LONG: tuple[tuple[str, bool, str], ...] = (
    ("help", False, "help"),
    ("version", False, "version"),
    ("force", False, "force"),
    ("no-checks", False, "no-checks"),
    ("no-ifdown", False, "no-ifdown"),
    ("no-sync", False, "no-sync"),
    ("load", False, "load"),
    ("unload", False, "unload"),
    ("exec", False, "exec"),
    ("exec-live-update", False, "exec-live-update"),
    ("load-preserve-context", False, "load-preserve-context"),
    ("load-jump-back-helper", False, "load-jump-back-helper"),
    ("load-live-update", False, "load-live-update"),
    ("entry", True, "entry"),
    ("type", True, "type"),
    ("load-panic", False, "load-panic"),
    ("mem-min", True, "mem-min"),
    ("mem-max", True, "mem-max"),
    ("reuseinitrd", False, "reuseinitrd"),
    ("kexec-file-syscall", False, "kexec-file-syscall"),
    ("kexec-syscall", False, "kexec-syscall"),
    ("kexec-syscall-auto", False, "kexec-syscall-auto"),
    ("debug", False, "debug"),
    ("status", False, "status"),
    ("print-ckr-size", False, "print-ckr-size"),
    ("hotplug", False, "hotplug"),
    # x86 arch options
    ("reset-vga", False, "reset-vga"),
    ("serial", True, "serial"),
    ("serial-baud", True, "serial-baud"),
    ("console-vga", False, "console-vga"),
    ("console-serial", False, "console-serial"),
    ("elf32-core-headers", False, "elf32-core-headers"),
    ("elf64-core-headers", False, "elf64-core-headers"),
    ("pass-memmap-cmdline", False, "pass-memmap-cmdline"),
    ("noefi", False, "noefi"),
    ("reuse-video-type", False, "reuse-video-type"),
    # x86 loader options
    ("command-line", True, "command-line"),
    ("append", True, "command-line"),
    ("reuse-cmdline", False, "reuse-cmdline"),
    ("initrd", True, "initrd"),
    ("ramdisk", True, "initrd"),
    ("args-elf", False, "args-elf"),
    ("args-linux", False, "args-linux"),
    ("args-none", False, "args-none"),
    ("module", True, "module"),
    ("real-mode", False, "real-mode"),
    ("entry-32bit", False, "entry-32bit"),
    ("dtb", True, "dtb"),
)
_LONG_BY_NAME = {name: (has_arg, val) for name, has_arg, val in _LONG}

#: ``KEXEC_OPT_STR "h?vdfixyluet:pscaS"``: letter -> meaning; only ``-t`` takes an argument.
_SHORT = {
    "h": "help",
    "?": "help",
    "v": "version",
    "d": "debug",
    "f": "force",
    "i": "no-checks",
    "x": "no-ifdown",
    "y": "no-sync",
    "l": "load",
    "u": "unload",
    "e": "exec",
    "t": "type",
    "p": "load-panic",
    "s": "kexec-file-syscall",
    "c": "kexec-syscall",
    "a": "kexec-syscall-auto",
    "S": "status",
}
_SHORT_OF = {meaning: letter for letter, meaning in reversed(_SHORT.items())}

#: Options that change what kexec does (the rest only tune it).
ACTION_OPTIONS = frozenset(
    (
        "force",
        "load",
        "unload",
        "exec",
        "exec-live-update",
        "load-preserve-context",
        "load-jump-back-helper",
        "load-live-update",
        "load-panic",
        "status",
    )
)
_PRINT_AND_RETURN = frozenset(("help", "version", "print-ckr-size"))
_SYSCALLS = {
    "kexec-file-syscall": "kexec_file_load",
    "kexec-syscall": "kexec_load",
    "kexec-syscall-auto": "auto",
}


class KexecOption(Frozen):
    """One option as getopt returned it.

    Attributes:
        meaning: the option's canonical long name (``load``, ``command-line``).
        written: the word it came from (``-sl``, ``--unl``, ``--initrd=x``).
        form: ``exact`` (``-l``, ``--load``), ``bundled`` (part of ``-sl``)
            or ``abbreviated`` (``--unl``).
        value: its argument, for options that take one.
    """

    __slots__ = ("meaning", "written", "form", "value")  # noqa: RUF023 - the fields, in order

    meaning: str
    written: str
    form: str
    value: str | None

    def __init__(self, meaning: str, written: str, form: str, value: str | None = None) -> None:
        set_field(self, "meaning", meaning)
        set_field(self, "written", written)
        set_field(self, "form", form)
        set_field(self, "value", value)


class KexecCommand(Frozen):
    """What a kexec command line asks for.

    Attributes:
        args: the argv after ``argv[0]``.
        options: every option getopt returned before kexec stopped, in order.
        operands: the non-option words (the first is the kernel).
        actions: what kexec does, in order: ``unload``, ``panic-unload``,
            ``load``, ``panic-load``, ``load-then-reboot`` (the bare form:
            load, then shutdown(8)), ``load-and-exec`` (``-f``), ``exec``,
            ``status``, ``info`` (help or version); empty when it does
            nothing (an error).
        syscall: ``kexec_file_load`` (``-s``), ``kexec_load`` (``-c``),
            ``auto`` (``-a``), or ``None`` (kexec's default).
        notes: how the words were read (``-sl = -s -l (bundled)``).
        errors: why kexec stops without doing anything, if it does.
    """

    __slots__ = (  # noqa: RUF023 - the fields, in order
        "args",
        "options",
        "operands",
        "actions",
        "syscall",
        "notes",
        "errors",
    )

    args: tuple[str, ...]
    options: tuple[KexecOption, ...]
    operands: tuple[str, ...]
    actions: tuple[str, ...]
    syscall: str | None
    notes: tuple[str, ...]
    errors: tuple[str, ...]

    def __init__(  # noqa: PLR0917 - a dataclass's positional fields
        self,
        args: tuple[str, ...],
        options: tuple[KexecOption, ...],
        operands: tuple[str, ...],
        actions: tuple[str, ...],
        syscall: str | None,
        notes: tuple[str, ...],
        errors: tuple[str, ...],
    ) -> None:
        set_field(self, "args", args)
        set_field(self, "options", options)
        set_field(self, "operands", operands)
        set_field(self, "actions", actions)
        set_field(self, "syscall", syscall)
        set_field(self, "notes", notes)
        set_field(self, "errors", errors)

    @property
    def kernel(self) -> str | None:
        """The kernel operand, if any."""
        return self.operands[0] if self.operands else None

    @property
    def changes_kernel_state(self) -> bool:
        """Whether kexec loads, unloads or executes a kernel."""
        return any(a not in ("status", "info") for a in self.actions)

    @property
    def is_panic_only(self) -> bool:
        """Whether every action is a panic-kernel load or unload (the kdump service's)."""
        return bool(self.actions) and all(a.startswith("panic-") for a in self.actions)


class _GetoptError(Exception):
    """A word getopt rejects: kexec prints its usage and returns 1."""


def _long_option(word: str, rest: list[str]) -> KexecOption:
    body = word[2:]
    name, eq, value = body.partition("=")
    if name in _LONG_BY_NAME:
        full, form = name, "exact"
    else:
        found = [n for n in _LONG_BY_NAME if n.startswith(name)]
        if not name or not found:
            raise _GetoptError(f"unrecognized option '{word}'")
        # glibc: several prefix matches are fine when they all mean the same.
        if len({_LONG_BY_NAME[n] for n in found}) > 1:
            raise _GetoptError(f"option '{word}' is ambiguous ({', '.join(found)})")
        full, form = found[0], "abbreviated"
    has_arg, meaning = _LONG_BY_NAME[full]
    if has_arg:
        if not eq:
            if not rest:
                raise _GetoptError(f"option '--{full}' requires an argument")
            value = rest.pop(0)
        return KexecOption(meaning, word, form, value)
    if eq:
        raise _GetoptError(f"option '--{full}' doesn't allow an argument")
    return KexecOption(meaning, word, form)


def _short_options(word: str, rest: list[str]) -> Iterator[KexecOption]:
    # A generator: getopt returns the letters of a bundle one by one, so
    # ``-hz`` prints the help before it could complain about ``z``.
    letters = word[1:]
    cut = letters.find("t")
    form = "exact" if len(letters if cut < 0 else letters[: cut + 1]) == 1 else "bundled"
    for i, letter in enumerate(letters, 1):
        meaning = _SHORT.get(letter)
        if meaning is None:
            raise _GetoptError(f"invalid option -- '{letter}'")
        if meaning == "type":
            value = word[i + 1 :]
            if not value:
                if not rest:
                    raise _GetoptError("option requires an argument -- 't'")
                value = rest.pop(0)
            yield KexecOption(meaning, word, form, value)
            return
        yield KexecOption(meaning, word, form)


def _getopt(args: tuple[str, ...]) -> tuple[list[KexecOption], list[str], str | None]:
    """Options up to the first that makes kexec return, operands, and any error."""
    options: list[KexecOption] = []
    operands: list[str] = []
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word == "--":
            operands.extend(rest)
            break
        if not word.startswith("-") or word == "-":
            operands.append(word)
            continue
        try:
            found: Iterable[KexecOption] = (
                (_long_option(word, rest),) if word.startswith("--") else _short_options(word, rest)
            )
            for option in found:
                options.append(option)
                if option.meaning in _PRINT_AND_RETURN:
                    return options, operands, None
        except _GetoptError as exc:
            return options, operands, str(exc)
    return options, operands, None


@dataclass(slots=True)
class _Flags:
    """kexec.c main()'s do_* variables, changed option by option."""

    load: bool = True
    shutdown: bool = True
    execute: bool = False
    unload: bool = False
    panic: bool = False
    status: bool = False
    jump_back_helper: bool = False
    syscall: str | None = None

    def apply(self, meaning: str) -> None:
        if meaning == "force":
            self.load, self.shutdown, self.execute = True, False, True
        elif meaning in ("load", "load-preserve-context", "load-live-update"):
            self.load, self.shutdown, self.execute = True, False, False
        elif meaning == "load-panic":
            self.load, self.shutdown, self.execute, self.panic = True, False, False, True
        elif meaning == "unload":
            self.load, self.shutdown, self.unload = False, False, True
        elif meaning in ("exec", "exec-live-update"):
            self.load, self.shutdown, self.execute = False, False, True
        elif meaning == "load-jump-back-helper":
            self.load, self.shutdown, self.execute = False, False, False
            self.jump_back_helper = True
        elif meaning == "status":
            self.status = True
        elif meaning in _SYSCALLS:
            self.syscall = _SYSCALLS[meaning]


def parse_kexec_args(argv: tuple[str, ...] | list[str]) -> KexecCommand:
    """Classify a kexec argv (``argv[0]`` included) as kexec-tools would run it.

    Never raises.
    """
    args = tuple(argv[1:])
    options, operands, error = _getopt(args)
    notes = _notes(options)
    if error is not None:
        return KexecCommand(args, tuple(options), tuple(operands), (), None, notes, (error,))
    if options and options[-1].meaning in _PRINT_AND_RETURN:
        return KexecCommand(args, tuple(options), tuple(operands), ("info",), None, notes, ())
    f = _Flags()
    for option in options:
        f.apply(option.meaning)
    if f.status:
        return KexecCommand(
            args, tuple(options), tuple(operands), ("status",), f.syscall, notes, ()
        )
    actions: list[str] = []
    errors: list[str] = []
    if f.unload:
        actions.append("panic-unload" if f.panic else "unload")
    if f.load and not operands:
        # my_load(): "No kernel specified"; a failed load stops shutdown and exec.
        errors.append("no kernel specified: kexec loads nothing and stops")
        f.execute = False
    elif f.load:
        if f.panic:
            actions.append("panic-load")
        elif f.shutdown:
            actions.append("load-then-reboot")
        elif f.execute:
            actions.append("load-and-exec")
            f.execute = False
        else:
            actions.append("load")
    if f.jump_back_helper:
        actions.append("load")
    if f.execute:
        actions.append("exec")
    return KexecCommand(
        args, tuple(options), tuple(operands), tuple(actions), f.syscall, notes, tuple(errors)
    )


def _notes(options: list[KexecOption]) -> tuple[str, ...]:
    notes: list[str] = []
    bundles: dict[str, list[str]] = {}
    for option in options:
        if option.form == "bundled":
            letter = _SHORT_OF[option.meaning]
            shown = f"-{letter} {option.value}" if option.value is not None else f"-{letter}"
            bundles.setdefault(option.written, []).append(shown)
        elif option.form == "abbreviated":
            note = f"{option.written.partition('=')[0]} = --{_full_name(option)} (abbreviation)"
            if note not in notes:
                notes.append(note)
    notes.extend(f"{word} = {' '.join(parts)} (bundled)" for word, parts in bundles.items())
    return tuple(notes)


def _full_name(option: KexecOption) -> str:
    prefix = option.written[2:].partition("=")[0]
    return next(n for n, _, v in _LONG if v == option.meaning and n.startswith(prefix))


def upstream_matches(args: tuple[str, ...] | list[str]) -> bool:
    """Whether v7's argument test holds: any argv element (``argv[0]`` too) is listed."""
    return any(a in UPSTREAM_ARGS for a in args)


def explain(name: str, command: KexecCommand) -> str:
    """One line: how kexec reads the command, and why the upstream rule misses it.

    Example: ``kexec -sl parsed as load (bundled -s -l); upstream rule misses
    bundled flags``.
    """
    shown = " ".join([name, *command.args])
    if len(shown) > 80:
        shown = shown[:79] + "…"
    what = " then ".join(command.actions) if command.actions else "nothing"
    detail = f" ({'; '.join(command.notes)})" if command.notes else ""
    line = f"{shown} parsed as {what}{detail}"
    if command.errors:
        line += f": {command.errors[0]}"
    if upstream_matches((name, *command.args)) or not command.changes_kernel_state:
        return line
    misses = _misses(command)
    return f"{line}; upstream rule misses {misses}" if misses else line


def _misses(command: KexecCommand) -> str:
    why: list[str] = []
    acting = [o for o in command.options if o.meaning in ACTION_OPTIONS]
    if not acting and command.changes_kernel_state:
        why.append("the bare form (no option: load, then reboot via shutdown)")
    for option in acting:
        if option.form == "bundled":
            text = "bundled flags"
        elif option.form == "abbreviated":
            text = "abbreviated long options"
        elif option.meaning == "force":
            text = f"{option.written} (load, then exec)"
        else:
            text = f"unlisted option {option.written}"
        if text not in why:
            why.append(text)
    return ", ".join(why)
