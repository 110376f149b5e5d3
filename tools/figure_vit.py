"""docs/images/vit_fashion.png: the transformer techniques on the bundled Fashion-MNIST ViT
(models/fashion_vit.pt, trained by tools/train_fashion_mnist.py --arch vit) and four of the
bundled test images: Grad-CAM at its default layer, attention rollout, Chefer et al.'s
transformer attribution and LRP (CP-LRP's rules), each for the model's top class.
Run from the repository root after building: /usr/bin/python3 tools/figure_vit.py (needs Debian python3-pil)."""
import glob
import os
import subprocess
import tempfile

from PIL import Image, ImageDraw

MODEL = "models/fashion_vit.pt"
IMAGES = ["sneaker", "bag", "trouser", "ankle_boot"]
COLUMNS = [("gradcam", "*_gradcam_*heatmap.png", "Grad-CAM (ln_1)"),
           ("attention-rollout", "*_attention_rollout_*heatmap.png", "attention rollout"),
           ("transformer-attribution", "*_transformer_attribution_*heatmap.png", "Chefer et al."),
           ("lrp", "*_lrp_signed.png", "LRP (CP-LRP)")]
SIDE = 168

rows = []
with tempfile.TemporaryDirectory() as out:
    for name in IMAGES:
        image = f"assets/fashion_mnist/{name}.png"
        tiles = [(Image.open(image).convert("RGB").resize((SIDE, SIDE), Image.NEAREST), name.replace("_", " "))]
        for technique, pattern, label in COLUMNS:
            folder = os.path.join(out, name, technique)
            subprocess.run(["./build/netlens", technique, "--model", MODEL, "--image", image, "--out", folder,
                            "--log-level", "warn"], check=True)
            found = sorted(glob.glob(os.path.join(folder, pattern)))
            if len(found) != 1:
                raise SystemExit(f"{technique}: expected one {pattern} in {os.listdir(folder)}")
            tiles.append((Image.open(found[0]).convert("RGB").resize((SIDE, SIDE), Image.NEAREST), label))
        rows.append(tiles)

columns = len(rows[0])
figure = Image.new("RGB", (SIDE * columns, (SIDE + 20) * len(rows)), "white")
draw = ImageDraw.Draw(figure)
for r, tiles in enumerate(rows):
    for c, (tile, label) in enumerate(tiles):
        figure.paste(tile, (c * SIDE, r * (SIDE + 20) + 18))
        draw.text((c * SIDE + 4, r * (SIDE + 20) + 3), label, fill="black")
figure.save("docs/images/vit_fashion.png")
print("wrote docs/images/vit_fashion.png")
