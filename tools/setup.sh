#!/usr/bin/env bash
# Installs every build, test and model-export dependency of netlens from Debian's packages.
# Idempotent and non-interactive; run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopencv-dev libopencv-contrib-dev libcli11-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev
  libfmt-dev libgtest-dev
  python3-torch python3-torchvision python3-numpy
  python3-jsonschema python3-yaml
  dataset-fashion-mnist parallel
  libopenblas0-openmp clang libclang-rt-14-dev libgif-dev libeigen3-dev
  chromium fonts-dejavu-core
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
