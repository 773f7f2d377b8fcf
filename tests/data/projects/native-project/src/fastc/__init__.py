"""fastc: pure Python around a C extension."""
