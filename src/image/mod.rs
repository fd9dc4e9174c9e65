//! Reading root filesystem images (SquashFS through backhand, or a directory) without mounting them.
