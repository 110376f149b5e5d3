"""docs/images/lrp_composites_squeezenet.png: netlens lrp under four composites on the shared
SqueezeNet 1.0 and its cat photo (signed maps: red positive, blue negative relevance).
Run from the repository root after building: /usr/bin/python3 tools/figure_lrp.py"""
import os
import subprocess
import tempfile

from PIL import Image, ImageDraw

shared = os.environ.get("NETLENS_SHARED_MODELS", "../shared/models")
image = os.path.join(shared, "images", "cat.png")
composites = ["epsilon", "epsilon-gamma-box", "epsilon-alpha2-beta1", "epsilon-plus-flat"]
tiles, labels = [Image.open(image).convert("RGB").resize((224, 224))], ["input"]
with tempfile.TemporaryDirectory() as out:
    for c in composites:
        subprocess.run(["./build/netlens", "lrp", "--model", os.path.join(shared, "squeezenet1_0.pt"), "--image", image,
                        "--composite", c, "--out", os.path.join(out, c), "--log-level", "warn"], check=True)
        tiles.append(Image.open(os.path.join(out, c, "cat_lrp_signed.png")).convert("RGB").resize((224, 224)))
        labels.append(c)
figure = Image.new("RGB", (224 * len(tiles), 246), "white")
draw = ImageDraw.Draw(figure)
for i, (tile, label) in enumerate(zip(tiles, labels)):
    figure.paste(tile, (i * 224, 22))
    draw.text((i * 224 + 6, 5), label, fill="black")
figure.save("docs/images/lrp_composites_squeezenet.png")
