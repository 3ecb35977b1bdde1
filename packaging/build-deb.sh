#!/usr/bin/env bash
# Build kexecwatch_<version>_amd64.deb with plain dpkg-deb.
#
# Usage: packaging/build-deb.sh [--out DIR] [--config FILE]
#   --out DIR      where the .deb goes (default: dist/)
#   --config FILE  default configuration to install as /etc/kexecwatch/kexecwatch.toml
#                  (default: etc/kexecwatch.toml)
# Environment: DEB_MAINTAINER ("Name <email>"), SOURCE_DATE_EPOCH (changelog date;
# default: the last commit's time), KEXECWATCH_CARGO (the cargo that builds the native
# scanner library; default: Debian's /usr/bin/cargo, else cargo on PATH).
#
# Needs cargo (apt-get install cargo): the package ships the native scanner library,
# /opt/kexecwatch/lib/python3.11/site-packages/kexecwatch/native/libkexecwatch_native.so.
#
# The application is a virtual environment made with the Debian system Python
# (/usr/bin/python3.11), so it runs on any Debian 12 host without the build machine's
# Python: the project wheel and its dependencies (from PyPI) are installed into it under
# a staging directory, then every script that names the staging path is rewritten to
# /opt/kexecwatch. Prints the path of the .deb on stdout.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/dist
config=$repo/etc/kexecwatch.toml
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-deb.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

py=$(readlink -f /usr/bin/python3)    # e.g. /usr/bin/python3.11
pyname=$(basename "$py")
for tool in dpkg-deb ar xz "$py" dpkg-shlibdeps strip; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "build-deb.sh: $tool is missing (apt-get install dpkg dpkg-dev binutils python3-venv)" >&2
        exit 2
    fi
done
if ! "$py" -c 'import ensurepip' 2>/dev/null; then
    echo "build-deb.sh: $py cannot make a venv: apt-get install python3-venv" >&2
    exit 2
fi
# Debian's own toolchain first: the build-dependency a Debian package states.
cargo=${KEXECWATCH_CARGO:-}
if [ -z "$cargo" ]; then
    if [ -x /usr/bin/cargo ]; then cargo=/usr/bin/cargo; else cargo=$(command -v cargo || true); fi
fi
if [ -z "$cargo" ] || ! command -v "$cargo" >/dev/null 2>&1; then
    echo "build-deb.sh: cargo is missing (apt-get install cargo): the package ships the native scanner library" >&2
    exit 2
fi
if [ ! -f "$config" ]; then
    echo "build-deb.sh: no default configuration at $config (use --config FILE)" >&2
    exit 2
fi

