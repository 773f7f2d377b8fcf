"""The example ``api`` service."""
