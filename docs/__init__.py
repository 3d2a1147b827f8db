"""Makes docs/ a package, so its conftest.py does not clash with the examples' conftests."""
