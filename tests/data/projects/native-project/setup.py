from setuptools import Extension, setup

setup(ext_modules=[Extension("fastc._speed", ["src/fastc/_speed.c"])])
