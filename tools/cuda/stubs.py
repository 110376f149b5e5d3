"""Stub shared libraries for tools/cuda/prefix.sh: for each library named in STUBS, a library of
the same soname that defines every symbol the packed libraries (REAL and STUBS) import from it.
Functions return 0; data symbols are zeroed blocks of the real symbol's size.
Usage: stubs.py LIBDIR OUTDIR "REAL..." "STUBS..." WORKDIR"""
import hashlib
import os
import subprocess
import sys


def dynamic_symbols(path, *flags):
    out = subprocess.run(["nm", "-D", *flags, path], capture_output=True, text=True, check=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def main():
    libdir, outdir, real, stubs, work = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), sys.argv[5]
    imported = {f[-1].split("@")[0] for lib in real + stubs
                for f in dynamic_symbols(os.path.join(libdir, lib), "--undefined-only")}
    for lib in stubs:
        lines = []
        for f in dynamic_symbols(os.path.realpath(os.path.join(libdir, lib)), "--defined-only", "-S"):
            name, kind = f[-1].split("@")[0], f[-2]
            if name not in imported:
                continue
            c_name = "s" + hashlib.md5(name.encode()).hexdigest()[:12]
            if kind in "TWti":
                lines.append(f'long {c_name}(void) __asm__("{name}");\nlong {c_name}(void) {{ return 0; }}')
            else:
                size = int(f[1], 16) if len(f) == 4 else 8
                lines.append(f'__attribute__((aligned(16))) char {c_name}[{max(size, 1)}] __asm__("{name}");')
        src = os.path.join(work, lib + ".c")
        with open(src, "w") as out:
            out.write("\n".join(lines) + "\n")
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", os.path.join(outdir, lib), f"-Wl,-soname,{lib}", src], check=True)
        link = os.path.join(outdir, lib.split(".so")[0] + ".so")
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(lib, link)
        print(f"stub {lib}: {len(lines)} symbols")


if __name__ == "__main__":
    main()
