"""tools/nspawnlab.py without booting anything: the mirror and the cached image's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.nspawnlab import PACKAGES, NspawnError, host_mirror, image_ok


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb\n# a comment: with a colon\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert host_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n"
    )
    assert host_mirror(tmp_path) == "http://mirror.example/debian"


def test_no_bookworm_source_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://m.example/debian trixie main\n")
    with pytest.raises(NspawnError, match="no apt source for Debian bookworm"):
        host_mirror(tmp_path)


def fake_image(root: Path) -> Path:
    image = root / "img"
    for name in ("usr/lib/systemd/systemd", "usr/bin/python3", "usr/bin/dbus-daemon"):
        (image / name).parent.mkdir(parents=True, exist_ok=True)
        (image / name).write_text("")
    (image / "etc").mkdir()
    (image / "etc/os-release").write_text("ID=debian\n")
    return image


def test_an_image_without_its_stamp_or_with_another_one_is_not_trusted(tmp_path: Path) -> None:
    image = fake_image(tmp_path)
    assert not image_ok(image)  # an interrupted build writes no stamp
    stamp = tmp_path / "img.stamp"
    stamp.write_text("suite=bookworm\nvariant=minbase\npackages=systemd\n")
    assert not image_ok(image)  # made with another package list


def test_a_stamped_image_missing_systemd_is_not_trusted(tmp_path: Path) -> None:
    image = fake_image(tmp_path)
    (tmp_path / "img.stamp").write_text(
        f"suite=bookworm\nvariant=minbase\npackages={','.join(PACKAGES)}\n"
    )
    assert image_ok(image)
    (image / "usr/lib/systemd/systemd").unlink()
    assert not image_ok(image)
