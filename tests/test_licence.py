"""Licences: the bundled Elastic rule is under the Elastic License 2.0, and says so."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ELASTIC_RULE = "kexecwatch/rules/privilege_escalation_load_and_unload_of_kernel_via_kexec.toml"
ELV2 = (ROOT / "LICENSES" / "Elastic-2.0.txt").read_text(encoding="utf-8")
COPYRIGHT = (ROOT / "packaging" / "deb" / "copyright").read_text(encoding="utf-8")


def paragraphs(text: str) -> list[dict[str, str]]:
    """Debian copyright-format paragraphs: field -> value (continuation lines joined)."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith((" ", "\t")):
                fields[key] += "\n" + line[1:]
            else:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        out.append(fields)
    return out


def test_the_elastic_rule_has_its_own_files_paragraph() -> None:
    paras = paragraphs(COPYRIGHT)
    files = [p for p in paras if "Files" in p]
    rule = next(p for p in files if ELASTIC_RULE in p["Files"].split())
    assert rule["License"] == "Elastic-2.0"
    assert "Elasticsearch B.V." in rule["Copyright"]
    assert any(p["Files"] == "*" and p["License"] == "Apache-2.0" for p in files)


def test_the_elastic_licence_text_is_in_the_copyright_file() -> None:
    paras = paragraphs(COPYRIGHT)
    text = next(p for p in paras if p.get("License", "").startswith("Elastic-2.0\n"))
    body = text["License"].split("\n", 1)[1]
    unfolded = "\n".join("" if line == "." else line for line in body.splitlines())
    assert unfolded.strip() == ELV2.strip()
    for words in ("## Limitations", "hosted or managed", "license key", "## Patents"):
        assert words in ELV2


def test_pyproject_and_readme_name_both_licences() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0 AND Elastic-2.0"
    assert "LICENSES/*" in project["license-files"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Licence") :]
    assert "Elastic License 2.0" in section and ELASTIC_RULE.rsplit("/", 1)[1] in section


def test_the_rule_file_names_its_licence() -> None:
    text = (ROOT / ELASTIC_RULE).read_text(encoding="utf-8")
    assert tomllib.loads(text)["rule"]["license"] == "Elastic License v2"
