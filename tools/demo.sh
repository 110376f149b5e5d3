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
# The bundled model sees gray 28 x 28 pictures, so the demo's style transfer is gray: say where a
# colour one comes from (a colour ImageNet model; none is bundled, and nothing is downloaded).
shared=${NETLENS_SHARED_MODELS:-$(cd .. && pwd)/shared/models}
echo "demo: its style transfer runs on the bundled gray Fashion-MNIST model, so the picture is gray."
if [ -f "$shared/squeezenet1_0.pt" ]; then
  echo "      In colour, on the pretrained SqueezeNet beside this checkout (about 30 s on 2 cores):"
  echo "      ./build/netlens style --model $shared/squeezenet1_0.pt --content assets/content/butterfly.jpg --style assets/style/starry_night.jpg --out netlens_out/style"
else
  echo "      In colour, with a pretrained ImageNet model (README: tools/export_model.py vgg19 --pretrained):"
  echo "      ./build/netlens style --model vgg19.pt --content assets/content/butterfly.jpg --style assets/style/starry_night.jpg --out netlens_out/style"
fi
