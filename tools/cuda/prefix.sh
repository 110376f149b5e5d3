#!/usr/bin/env bash
# Packs netlens' Debian build dependencies (OpenCV, CLI11, nlohmann_json, yaml-cpp, spdlog, fmt,
# giflib, Eigen, GoogleTest) into a relocatable prefix, as OUT.tar.xz, for building netlens
# against a CUDA LibTorch (pip torch) on a machine that has no Debian packages, such as an Ubuntu
# CUDA image without network. Run on Debian 12 after tools/setup.sh. OpenCV's libraries pull in
# GDAL, GDCM, OpenEXR, LAPACK, GLX and OpenCV's dnn module, which netlens never calls: those are
# replaced by stubs that define every symbol the packed libraries import and return 0 (OpenCV
# registers and probes some of them at start-up). Usage: tools/cuda/prefix.sh [OUT]
set -euo pipefail
OUT=${1:-/tmp/netlens-cuda-prefix}
ARCH=x86_64-linux-gnu
L=/usr/lib/$ARCH
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
R=$WORK/usr
mkdir -p $R/lib/$ARCH/cmake $R/include $R/share/cmake $R/share/eigen3
for d in opencv4 eigen3 spdlog fmt CLI nlohmann yaml-cpp gtest gmock; do cp -a /usr/include/$d $R/include/; done
cp -a /usr/include/gif_lib.h $R/include/
for d in opencv4 spdlog fmt yaml-cpp GTest; do cp -a $L/cmake/$d $R/lib/$ARCH/cmake/; done
cp -a /usr/share/cmake/CLI11 /usr/share/cmake/nlohmann_json $R/share/cmake/
cp -a /usr/share/eigen3/cmake $R/share/eigen3/
cp -a $L/libgtest*.a $L/libgmock*.a $R/lib/$ARCH/
REAL="libopencv_core.so.406 libopencv_imgproc.so.406 libopencv_imgcodecs.so.406 libopencv_ximgproc.so.406
 libopencv_video.so.406 libopencv_calib3d.so.406 libopencv_features2d.so.406 libopencv_flann.so.406
 libtbb.so.12 libjpeg.so.62 libwebp.so.7 libpng16.so.16 libtiff.so.6 libLerc.so.4 libjbig.so.0
 libdeflate.so.0 libopenjp2.so.7 libyaml-cpp.so.0.7 libspdlog.so.1.10 libfmt.so.9 libgif.so.7"
STUB="libopencv_dnn.so.406 libgdal.so.32 libgdcmMSFF.so.3.0 libgdcmDSED.so.3.0 libOpenEXR-3_1.so.30
 libGLX.so.0 liblapack.so.3 libblas.so.3"
for s in $REAL; do
  cp -L $L/$s $R/lib/$ARCH/$s
  ln -sf $s $R/lib/$ARCH/${s%%.so*}.so
  f=$(basename "$(readlink -f $L/$s)")  # the full version the CMake files name
  [ "$f" = "$s" ] || ln -sf $s $R/lib/$ARCH/$f
done
# OpenCV's CMake files check that every module's library exists: the unused ones get empty files.
for m in $L/libopencv_*.so.4.6.0; do
  n=$(basename $m); so=${n%.4.6.0}.406
  if [ -e $R/lib/$ARCH/$so ] || [[ " $STUB " == *" $so "* ]]; then ln -sf $so $R/lib/$ARCH/$n; else : > $R/lib/$ARCH/$n; fi
done
/usr/bin/python3 "$(dirname "$0")/stubs.py" $L $R/lib/$ARCH "$REAL" "$STUB" $WORK
tar -C $WORK -cJf "$OUT.tar.xz" usr
echo "prefix: $OUT.tar.xz ($(du -h "$OUT.tar.xz" | cut -f1)); unpack it to DIR and configure with"
echo "  -DCMAKE_PREFIX_PATH='DIR/usr;<torch.utils.cmake_prefix_path>' -DNETLENS_BLAS_DIR="
echo "  -DCMAKE_EXE_LINKER_FLAGS='-Wl,-rpath-link,DIR/usr/lib/$ARCH -Wl,-rpath,DIR/usr/lib/$ARCH -Wl,--disable-new-dtags'"
echo "(tools/cuda/check.sh does all of this)"
