"""crossdock's version, in its own module so that any module can read it without importing the
package's public API (and the layers above it)."""

__version__ = "0.1.0"
