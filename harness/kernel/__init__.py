"""Where kernels come from: Debian packages, prebuilt images, source builds, the host."""
