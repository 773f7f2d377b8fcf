"""srcapp: a packaged application whose console script serves HTTP with the standard library."""
