#!/usr/bin/env bash
# The README's main command: installs dependencies, builds netlens and runs configs/demo.yaml on
# the bundled Fashion-MNIST model. Outputs land in netlens_out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
NETLENS_BUILD_TARGET=netlens bash tools/build.sh
./build/netlens run configs/demo.yaml
echo
echo "demo: outputs, manifest.json and report.html in $(pwd)/netlens_out/demo"
