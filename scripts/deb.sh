#!/usr/bin/env bash
# Builds reframe's Debian package: the binary, its .desktop entry (so "Open with reframe"
# works for video files), the icon in the hicolor sizes, and the runtime dependencies.
#
# Usage: scripts/deb.sh [--profile release|dev]     → target/deb/reframe_<version>_<arch>.deb
#   --profile dev packages the debug build (what the test suite builds anyway); the default,
#   release, is the one to ship.
# Needs: cargo, dpkg-deb, ImageMagick's convert (the icon sizes).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
while (($#)); do
  case "$1" in
    --profile) profile=${2:?--profile needs release or dev}; shift 2 ;;
    *) echo "usage: scripts/deb.sh [--profile release|dev]" >&2; exit 2 ;;
  esac
done
case "$profile" in
  release) cargo build --release --bin reframe; bin=target/release/reframe ;;
  dev) cargo build --bin reframe; bin=target/debug/reframe ;;
  *) echo "unknown profile $profile: use release or dev" >&2; exit 2 ;;
esac
for tool in dpkg-deb convert strip; do
  command -v "$tool" >/dev/null || { echo "scripts/deb.sh needs $tool (apt-get install dpkg imagemagick binutils)" >&2; exit 1; }
done

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
root=target/deb/root
rm -rf "$root"
install -D -m 0755 "$bin" "$root/usr/bin/reframe"
# As Debian packages do: no debug information in the installed binary.
strip --strip-unneeded "$root/usr/bin/reframe"
install -D -m 0644 packaging/reframe.desktop "$root/usr/share/applications/reframe.desktop"
for size in 16 24 32 48 64 128 256 512; do
  dir="$root/usr/share/icons/hicolor/${size}x${size}/apps"
  mkdir -p "$dir"
  convert assets/icon.png -resize "${size}x${size}" "PNG32:$dir/reframe.png"
done
install -d "$root/usr/share/doc/reframe"
cat > "$root/usr/share/doc/reframe/copyright" <<TXT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: reframe
License: MIT
TXT
install -d "$root/DEBIAN"
installed_kib=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
# The window loads OpenGL/EGL, X11 or Wayland and fontconfig at run time (nothing links them),
# so they are named here rather than found by dpkg-shlibdeps.
cat > "$root/DEBIAN/control" <<TXT
Package: reframe
Version: $version
Architecture: $arch
Maintainer: reframe developers <reframe@localhost>
Installed-Size: $installed_kib
Depends: libc6, ffmpeg, mkvtoolnix, libgl1, libegl1, libgl1-mesa-dri, libxkbcommon-x11-0, libxcursor1, libxrandr2, libxi6, libfontconfig1
Recommends: fonts-noto-cjk, xdg-desktop-portal | zenity
Section: video
Priority: optional
Description: upscale and re-encode videos, resumably
 reframe upscales videos (Lanczos, Real-ESRGAN animevideov3, waifu2x) and encodes them
 to MP4, MKV, AV1, lossless, HLS or DASH, in a window with a before/after preview or
 from the command line. Jobs survive crashes and reboots and resume where they stopped.
TXT
# Post-install: let the desktop see the new entry and icons at once (both tools are optional).
cat > "$root/DEBIAN/postinst" <<'TXT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  command -v update-desktop-database >/dev/null && update-desktop-database -q /usr/share/applications || true
  command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true
fi
TXT
cp "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
sed -i 's/"\$1" = configure/"$1" = remove -o "$1" = purge/' "$root/DEBIAN/postrm"
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
out="target/deb/reframe_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$out" >/dev/null
echo "$out"
