"""An image's filesystem as its layers make it: the member index of one layer tarball, the
layered view (whiteouts, links, bounded reads), ELF facts of the files in it, and the base
profile (what a base image offers a Python service: its Python, glibc, paths)."""
