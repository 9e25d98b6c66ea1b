// Package image checks crossmap as it is shipped: the whole pipeline (watch
// → snapshot → translate → diff → apply → status), run by the binary taken
// out of the OCI image archive `make image` builds, against a real control
// plane. It is a package of its own, apart from e2e, because building the
// static binary for the image costs minutes on a cold build cache, which
// must not come out of the other end-to-end tests' time.
package image
