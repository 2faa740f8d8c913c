#!/usr/bin/env bash
# Prints the first libclang that bindgen (the `mpi` feature's build) can load, or nothing.
# Only libclang.so* and libclang-<version>.so* count: libclang-cpp.so (which LLVM installs
# without libclang-dev) is a different library, and bindgen fails on a machine that has only it.
shopt -s nullglob
for f in /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* \
         /usr/lib/*/libclang.so* /usr/lib/*/libclang-[0-9]*.so* /usr/lib/libclang.so*; do
  echo "$f"
  exit 0
done