version=$("$py" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$repo/pyproject.toml")
maintainer=${DEB_MAINTAINER:-kexecwatch maintainers <maintainers@kexecwatch.example.org>}
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH=$epoch

work=$(mktemp -d /tmp/kexecwatch-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/debian/kexecwatch    # where dpkg-shlibdeps expects a package's files
app=$root/opt/kexecwatch
pkg=$repo/packaging

echo "build-deb.sh: building the wheel and the native library ($("$cargo" --version))" >&2
"$py" -m venv "$work/build"
# Debian's cargo builds in the same target directory as scripts/test's check with it, so
# a package build recompiles nothing that has not changed.
target=$repo/native/target
[ "$(readlink -f "$(command -v "$cargo")")" = /usr/bin/cargo ] && target=$repo/native/target/debian
# pip builds in the tree, and setuptools copies the package into build/ without removing
# what an earlier build left there (a module since moved or deleted): start it afresh.
rm -rf "$repo/build"
KEXECWATCH_CARGO=$cargo CARGO_TARGET_DIR=$target \
    "$work/build/bin/pip" -q --disable-pip-version-check wheel --no-deps -w "$work/wheels" "$repo" >&2

echo "build-deb.sh: installing it and its dependencies into the application venv" >&2
"$py" -m venv "$app"
"$app/bin/pip" -q --disable-pip-version-check install --no-compile "$work"/wheels/kexecwatch-*.whl >&2
"$app/bin/pip" -q --disable-pip-version-check uninstall -y pip setuptools >&2
library=$app/lib/$pyname/site-packages/kexecwatch/native/libkexecwatch_native.so
if [ ! -f "$library" ]; then
    echo "build-deb.sh: the wheel has no native library (${library#"$app"/})" >&2
    exit 1
fi
# As dh_strip does for a shared library; then the Depends its symbols need (libc6, ...).
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$library"
printf 'Source: kexecwatch\n\nPackage: kexecwatch\nArchitecture: amd64\n' > "$work/debian/control"
mkdir -p "$root/DEBIAN"    # how dpkg-shlibdeps knows the package root
shlibs=$(cd "$work" && dpkg-shlibdeps -O "${library#"$work"/}" | sed -n 's/^shlibs:Depends=//p')
if [ -z "$shlibs" ]; then
    echo "build-deb.sh: dpkg-shlibdeps found no dependencies for the native library" >&2
    exit 1
fi
rm -f "$app"/bin/activate* "$app"/bin/Activate.ps1
# direct_url.json records the wheel's build path: drop it (and its RECORD line).
for d in "$app"/lib/"$pyname"/site-packages/kexecwatch-*.dist-info; do
    rm -f "$d/direct_url.json"
    sed -i '/direct_url\.json/d' "$d/RECORD"
done
# The venv was built under $app; the package installs it at /opt/kexecwatch.
grep -rlI -- "$app" "$app" | while read -r f; do sed -i "s|$app|/opt/kexecwatch|g" "$f"; done
find "$app" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$app" -name '*.pyc' -delete
if grep -rIq -- "$work" "$root"; then
    echo "build-deb.sh: staging path left in: $(grep -rIl -- "$work" "$root" | head -3)" >&2
    exit 1
fi
# Ownership and modes dpkg will record: root:root (--root-owner-group), 0755 dirs, 0644 files.
find "$app" -type d -exec chmod 0755 {} +
find "$app" -type f ! -perm -u+x -exec chmod 0644 {} +
find "$app" -type f -perm -u+x -exec chmod 0755 {} +

install -d "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/kexecwatch" \
    "$root/etc/audit/rules.d" "$root/etc/logrotate.d" "$root/usr/share/doc/kexecwatch" \
    "$root/usr/share/lintian/overrides" "$root/DEBIAN"
chmod 0750 "$root/etc/audit" "$root/etc/audit/rules.d"   # as auditd ships them
ln -s /opt/kexecwatch/bin/kexecwatch "$root/usr/bin/kexecwatch"
install -m 0644 "$pkg/kexecwatch.service" "$root/lib/systemd/system/kexecwatch.service"
install -m 0644 "$config" "$root/etc/kexecwatch/kexecwatch.toml"
# The audit rules ship inside the Python package: one copy for pip, the .deb and etc/.
install -m 0640 "$repo/kexecwatch/auditrules/audit.rules" "$root/etc/audit/rules.d/kexecwatch.rules"
install -m 0644 "$repo/kexecwatch/auditrules/audit-lowvolume.rules" "$root/usr/share/doc/kexecwatch/audit-lowvolume.rules"
install -m 0644 "$pkg/logrotate/kexecwatch" "$root/etc/logrotate.d/kexecwatch"
install -m 0644 "$pkg/deb/copyright" "$root/usr/share/doc/kexecwatch/copyright"
install -m 0644 "$pkg/deb/lintian-overrides" "$root/usr/share/lintian/overrides/kexecwatch"
if [ -f "$repo/README.md" ]; then
    gzip -9n < "$repo/README.md" > "$root/usr/share/doc/kexecwatch/README.md.gz"
fi
{
    echo "kexecwatch ($version) unstable; urgency=medium"
    echo
    echo "  * Package built from the kexecwatch source tree, version $version."
    echo
    echo " -- $maintainer  $(date -u -R -d "@$epoch")"
} | gzip -9n > "$root/usr/share/doc/kexecwatch/changelog.gz"
chmod 0644 "$root"/usr/share/doc/kexecwatch/*.gz

for script in preinst postinst prerm postrm; do
    install -m 0755 "$pkg/deb/$script" "$root/DEBIAN/$script"
done
printf '%s\n' /etc/kexecwatch/kexecwatch.toml /etc/audit/rules.d/kexecwatch.rules \
    /etc/logrotate.d/kexecwatch > "$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@MAINTAINER@|$maintainer|" -e "s|@SIZE@|$size|" \
    -e "s|@PYTHON@|$pyname|" -e "s|@SHLIBS@|$shlibs|" "$pkg/deb/control.in" > "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z \
    | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb=$(cd "$out" && pwd)/kexecwatch_${version}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2

# dpkg counts every directory in the archive as the package's own and deletes it on purge
# when it is empty: with ./opt/ listed, purging on a host whose /opt held nothing else
# removed /opt. Take that one entry out of data.tar; preinst creates /opt when it is
# missing, since dpkg does not create the parents of what it unpacks.
mkdir "$work/ar"
(
    cd "$work/ar"
    ar x "$deb"
    xz -d data.tar.xz
    tar --delete --no-recursion -f data.tar ./opt/
    xz -z -T1 data.tar
    rm -f "$deb"
    ar rcD "$deb" debian-binary control.tar.xz data.tar.xz
)
echo "$deb"
