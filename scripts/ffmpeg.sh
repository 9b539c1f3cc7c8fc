#!/usr/bin/env bash
# Installs ffmpeg and ffprobe (Debian/Ubuntu packages) when either is missing; a no-op otherwise.
# crow-vision's FfmpegSource runs both as child processes (video files, RTSP/RTMP/HTTP streams).
# Usage: bash scripts/ffmpeg.sh
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if ! have ffmpeg || ! have ffprobe; then
  if ! have apt-get; then
    echo "ffmpeg/ffprobe are missing and apt-get is not available: install ffmpeg with your package manager" >&2
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif have sudo; then
    SUDO=(sudo)
  else
    echo "ffmpeg/ffprobe are missing: run this script as root (or install sudo)" >&2
    exit 1
  fi
  echo "installing ffmpeg (apt-get)..."
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ffmpeg
fi

ffmpeg -hide_banner -version | head -n 1
ffprobe -hide_banner -version | head -n 1
