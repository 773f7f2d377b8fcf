"""Where an image comes from: one reader per source kind (a registry, an OCI layout or a tar of
one, a ``docker save`` tarball, the docker daemon), each returning the one image model
(``ImageSet`` / ``PlatformImage``) with every blob checked against its digest and every document
bounded by ``crossdock.image.document``'s limits."""
